"""Clients of authproxy's admin API (shared-service mode): :class:`AuthProxyClient` and
:class:`AsyncAuthProxyClient`. Mirrors ``src/sdk/client.ts``: one call configures a sandbox's credentials,
with retries on 429 and 5xx that honour ``Retry-After``, bounded backoff, per-attempt timeouts, and errors
that carry the server's field-named problems (never the token or a secret value)."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Final, Literal, Mapping, Optional, Sequence, Tuple, Type, Union, cast
from urllib.parse import quote

import httpx

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Self

from ._retry import DEFAULT_RETRY, RetryOptions, is_retryable_status, next_delay, retry_after_seconds
from ._types import ProxyConfig, SandboxConfigResponse, SandboxEnvResponse

__all__ = [
    "UNSET",
    "AsyncAuthProxyClient",
    "AuthProxyApiError",
    "AuthProxyClient",
    "ConflictError",
    "InvalidConfigError",
    "NoResponseError",
    "NotFoundError",
    "PreconditionFailedError",
    "Unset",
]

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds one attempt may take (connect, send, wait for and read the answer, each)."""


class Unset(enum.Enum):
    """The type of :data:`UNSET`: "leave this field out of the request"."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET
"""Default of ``organization_id``: not sent (a PATCH keeps the stored one), unlike ``None`` (removes it)."""


class AuthProxyApiError(Exception):
    """An admin API error: the HTTP status (0 when no response arrived), the server's one-line ``error``, and
    its field-named ``problems`` (e.g. ``rules[0].match_hosts[0]: ...``). Never contains the token or a
    secret value. Subclasses name the statuses callers act on."""

    status: int
    error: str
    problems: Tuple[str, ...]
    retry_after: Optional[float]
    """Seconds the server's ``Retry-After`` asked for, when it sent one (e.g. a 429 past the retries)."""

    def __init__(self, status: int, error: str, problems: Sequence[str] = (), *, retry_after: Optional[float] = None) -> None:
        self.status = status
        self.error = error
        self.problems = tuple(problems)
        self.retry_after = retry_after
        super().__init__(f"{status} {error}: {'; '.join(self.problems)}" if self.problems else f"{status} {error}")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.status, self.error, self.problems, self.retry_after))


def _rebuild_error(cls: Type[AuthProxyApiError], status: int, error: str, problems: Tuple[str, ...], retry_after: Optional[float]) -> AuthProxyApiError:
    return cls(status, error, problems, retry_after=retry_after)


class NoResponseError(AuthProxyApiError):
    """No answer arrived (connection refused or dropped, timed out): ``status`` is 0."""


class NotFoundError(AuthProxyApiError):
    """404: the sandbox has no stored config (or it belongs to another tenant than the token's)."""


class ConflictError(AuthProxyApiError):
    """409: another writer changed the config while this write was applied (read again and retry), or the
    sandbox is defined in the server's config file (change it there), or an AWS role changed after create."""


class PreconditionFailedError(AuthProxyApiError):
    """412: ``if_match`` named a version that is no longer the stored one, or ``if_none_match="*"`` found one."""


class InvalidConfigError(AuthProxyApiError):
    """422: the proxy_config cannot be stored; ``problems`` name each field."""


_ERRORS: Dict[int, Type[AuthProxyApiError]] = {404: NotFoundError, 409: ConflictError, 412: PreconditionFailedError, 422: InvalidConfigError}

Method = Literal["GET", "PUT", "PATCH", "DELETE"]
_IDEMPOTENT: Final = frozenset({"GET", "PUT", "DELETE"})
"""Methods safe to repeat after a network error (the request may have reached the server)."""


@dataclass(frozen=True)
class _Call:
    method: Method
    path: str
    headers: Dict[str, str]
    content: Optional[bytes]


@dataclass(frozen=True)
class _Done:
    value: Any


