"""configure_github_proxy against the real admin API: create, refresh keeping every other rule and opaque
value, and a concurrent writer in between (the If-Match read-merge-write is done again)."""

from __future__ import annotations

import base64
from typing import Any, List

from authproxy_client import (
    GITHUB_API_RULE,
    GITHUB_GIT_RULE,
    AuthProxyClient,
    SandboxConfigResponse,
    configure_github_proxy,
    opaque_secret,
)

from conftest import ADMIN_TOKEN, AdminApi

CANARY = "canary-py-gh-other-77e1"


def names(res: SandboxConfigResponse) -> List[str]:
    return [r["name"] for r in res["proxy_config"].get("rules", [])]


def test_creates_the_config_when_the_sandbox_has_none(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    res = configure_github_proxy(client, sandbox_id, "ghs_first_py_token")
    assert res["version"] == 1
    assert names(res) == [GITHUB_API_RULE, GITHUB_GIT_RULE]
    assert client.env(sandbox_id) == {"GH_TOKEN": "proxy-injected", "GITHUB_TOKEN": "proxy-injected"}
    assert admin_api.stored_value(sandbox_id, GITHUB_API_RULE).startswith("sealed:")
    assert "ghs_first_py_token" not in repr(client.get(sandbox_id)) + admin_api.redis.dump() + admin_api.logs()


def test_refresh_replaces_the_token_and_keeps_every_other_rule_and_opaque_value(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    client.create(sandbox_id, {
        "rules": [{"name": "internal", "match_hosts": ["api.internal.example"], "headers": [{"name": "X-Key", **opaque_secret(CANARY)}]}],
        "callbacks": [{
            "match_hosts": ["cb.example.com"], "url": "https://cb.example.com/r", "ttl_seconds": 60,
            "request_headers": [{"name": "X-Cb", **opaque_secret(CANARY + "-cb")}],
        }],
    })
    internal = admin_api.stored_value(sandbox_id, "internal")
    stored = admin_api.stored_config(sandbox_id)
    assert stored is not None
    callback_value = stored["callbacks"][0]["request_headers"][0]["value"]

    first = configure_github_proxy(client, sandbox_id, "ghs_one_py")
    assert first["version"] == 2
    assert names(first) == [GITHUB_API_RULE, GITHUB_GIT_RULE, "internal"]
    api_one = admin_api.stored_value(sandbox_id, GITHUB_API_RULE)
    git_one = admin_api.stored_value(sandbox_id, GITHUB_GIT_RULE)

    refreshed = configure_github_proxy(client, sandbox_id, "ghs_two_py")
    assert refreshed["version"] == 3
    assert names(refreshed) == [GITHUB_API_RULE, GITHUB_GIT_RULE, "internal"]
    assert admin_api.stored_value(sandbox_id, GITHUB_API_RULE) != api_one
    assert admin_api.stored_value(sandbox_id, GITHUB_GIT_RULE) != git_one
    assert admin_api.stored_value(sandbox_id, "internal") == internal
    after = admin_api.stored_config(sandbox_id)
    assert after is not None and after["callbacks"][0]["request_headers"][0]["value"] == callback_value

    audit = admin_api.audit_lines(sandbox_id, 3)[-1]
    assert audit["action"] == "patch"
    assert audit["rules_changed"] == [GITHUB_API_RULE, GITHUB_GIT_RULE] and audit["rules_added"] == []
    text = admin_api.logs() + admin_api.redis.dump()
    for secret in ("ghs_one_py", "ghs_two_py", base64.b64encode(b"x-access-token:ghs_two_py").decode(), CANARY):
        assert secret not in text


class InterleavingClient(AuthProxyClient):
    """Another writer changes the sandbox right after this client's first read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0

    def get(self, sandbox_id: str) -> SandboxConfigResponse:
        res = super().get(sandbox_id)
        self.reads += 1
        if self.reads == 1:
            with AuthProxyClient(self.base_url, ADMIN_TOKEN) as other:
                other.patch(sandbox_id, {**res["proxy_config"], "description": "changed in between"})
        return res


def test_a_concurrent_change_is_never_overwritten(admin_api: AdminApi, client: AuthProxyClient, sandbox_id: str) -> None:
    client.create(sandbox_id, {"rules": [{"name": "internal", "match_hosts": ["api.internal.example"], "headers": [{"name": "X-Key", **opaque_secret(CANARY)}]}]})
    with InterleavingClient(admin_api.url, ADMIN_TOKEN) as racing:
        res = configure_github_proxy(racing, sandbox_id, "ghs_race_py")
        assert racing.reads == 2, "the 412 must make it read again"
    assert res["version"] == 3
    assert res["proxy_config"].get("description") == "changed in between"
    assert names(res) == [GITHUB_API_RULE, GITHUB_GIT_RULE, "internal"]
