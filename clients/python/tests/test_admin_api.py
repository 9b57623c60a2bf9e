"""The client against the real admin API (``authproxy serve`` with real Redis): every method, opaque values
that never come back, PATCH keeping them, conditional writes, tenants, and the errors with their problems."""

from __future__ import annotations

import re
import threading
from typing import List

import pytest

from authproxy_client import (
    UNSET,
    AuthProxyApiError,
    AuthProxyClient,
    ConflictError,
    Header,
    HeaderRule,
    InvalidConfigError,
    NotFoundError,
    PreconditionFailedError,
    ProxyConfig,
    Rule,
    header,
    opaque_secret,
    plaintext,
    workspace_secret,
)

from conftest import ADMIN_TOKEN, CANARY_WS, FILE_SANDBOX, SCOPED_TOKEN, TENANT_TOKEN, AdminApi

CANARY = "canary-py-opaque-4f2a91"


def header_rule(rule: Rule) -> HeaderRule:
    assert "headers" in rule and "type" not in rule, rule
    return rule


def two_rules(canary: str = CANARY) -> ProxyConfig:
    return {
        "rules": [
            {
                "name": "openai",
                "match_hosts": ["api.openai.com"],
                "headers": [header("Authorization", workspace_secret("Bearer {OPENAI_API_KEY}"))],
                "env_vars": {"OPENAI_API_KEY": "proxy-injected"},
            },
            {
                "name": "internal",
                "match_hosts": ["api.internal.example"],
                "headers": [{"name": "X-Key", **opaque_secret(canary)}, header("X-Env", plaintext("prod"))],
            },
        ]
    }