class _Base:
    """What both clients share: options, request building, and the decision after each attempt."""

    def __init__(self, base_url: str, token: str, *, timeout: float, retries: Optional[int], retry: Optional[RetryOptions]) -> None:
        if not base_url:
            raise ValueError("base_url: required, e.g. http://authproxy-admin:8081")
        if not token or any(c in token for c in "\r\n\0"):
            raise ValueError("token: required, one line (a token from the server's --admin-tokens file)")
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = httpx.Timeout(timeout)
        options = retry or DEFAULT_RETRY
        self._retry = dataclasses.replace(options, retries=retries) if retries is not None else options

    @property
    def base_url(self) -> str:
        """The admin API's base URL (trailing slashes removed)."""
        return self._base_url

    def __repr__(self) -> str:  # never shows the token
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    def _write(
        self,
        method: Method,
        sandbox_id: str,
        config: ProxyConfig,
        if_match: Optional[str],
        if_none_match: Optional[str],
        tenant_id: Optional[str],
        organization_id: Union[str, None, Unset],
    ) -> _Call:
        if if_none_match is not None and if_none_match != "*":
            raise ValueError('if_none_match: only "*" (create only if the sandbox has no config)')
        body: Dict[str, Any] = dict(cast(Mapping[str, Any], config))
        if tenant_id is not None:
            body["tenant_id"] = tenant_id
        if organization_id is not UNSET:
            body["organization_id"] = organization_id
        return self._call(method, _config_path(sandbox_id), body, if_match, if_none_match)

    def _call(self, method: Method, path: str, body: Any = None, if_match: Optional[str] = None, if_none_match: Optional[str] = None) -> _Call:
        headers = {"authorization": f"Bearer {self._token}", "accept": "application/json"}
        content: Optional[bytes] = None
        if body is not None:
            headers["content-type"] = "application/json"
            content = json.dumps(body, separators=(",", ":")).encode()
        if if_match is not None:
            headers["if-match"] = if_match
        if if_none_match is not None:
            headers["if-none-match"] = if_none_match
        return _Call(method, path, headers, content)

    def _url(self, call: _Call) -> str:
        return self._base_url + call.path

    def _after_error(self, call: _Call, attempt: int, err: httpx.TransportError) -> float:
        """The wait before the next attempt after a network error, or raises NoResponseError."""
        wait = next_delay(attempt, self._retry, None) if call.method in _IDEMPOTENT else None
        if wait is None:
            raise NoResponseError(0, f"{call.method} {call.path}: no response ({_describe(err)})") from err
        return wait

    def _after_response(self, call: _Call, attempt: int, res: httpx.Response) -> Union[_Done, float]:
        """The result of a success, the wait before the next attempt, or raises the answer's error."""
        if res.is_success:
            if res.status_code == 204 or not res.content:
                return _Done(None)
            try:
                return _Done(res.json())
            except ValueError:
                raise AuthProxyApiError(res.status_code, f"{call.method} {call.path}: the answer is not JSON") from None
        retry_after = retry_after_seconds(res.headers.get("retry-after"))
        wait = next_delay(attempt, self._retry, retry_after) if is_retryable_status(res.status_code) else None
        if wait is None:
            raise _api_error(res, retry_after)
        return wait


