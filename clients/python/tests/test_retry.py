"""Retries against a scripted local server: 429/503 with Retry-After (seconds and HTTP date), bounded
attempts, no retry for 4xx, 501 or an over-long Retry-After, network errors retried only for idempotent
methods. Attempts are counted and the asked-for delays recorded; nothing is timed."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from typing import Iterator, List, Optional, Protocol, Tuple

import pytest

from authproxy_client import (
    DEFAULT_RETRY,
    AsyncAuthProxyClient,
    AuthProxyApiError,
    AuthProxyClient,
    NoResponseError,
    RetryOptions,
    backoff_seconds,
    is_retryable_status,
    next_delay,
    retry_after_seconds,
)

from fake_server import OK, Answer, ScriptedServer, Step, json_body

TOKEN = "py-retry-token-0123456789"


class ServeFn(Protocol):
    def __call__(self, script: List[Step], retries: Optional[int] = None) -> Tuple[AuthProxyClient, List[float], ScriptedServer]: ...


@pytest.fixture
def serve() -> Iterator[ServeFn]:
    servers: List[ScriptedServer] = []

    def start(script: List[Step], retries: Optional[int] = None) -> Tuple[AuthProxyClient, List[float], ScriptedServer]:
        server = ScriptedServer(script)
        servers.append(server)
        delays: List[float] = []
        return AuthProxyClient(server.url, TOKEN, retries=retries, sleep=delays.append), delays, server

    yield start
    for s in servers:
        s.close()


def test_honours_retry_after_in_seconds_and_as_an_http_date(serve: ServeFn) -> None:
    date = email.utils.formatdate(time.time() + 10, usegmt=True)
    client, delays, server = serve([Answer(429, {"retry-after": "1"}), Answer(503, {"retry-after": date}), OK])
    assert client.get("sb")["version"] == 1
    assert len(server.requests) == 3
    assert delays[0] == 1.0
    assert 8.0 < delays[1] <= 10.0
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" and r.path == "/v1/sandboxes/sb/proxy-config" for r in server.requests)


def test_retries_a_503_with_retry_after_then_succeeds_for_writes(serve: ServeFn) -> None:
    client, delays, server = serve([Answer(503, {"retry-after": "2"}, {"error": "sandbox store unavailable"}), OK])
    res = client.create("sb", {"rules": []}, if_match='"1-x"', tenant_id="t1", organization_id=None)
    assert res["etag"] == '"1-x"' and delays == [2.0]
    assert [r.method for r in server.requests] == ["PUT", "PUT"]
    last = server.requests[1]
    assert last.headers["if-match"] == '"1-x"' and last.headers["content-type"] == "application/json"
    assert json_body(last) == {"rules": [], "tenant_id": "t1", "organization_id": None}


def test_retries_patch_on_5xx(serve: ServeFn) -> None:
    client, _, server = serve([Answer(502), OK])
    client.patch("sb", {"rules": []})
    assert [r.method for r in server.requests] == ["PATCH", "PATCH"]
    assert json_body(server.requests[1]) == {"rules": []}


def test_gives_up_after_the_configured_retries_with_the_last_error(serve: ServeFn) -> None:
    client, delays, server = serve([Answer(503, body={"error": "sandbox store unavailable", "problems": ["redis: down"]})], retries=2)
    with pytest.raises(AuthProxyApiError) as err:
        client.get("sb")
    assert err.value.status == 503 and err.value.error == "sandbox store unavailable" and err.value.problems == ("redis: down",)
    assert str(err.value) == "503 sandbox store unavailable: redis: down"
    assert len(server.requests) == 3 and len(delays) == 2
    assert all(0 <= d <= 0.4 for d in delays)


@pytest.mark.parametrize("step", [Answer(400), Answer(409), Answer(412), Answer(501), Answer(429, {"retry-after": "3600"})], ids=lambda s: str(s.status))
def test_does_not_retry_4xx_501_or_a_retry_after_beyond_the_bound(serve: ServeFn, step: Answer) -> None:
    client, _, server = serve([step, OK])
    with pytest.raises(AuthProxyApiError) as err:
        client.get("sb")
    assert err.value.status == step.status and len(server.requests) == 1
    if step.status == 429:
        assert err.value.retry_after == 3600.0
    if step.status == 400:
        assert err.value.error == "Bad Request"  # no JSON body: the status line's reason


@pytest.mark.parametrize("method", ["get", "create", "delete"])
def test_retries_a_dropped_connection_for_idempotent_methods(serve: ServeFn, method: str) -> None:
    client, _, server = serve(["drop", Answer(204) if method == "delete" else OK])
    if method == "create":
        client.create("sb", {"rules": []})
    elif method == "delete":
        assert client.delete("sb") is True
    else:
        client.get("sb")
    assert len(server.requests) == 2


def test_does_not_retry_a_dropped_patch(serve: ServeFn) -> None:
    client, _, server = serve(["drop", OK])
    with pytest.raises(NoResponseError) as err:
        client.patch("sb", {"rules": []})
    assert err.value.status == 0
    assert str(err.value).startswith("0 PATCH /v1/sandboxes/sb/proxy-config: no response (")
    assert TOKEN not in str(err.value)
    assert len(server.requests) == 1


def test_a_refused_connection_is_a_no_response_error() -> None:
    with AuthProxyClient("http://127.0.0.1:9", TOKEN, retries=1, sleep=lambda s: None) as client:
        with pytest.raises(NoResponseError) as err:
            client.get("sb")
    assert err.value.status == 0 and "GET /v1/sandboxes/sb/proxy-config: no response" in err.value.error


def test_a_slow_answer_times_out() -> None:
    with socket.socket() as listener:  # accepts (the kernel does) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        with AuthProxyClient(url, TOKEN, timeout=0.2, retries=0) as client:
            with pytest.raises(NoResponseError) as err:
                client.get("sb")
    assert err.value.error.endswith("no response (timed out)")


def test_waits_for_real_with_the_default_sleep() -> None:
    server = ScriptedServer([Answer(429, {"retry-after": "0"}), OK])
    try:
        with AuthProxyClient(server.url, TOKEN) as client:
            assert client.get("sb")["version"] == 1
        assert len(server.requests) == 2
    finally:
        server.close()


def test_the_async_client_retries_the_same_way() -> None:
    server = ScriptedServer([Answer(503, {"retry-after": "1"}), "drop", OK])
    delays: List[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    async def run() -> None:
        async with AsyncAuthProxyClient(server.url, TOKEN, sleep=record) as client:
            assert (await client.get("sb"))["version"] == 1

    try:
        asyncio.run(run())
    finally:
        server.close()
    assert len(server.requests) == 3 and delays[0] == 1.0 and len(delays) == 2


def test_retry_after_forms() -> None:
    now = 1735689600.0  # 2025-01-01T00:00:00Z
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(" 3 ", now) == 3.0
    assert retry_after_seconds("Wed, 01 Jan 2025 00:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Tue, 31 Dec 2024 23:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
    assert retry_after_seconds("1.5", now) is None
    assert retry_after_seconds("", now) is None
    assert retry_after_seconds(None, now) is None


def test_backoff_and_next_delay() -> None:
    opts = RetryOptions(retries=3, base_delay=0.2, max_delay=1.0, max_retry_after=30.0)
    assert [backoff_seconds(n, opts, lambda: 0.999999) for n in range(5)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0], rel=1e-5)
    assert backoff_seconds(100, opts, lambda: 0.5) == 0.5
    assert next_delay(0, opts, 7.0) == 7.0
    assert next_delay(0, opts, 31.0) is None
    assert next_delay(3, opts, None) is None
    assert 0 <= (next_delay(2, opts, None) or 0) <= 0.8
    assert DEFAULT_RETRY == RetryOptions()
    assert [s for s in (200, 400, 409, 429, 500, 501, 502, 503, 599, 600) if is_retryable_status(s)] == [429, 500, 502, 503, 599]
