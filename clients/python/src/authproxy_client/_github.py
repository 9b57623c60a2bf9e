"""GitHub access for a sandbox with one token: the two rules, and the read-merge-write that refreshes them.
Mirrors ``src/sdk/github.ts``."""

from __future__ import annotations

import base64
import re
from typing import Any, Coroutine, List, Sequence, Union, overload

from ._client import AsyncAuthProxyClient, AuthProxyClient, ConflictError, NotFoundError, PreconditionFailedError
from ._headers import header, opaque_secret
from ._types import HeaderRule, ProxyConfig, Rule, SandboxConfigResponse

__all__ = ["GITHUB_API_RULE", "GITHUB_GIT_RULE", "configure_github_proxy", "github_proxy_rules", "merge_github_rules"]

GITHUB_API_RULE = "github-api"
"""Name of the rule that authenticates GitHub API calls (``api.github.com``, Bearer)."""
GITHUB_GIT_RULE = "github-git"
"""Name of the rule that authenticates git over HTTPS (``github.com``, ``*.github.com``, Basic)."""

_BAD_TOKEN = re.compile(r"[\r\n\0\s]")


def github_proxy_rules(token: str) -> List[HeaderRule]:
    """The two rules that give a sandbox GitHub access with one token (a GitHub App installation token or a
    PAT), both opaque so the token is sealed at rest and never read back:

    - ``github-api``: ``api.github.com``, ``Authorization: Bearer <token>``, with ``GH_TOKEN`` /
      ``GITHUB_TOKEN`` placeholders so ``gh`` and Octokit-based tools send requests at all;
    - ``github-git``: ``github.com`` and ``*.github.com``,
      ``Authorization: Basic base64("x-access-token:<token>")``, what git over HTTPS sends.

    Order matters (the first matching rule wins and ``*.github.com`` also matches ``api.github.com``):
    keep ``github-api`` first, as :func:`configure_github_proxy` does.
    """
    if not isinstance(token, str) or not token or _BAD_TOKEN.search(token):
        raise ValueError("github_proxy_rules: the token must be non-empty, without whitespace")
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
    return [
        {
            "name": GITHUB_API_RULE,
            "match_hosts": ["api.github.com"],
            "headers": [header("Authorization", opaque_secret(f"Bearer {token}"))],
            "env_vars": {"GH_TOKEN": "proxy-injected", "GITHUB_TOKEN": "proxy-injected"},
        },
        {
            "name": GITHUB_GIT_RULE,
            "match_hosts": ["github.com", "*.github.com"],
            "headers": [header("Authorization", opaque_secret(f"Basic {basic}"))],
        },
    ]


def merge_github_rules(rules: Sequence[Rule], github: Sequence[Rule]) -> List[Rule]:
    """Puts the GitHub rules into a sandbox's rules: rules with the same names are replaced, and the pair
    goes where the first of them was (or in front, when neither existed, so it wins for GitHub hosts)."""
    names = {r["name"] for r in github}
    at = next((i for i, r in enumerate(rules) if r["name"] in names), -1)
    others = [r for r in rules if r["name"] not in names]
    insert_at = 0 if at < 0 else len([r for r in rules[:at] if r["name"] not in names])
    return [*others[:insert_at], *github, *others[insert_at:]]


def _merged(current: SandboxConfigResponse, github: List[HeaderRule]) -> ProxyConfig:
    config: ProxyConfig = {**current["proxy_config"]}
    config["rules"] = merge_github_rules(config.get("rules", []), github)
    return config


def _configure_sync(client: AuthProxyClient, sandbox_id: str, token: str, attempts: int) -> SandboxConfigResponse:
    github = github_proxy_rules(token)
    attempt = 1
    while True:
        try:
            try:
                current = client.get(sandbox_id)
            except NotFoundError:
                return client.create(sandbox_id, {"rules": [*github]}, if_none_match="*")
            return client.patch(sandbox_id, _merged(current, github), if_match=current["etag"])
        except (ConflictError, PreconditionFailedError):
            if attempt >= attempts:
                raise
        attempt += 1


async def _configure_async(client: AsyncAuthProxyClient, sandbox_id: str, token: str, attempts: int) -> SandboxConfigResponse:
    github = github_proxy_rules(token)
    attempt = 1
    while True:
        try:
            try:
                current = await client.get(sandbox_id)
            except NotFoundError:
                return await client.create(sandbox_id, {"rules": [*github]}, if_none_match="*")
            return await client.patch(sandbox_id, _merged(current, github), if_match=current["etag"])
        except (ConflictError, PreconditionFailedError):
            if attempt >= attempts:
                raise
        attempt += 1


@overload
def configure_github_proxy(client: AuthProxyClient, sandbox_id: str, token: str, attempts: int = 5) -> SandboxConfigResponse: ...
@overload
def configure_github_proxy(
    client: AsyncAuthProxyClient, sandbox_id: str, token: str, attempts: int = 5
) -> Coroutine[Any, Any, SandboxConfigResponse]: ...
def configure_github_proxy(
    client: Union[AuthProxyClient, AsyncAuthProxyClient], sandbox_id: str, token: str, attempts: int = 5
) -> Union[SandboxConfigResponse, Coroutine[Any, Any, SandboxConfigResponse]]:
    """Gives a sandbox GitHub access with ``token``, or refreshes it: the call to make before each run with a
    fresh (short-lived) GitHub App installation token.

    Reads the sandbox's config and PATCHes it back with the GitHub rules merged in; every other opaque
    header goes back without a value, so the server keeps its stored value. Creates the config (PUT with
    ``If-None-Match: *``) when the sandbox has none. The PATCH names the version it read (``If-Match``),
    so a change another writer makes in between is never overwritten: on 409/412 the read-merge-write is
    done again (up to ``attempts`` times). With an :class:`AsyncAuthProxyClient` it returns a coroutine.
    """
    if attempts < 1:
        raise ValueError("attempts: at least 1")
    if isinstance(client, AsyncAuthProxyClient):
        return _configure_async(client, sandbox_id, token, attempts)
    return _configure_sync(client, sandbox_id, token, attempts)