class AuthProxyClient(_Base):
    """A typed client of authproxy's admin API (synchronous, on ``httpx.Client``).

    ``AuthProxyClient("http://authproxy-admin:8081", token)``; use it as a context manager or ``close()`` it.
    ``retries``: further attempts after the first on 429/5xx (and network errors for GET, PUT, DELETE),
    default 3; ``retry`` tunes the timing (``retries`` wins over ``retry.retries``); ``timeout``: seconds
    per attempt. ``http_client`` brings your own ``httpx.Client`` (TLS, proxies, hooks; it is not closed
    here); ``transport`` is passed to the client made here. ``sleep`` is how the client waits between
    attempts (tests observe the delays asked for).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: Optional[int] = None,
        retry: Optional[RetryOptions] = None,
        http_client: Optional[httpx.Client] = None,
        transport: Optional[httpx.BaseTransport] = None,
        sleep: Optional[Callable[[float], None]] = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both (a transport belongs to its client)")
        super().__init__(base_url, token, timeout=timeout, retries=retries, retry=retry)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=self._timeout, transport=transport, follow_redirects=False)
        self._sleep = sleep or time.sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the HTTP client made here (not one passed as ``http_client``)."""
        if self._owns_http:
            self._http.close()

    def create(
        self,
        sandbox_id: str,
        config: ProxyConfig,
        *,
        if_match: Optional[str] = None,
        if_none_match: Optional[Literal["*"]] = None,
        tenant_id: Optional[str] = None,
        organization_id: Union[str, None, Unset] = UNSET,
    ) -> SandboxConfigResponse:
        """Creates a sandbox's config (PUT: replaces one that exists, unless ``if_none_match="*"``, then 412).

        ``tenant_id``: the tenant (workspace) the sandbox belongs to, sent to callbacks as
        ``identity.tenant_id``; left out = the token's tenant (a ``tenant=`` token), else the server's
        ``--tenant-id``. ``organization_id``: sent as ``identity.organization_id``.
        """
        return cast(SandboxConfigResponse, self._send(self._write("PUT", sandbox_id, config, if_match, if_none_match, tenant_id, organization_id)))

    def replace(
        self,
        sandbox_id: str,
        config: ProxyConfig,
        *,
        if_match: Optional[str] = None,
        tenant_id: Optional[str] = None,
        organization_id: Union[str, None, Unset] = UNSET,
    ) -> SandboxConfigResponse:
        """Replaces a sandbox's config whole (PUT); every opaque header needs its value.

        ``if_match`` (a response's ``etag``) applies it only to that version, else 412.
        """
        return cast(SandboxConfigResponse, self._send(self._write("PUT", sandbox_id, config, if_match, None, tenant_id, organization_id)))

    def patch(
        self,
        sandbox_id: str,
        config: ProxyConfig,
        *,
        if_match: Optional[str] = None,
        tenant_id: Optional[str] = None,
        organization_id: Union[str, None, Unset] = UNSET,
    ) -> SandboxConfigResponse:
        """Replaces a stored config wholesale, except that an opaque header sent without a value (or with
        ``is_set: True``) keeps its stored value, so ``get()``'s ``proxy_config`` can be edited and sent
        back. 404 when none is stored. ``tenant_id`` / ``organization_id`` left out are kept; an
        ``organization_id`` of ``None`` removes it."""
        return cast(SandboxConfigResponse, self._send(self._write("PATCH", sandbox_id, config, if_match, None, tenant_id, organization_id)))

    def get(self, sandbox_id: str) -> SandboxConfigResponse:
        """Reads a sandbox's config; opaque headers come back as ``{name, type: "opaque", is_set: True}``."""
        return cast(SandboxConfigResponse, self._send(self._call("GET", _config_path(sandbox_id))))

    def delete(self, sandbox_id: str) -> bool:
        """Deletes a sandbox's config; False when there was none."""
        try:
            self._send(self._call("DELETE", _config_path(sandbox_id)))
        except NotFoundError:
            return False
        return True

    def env(self, sandbox_id: str) -> Dict[str, str]:
        """The ``env_vars`` placeholders of the sandbox's enabled rules (never secrets)."""
        return cast(SandboxEnvResponse, self._send(self._call("GET", _env_path(sandbox_id))))["env_vars"]

    def _send(self, call: _Call) -> Any:
        attempt = 0
        while True:
            try:
                res = self._http.request(call.method, self._url(call), headers=call.headers, content=call.content, timeout=self._timeout)
            except httpx.TransportError as err:
                wait = self._after_error(call, attempt, err)
            else:
                outcome = self._after_response(call, attempt, res)
                if isinstance(outcome, _Done):
                    return outcome.value
                wait = outcome
            self._sleep(wait)
            attempt += 1