def test_create_get_replace_patch_env_delete(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    created = client.create(sandbox_id, two_rules())
    assert created["sandbox_id"] == sandbox_id
    assert created["version"] == 1
    assert created["tenant_id"] == "default"
    assert re.fullmatch(r'"1-[0-9a-f-]+"', created["etag"])
    assert "organization_id" not in created

    read = client.get(sandbox_id)
    assert read["version"] == 1 and read["etag"] == created["etag"]
    rules = read["proxy_config"]["rules"]
    assert [r["name"] for r in rules] == ["openai", "internal"]
    assert header_rule(rules[0])["headers"] == [{"name": "Authorization", "type": "workspace_secret", "value": "Bearer {OPENAI_API_KEY}"}]
    assert header_rule(rules[1])["headers"] == [
        {"name": "X-Key", "type": "opaque", "is_set": True},
        {"name": "X-Env", "type": "plaintext", "value": "prod"},
    ]
    assert read["proxy_config"].get("callbacks") == [] and read["proxy_config"].get("no_proxy") == []

    replaced = client.replace(sandbox_id, two_rules())
    assert replaced["version"] == 2 and replaced["etag"] != created["etag"]

    assert client.env(sandbox_id) == {"OPENAI_API_KEY": "proxy-injected"}
    assert client.delete(sandbox_id) is True
    assert client.delete(sandbox_id) is False
    with pytest.raises(NotFoundError):
        client.get(sandbox_id)


def test_opaque_values_are_never_read_back(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    responses = [client.create(sandbox_id, two_rules()), client.get(sandbox_id)]
    responses.append(client.patch(sandbox_id, responses[1]["proxy_config"]))
    for res in responses:
        assert CANARY not in repr(res)
    assert CANARY not in repr(client.env(sandbox_id))
    sealed = admin_api.stored_value(sandbox_id, "internal")
    assert sealed.startswith("sealed:")
    dump = admin_api.redis.dump()
    assert sandbox_id in dump and sealed in dump
    assert CANARY not in dump, "Redis holds the opaque value in plaintext"
    assert CANARY_WS not in dump, "Redis holds a resolved workspace secret"
    assert CANARY not in admin_api.logs() and ADMIN_TOKEN not in admin_api.logs()


def test_patch_keeps_opaque_values_and_a_new_value_replaces_them(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    client.create(sandbox_id, two_rules())
    sealed = admin_api.stored_value(sandbox_id, "internal")
    read = client.get(sandbox_id)

    edited: ProxyConfig = {**read["proxy_config"], "description": "patched"}
    patched = client.patch(sandbox_id, edited)
    assert patched["version"] == 2
    assert patched["proxy_config"].get("description") == "patched"
    assert admin_api.stored_value(sandbox_id, "internal") == sealed, "PATCH without a value must keep the stored one"

    # A value-less opaque header written as {name, type} alone keeps it too.
    kept: List[Rule] = [
        {"name": "internal", "match_hosts": ["api.internal.example"], "headers": [{"name": "X-Key", "type": "opaque"}]},
    ]
    assert client.patch(sandbox_id, {"rules": kept})["version"] == 3
    assert admin_api.stored_value(sandbox_id, "internal") == sealed

    renewed = two_rules("canary-py-opaque-renewed")
    client.patch(sandbox_id, renewed)
    assert admin_api.stored_value(sandbox_id, "internal") != sealed

    audit = admin_api.audit_lines(sandbox_id, 4)
    assert [line["action"] for line in audit] == ["create", "patch", "patch", "patch"]


def test_a_put_needs_every_opaque_value(client: AuthProxyClient, sandbox_id: str) -> None:
    valueless: Header = {"name": "X-Key", "type": "opaque", "is_set": True}
    with pytest.raises(InvalidConfigError) as err:
        client.create(sandbox_id, {"rules": [{"name": "r", "match_hosts": ["api.internal.example"], "headers": [valueless]}]})
    assert err.value.status == 422
    assert err.value.problems == ("rules[0].headers[0].value: required (only PATCH keeps a stored opaque value)",)


def test_invalid_configs_raise_with_field_named_problems(client: AuthProxyClient, sandbox_id: str) -> None:
    with pytest.raises(InvalidConfigError) as err:
        client.create(sandbox_id, {"rules": [{"name": "r", "match_hosts": ["*.com"], "headers": [header("X", plaintext("v"))]}]})
    assert err.value.status == 422
    assert err.value.error == "invalid proxy_config"
    assert len(err.value.problems) == 1
    assert re.match(r"^rules\[0\]\.match_hosts\[0\]: .*too broad", err.value.problems[0])
    assert re.match(r"^422 invalid proxy_config: rules\[0\]\.match_hosts\[0\]", str(err.value))

    with pytest.raises(InvalidConfigError) as missing:
        client.create(sandbox_id, {"rules": [{"name": "r", "match_hosts": ["api.example.com"], "headers": [header("X", workspace_secret("NOT_A_SECRET_HERE"))]}]})
    assert any("NOT_A_SECRET_HERE" in p and "is not set" in p for p in missing.value.problems)
    with pytest.raises(NotFoundError):
        client.patch(sandbox_id, {"rules": []})


def test_authentication_and_scope_errors(admin_api: AdminApi) -> None:
    wrong_token = "not-a-valid-token-at-all-xyz"
    with AuthProxyClient(admin_api.url, wrong_token) as wrong:
        with pytest.raises(AuthProxyApiError) as err:
            wrong.get("sb-none")
    assert err.value.status == 401 and err.value.error == "invalid bearer token"
    assert wrong_token not in str(err.value) and wrong_token not in repr(wrong)
    with AuthProxyClient(admin_api.url, SCOPED_TOKEN) as scoped:
        with pytest.raises(AuthProxyApiError) as forbidden:
            scoped.get("sb-other")
        assert forbidden.value.status == 403
        with pytest.raises(NotFoundError):
            scoped.get("team-py-nothing-here")


def test_if_match_writes_only_onto_the_version_read(client: AuthProxyClient, sandbox_id: str) -> None:
    first = client.create(sandbox_id, two_rules())
    second = client.patch(sandbox_id, {**first["proxy_config"], "description": "by another writer"}, if_match=first["etag"])
    assert second["version"] == 2

    with pytest.raises(PreconditionFailedError) as stale:
        client.patch(sandbox_id, {**first["proxy_config"], "description": "stale"}, if_match=first["etag"])
    assert stale.value.status == 412 and "If-Match" in stale.value.error
    with pytest.raises(PreconditionFailedError):
        client.replace(sandbox_id, two_rules(), if_match=first["etag"])
    assert client.get(sandbox_id)["proxy_config"].get("description") == "by another writer"

    third = client.replace(sandbox_id, two_rules(), if_match=second["etag"])
    assert third["version"] == 3
    with pytest.raises(PreconditionFailedError):
        client.create(f"{sandbox_id}-absent", two_rules(), if_match=third["etag"])


def test_if_none_match_creates_only(client: AuthProxyClient, sandbox_id: str) -> None:
    assert client.create(sandbox_id, two_rules(), if_none_match="*")["version"] == 1
    with pytest.raises(PreconditionFailedError) as err:
        client.create(sandbox_id, two_rules(), if_none_match="*")
    assert err.value.status == 412 and "already exists" in err.value.error
    assert client.get(sandbox_id)["version"] == 1


def test_conflicts_are_409(admin_api: AdminApi, client: AuthProxyClient) -> None:
    with pytest.raises(ConflictError) as err:
        client.create(FILE_SANDBOX, two_rules())
    assert err.value.status == 409 and "config file" in err.value.error


def test_concurrent_writers_never_merge_silently(admin_api: AdminApi, sandbox_id: str) -> None:
    """Writers racing on one sandbox: each write either applies or is refused with 409/412, and the
    versions applied are exactly the writes that succeeded."""
    with AuthProxyClient(admin_api.url, ADMIN_TOKEN, retries=0) as setup:
        setup.create(sandbox_id, two_rules())
    outcomes: List[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        with AuthProxyClient(admin_api.url, ADMIN_TOKEN, retries=0) as c:
            for i in range(5):
                try:
                    current = c.get(sandbox_id)
                    c.patch(sandbox_id, {**current["proxy_config"], "description": f"w{n}-{i}"}, if_match=current["etag"])
                    result = "ok"
                except (ConflictError, PreconditionFailedError) as e:
                    result = str(e.status)
                with lock:
                    outcomes.append(result)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 20 and set(outcomes) <= {"ok", "409", "412"}
    with AuthProxyClient(admin_api.url, ADMIN_TOKEN) as check:
        assert check.get(sandbox_id)["version"] == 1 + outcomes.count("ok")


def test_tenant_and_organization_ids(admin_api: AdminApi, client: AuthProxyClient, sandbox_id: str) -> None:
    created = client.create(sandbox_id, two_rules(), tenant_id="acme", organization_id="org-1")
    assert created["tenant_id"] == "acme" and created["organization_id"] == "org-1"
    kept = client.patch(sandbox_id, client.get(sandbox_id)["proxy_config"])
    assert kept["tenant_id"] == "acme" and kept["organization_id"] == "org-1"
    cleared = client.patch(sandbox_id, kept["proxy_config"], organization_id=None)
    assert cleared["tenant_id"] == "acme" and "organization_id" not in cleared
    moved = client.patch(sandbox_id, kept["proxy_config"], organization_id="org-2", tenant_id="acme")
    assert moved["organization_id"] == "org-2"
    assert client.replace(sandbox_id, two_rules(), organization_id=UNSET)["tenant_id"] == "default"

    with pytest.raises(InvalidConfigError) as bad:
        client.create(f"{sandbox_id}-bad", two_rules(), tenant_id="not a tenant!")
    assert bad.value.problems[0].startswith("tenant_id: ")

    with AuthProxyClient(admin_api.url, TENANT_TOKEN) as acme:
        mine = acme.create(f"{sandbox_id}-acme", two_rules())
        assert mine["tenant_id"] == "acme"
        with pytest.raises(AuthProxyApiError) as other:
            acme.create(f"{sandbox_id}-other", two_rules(), tenant_id="globex")
        assert other.value.status == 403
        with pytest.raises(NotFoundError):
            acme.get(sandbox_id)  # tenant "default" now: another tenant's sandbox looks missing


def test_sandbox_ids_are_escaped_in_the_path(client: AuthProxyClient) -> None:
    with pytest.raises(AuthProxyApiError) as err:
        client.get("../../healthz")
    assert err.value.status in (400, 404)
    with pytest.raises(ValueError):
        client.get("")
