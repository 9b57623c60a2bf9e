"""The rule helpers, the errors' shape and the package itself (typed, importable as published)."""

from __future__ import annotations

import base64
import pickle
from importlib import metadata, resources
from typing import Any, List, cast

import httpx
import pytest

import authproxy_client
from authproxy_client import (
    GITHUB_API_RULE,
    GITHUB_GIT_RULE,
    UNSET,
    AuthProxyApiError,
    AuthProxyClient,
    ConflictError,
    HeaderRule,
    PreconditionFailedError,
    RewriteRule,
    Rule,
    configure_github_proxy,
    github_proxy_rules,
    header,
    merge_github_rules,
    opaque_secret,
    plaintext,
    workspace_secret,
)


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def test_workspace_secret_turns_a_key_into_a_placeholder_and_passes_templates_through() -> None:
    assert workspace_secret("GITHUB_TOKEN") == {"type": "workspace_secret", "value": "{GITHUB_TOKEN}"}
    assert workspace_secret("Bearer {GITHUB_TOKEN}") == {"type": "workspace_secret", "value": "Bearer {GITHUB_TOKEN}"}
    for bad in ("Bearer x", "", "KEY\n", "1KEY"):
        with pytest.raises(ValueError):
            workspace_secret(bad)
    assert plaintext("v") == {"type": "plaintext", "value": "v"}
    assert opaque_secret("s") == {"type": "opaque", "value": "s"}
    assert header("X-Key", opaque_secret("s")) == {"name": "X-Key", "type": "opaque", "value": "s"}
    assert {"name": "X", **plaintext("v")} == header("X", plaintext("v"))


def test_github_proxy_rules_build_the_api_bearer_and_git_basic_rules() -> None:
    api, git = github_proxy_rules("ghs_abc")
    assert api == {
        "name": GITHUB_API_RULE,
        "match_hosts": ["api.github.com"],
        "headers": [{"name": "Authorization", "type": "opaque", "value": "Bearer ghs_abc"}],
        "env_vars": {"GH_TOKEN": "proxy-injected", "GITHUB_TOKEN": "proxy-injected"},
    }
    assert git == {
        "name": GITHUB_GIT_RULE,
        "match_hosts": ["github.com", "*.github.com"],
        "headers": [{"name": "Authorization", "type": "opaque", "value": basic("ghs_abc")}],
    }
    for bad in ("a b", "", "tok\n", "tok\0"):
        with pytest.raises(ValueError):
            github_proxy_rules(bad)


def test_merge_github_rules_replaces_same_named_rules_where_the_first_was_api_rule_first() -> None:
    def rule(name: str) -> HeaderRule:
        return {"name": name, "match_hosts": [f"{name}.example.com"], "headers": [header("X", plaintext(name))]}

    github = github_proxy_rules("t")
    mixed: List[Rule] = [rule("a"), rule("github-git"), rule("b"), rule("github-api")]
    assert [r["name"] for r in merge_github_rules(mixed, github)] == ["a", "github-api", "github-git", "b"]
    assert [r["name"] for r in merge_github_rules([rule("a")], github)] == ["github-api", "github-git", "a"]
    assert [r["name"] for r in merge_github_rules([], github)] == ["github-api", "github-git"]


def test_configure_github_proxy_checks_before_any_request() -> None:
    with AuthProxyClient("http://127.0.0.1:9", "token-0123456789abcdef", retries=0) as client:
        with pytest.raises(ValueError):
            configure_github_proxy(client, "sb", "bad token")
        with pytest.raises(ValueError):
            configure_github_proxy(client, "sb", "t", attempts=0)


def test_errors_carry_status_error_and_problems_and_survive_pickling() -> None:
    err = ConflictError(409, "the config changed", ["rules[0]: x"], retry_after=2.0)
    assert isinstance(err, AuthProxyApiError) and not isinstance(err, PreconditionFailedError)
    assert str(err) == "409 the config changed: rules[0]: x"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is ConflictError and (again.status, again.error, again.problems, again.retry_after) == (409, "the config changed", ("rules[0]: x",), 2.0)
    assert str(AuthProxyApiError(500, "boom")) == "500 boom"


def test_client_options_are_checked_and_the_token_is_never_shown() -> None:
    client = AuthProxyClient("http://admin.example:8081//", "secret-token-0123456789")
    try:
        assert client.base_url == "http://admin.example:8081"
        assert "secret-token" not in repr(client)
        with pytest.raises(ValueError):
            client.create("sb", {"rules": []}, if_none_match=cast(Any, "W/x"))
    finally:
        client.close()
    with pytest.raises(ValueError):
        AuthProxyClient("http://a", "bad\ntoken")
    with pytest.raises(ValueError):
        AuthProxyClient("", "t")
    with httpx.Client() as own, pytest.raises(ValueError):
        AuthProxyClient("http://a", "t", http_client=own, transport=httpx.HTTPTransport())
    assert repr(UNSET) == "UNSET"


def test_the_package_is_typed_and_installed_as_published() -> None:
    assert resources.files("authproxy_client").joinpath("py.typed").is_file()
    assert metadata.version("authproxy-client") == authproxy_client.__version__
    requires = metadata.requires("authproxy-client") or []
    assert any(r.startswith("httpx") for r in requires)
    assert metadata.metadata("authproxy-client")["Requires-Python"] == ">=3.10"
    assert sorted(authproxy_client.__all__) == sorted(set(authproxy_client.__all__))
    for name in authproxy_client.__all__:
        assert hasattr(authproxy_client, name), name


def test_a_caller_supplied_http_client_is_used_and_left_open() -> None:
    seen: List[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"sandbox_id": "sb a/b", "version": 4, "env_vars": {"A": "proxy-injected"}})

    with httpx.Client(transport=httpx.MockTransport(handler), headers={"x-trace": "1"}) as own:
        with AuthProxyClient("http://admin.example", "token-0123456789abcdef", http_client=own) as client:
            assert client.env("sb a/b") == {"A": "proxy-injected"}
        assert not own.is_closed
    assert str(seen[0].url) == "http://admin.example/v1/sandboxes/sb%20a%2Fb/env"
    assert seen[0].headers["x-trace"] == "1" and seen[0].headers["authorization"] == "Bearer token-0123456789abcdef"


def test_a_rewrite_rule_is_a_rule_and_keeps_its_place_in_a_merge() -> None:
    moved: RewriteRule = {
        "name": "moved",
        "type": "rewrite",
        "match_hosts": ["api.old.example"],
        "rewrite": {"host": "api.new.example", "port": 443, "credentials": "redact"},
        "headers": [header("X-Key", workspace_secret("KEY"))],
    }
    merged = merge_github_rules([moved], github_proxy_rules("ghs_x"))
    assert [r["name"] for r in merged] == ["github-api", "github-git", "moved"]
    assert merged[2] == moved