class AsyncAuthProxyClient(_Base):
    """The same client on ``httpx.AsyncClient``: every method is a coroutine. Options as
    :class:`AuthProxyClient` (``sleep`` is async); use ``async with`` or ``await aclose()``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: Optional[int] = None,
        retry: Optional[RetryOptions] = None,
        http_client: Optional[httpx.AsyncClient] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        sleep: Optional[Callable[[float], Awaitable[None]]] = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both (a transport belongs to its client)")
        super().__init__(base_url, token, timeout=timeout, retries=retries, retry=retry)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=self._timeout, transport=transport, follow_redirects=False)
        self._sleep = sleep or asyncio.sleep

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the HTTP client made here (not one passed as ``http_client``)."""
        if self._owns_http:
            await self._http.aclose()

    async def create(
        self,
        sandbox_id: str,
        config: ProxyConfig,
        *,
        if_match: Optional[str] = None,
        if_none_match: Optional[Literal["*"]] = None,
        tenant_id: Optional[str] = None,
        organization_id: Union[str, None, Unset] = UNSET,
    ) -> SandboxConfigResponse:
        """See :meth:`AuthProxyClient.create`."""
        return cast(SandboxConfigResponse, await self._send(self._write("PUT", sandbox_id, config, if_match, if_none_match, tenant_id, organization_id)))

    async def replace(
        self,
        sandbox_id: str,
        config: ProxyConfig,
        *,
        if_match: Optional[str] = None,
        tenant_id: Optional[str] = None,
        organization_id: Union[str, None, Unset] = UNSET,
    ) -> SandboxConfigResponse:
        """See :meth:`AuthProxyClient.replace`."""
        return cast(SandboxConfigResponse, await self._send(self._write("PUT", sandbox_id, config, if_match, None, tenant_id, organization_id)))

    async def patch(
        self,
        sandbox_id: str,
        config: ProxyConfig,
        *,
        if_match: Optional[str] = None,
        tenant_id: Optional[str] = None,
        organization_id: Union[str, None, Unset] = UNSET,
    ) -> SandboxConfigResponse:
        """See :meth:`AuthProxyClient.patch`."""
        return cast(SandboxConfigResponse, await self._send(self._write("PATCH", sandbox_id, config, if_match, None, tenant_id, organization_id)))

    async def get(self, sandbox_id: str) -> SandboxConfigResponse:
        """See :meth:`AuthProxyClient.get`."""
        return cast(SandboxConfigResponse, await self._send(self._call("GET", _config_path(sandbox_id))))

    async def delete(self, sandbox_id: str) -> bool:
        """See :meth:`AuthProxyClient.delete`."""
        try:
            await self._send(self._call("DELETE", _config_path(sandbox_id)))
        except NotFoundError:
            return False
        return True

    async def env(self, sandbox_id: str) -> Dict[str, str]:
        """See :meth:`AuthProxyClient.env`."""
        return cast(SandboxEnvResponse, await self._send(self._call("GET", _env_path(sandbox_id))))["env_vars"]

    async def _send(self, call: _Call) -> Any:
        attempt = 0
        while True:
            try:
                res = await self._http.request(call.method, self._url(call), headers=call.headers, content=call.content, timeout=self._timeout)
            except httpx.TransportError as err:
                wait = self._after_error(call, attempt, err)
            else:
                outcome = self._after_response(call, attempt, res)
                if isinstance(outcome, _Done):
                    return outcome.value
                wait = outcome
            await self._sleep(wait)
            attempt += 1


def _sandbox(sandbox_id: str) -> str:
    if not isinstance(sandbox_id, str) or sandbox_id == "":
        raise ValueError("sandbox_id: required")
    return quote(sandbox_id, safe="")


def _config_path(sandbox_id: str) -> str:
    return f"/v1/sandboxes/{_sandbox(sandbox_id)}/proxy-config"


def _env_path(sandbox_id: str) -> str:
    return f"/v1/sandboxes/{_sandbox(sandbox_id)}/env"


def _describe(err: httpx.TransportError) -> str:
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    text = str(err).strip().split("\n", 1)[0]
    return text or type(err).__name__


def _api_error(res: httpx.Response, retry_after: Optional[float]) -> AuthProxyApiError:
    cls = _ERRORS.get(res.status_code, AuthProxyApiError)
    try:
        body = res.json()
    except ValueError:  # not JSON: a proxy or load balancer answered
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        raw = body.get("problems")
        problems = [p for p in raw if isinstance(p, str)] if isinstance(raw, list) else []
        return cls(res.status_code, body["error"], problems, retry_after=retry_after)
    return cls(res.status_code, res.reason_phrase or "error", retry_after=retry_after)
