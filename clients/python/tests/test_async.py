"""AsyncAuthProxyClient against the real admin API: the same calls, awaited, and configure_github_proxy."""

from __future__ import annotations

import asyncio

import pytest

from authproxy_client import (
    GITHUB_API_RULE,
    GITHUB_GIT_RULE,
    AsyncAuthProxyClient,
    NotFoundError,
    PreconditionFailedError,
    configure_github_proxy,
    header,
    opaque_secret,
    workspace_secret,
)

from conftest import ADMIN_TOKEN, AdminApi

CANARY = "canary-py-async-31c7"


def test_async_round_trip_and_github(admin_api: AdminApi, sandbox_id: str) -> None:
    async def run() -> None:
        async with AsyncAuthProxyClient(admin_api.url, ADMIN_TOKEN) as client:
            created = await client.create(sandbox_id, {"rules": [
                {"name": "openai", "match_hosts": ["api.openai.com"], "headers": [header("Authorization", workspace_secret("Bearer {OPENAI_API_KEY}"))],
                 "env_vars": {"OPENAI_API_KEY": "proxy-injected"}},
                {"name": "internal", "match_hosts": ["api.internal.example"], "headers": [header("X-Key", opaque_secret(CANARY))]},
            ]}, if_none_match="*", organization_id="org-a")
            assert created["version"] == 1 and created["organization_id"] == "org-a"
            read = await client.get(sandbox_id)
            assert CANARY not in repr(read)
            with pytest.raises(PreconditionFailedError):
                await client.replace(sandbox_id, read["proxy_config"], if_match='"0-stale"')
            patched = await client.patch(sandbox_id, {**read["proxy_config"], "description": "async"}, if_match=read["etag"])
            assert patched["version"] == 2
            sealed = admin_api.stored_value(sandbox_id, "internal")

            refreshed = await configure_github_proxy(client, sandbox_id, "ghs_async_py")
            assert [r["name"] for r in refreshed["proxy_config"].get("rules", [])] == [GITHUB_API_RULE, GITHUB_GIT_RULE, "openai", "internal"]
            assert admin_api.stored_value(sandbox_id, "internal") == sealed
            assert await client.env(sandbox_id) == {"GH_TOKEN": "proxy-injected", "GITHUB_TOKEN": "proxy-injected", "OPENAI_API_KEY": "proxy-injected"}

            fresh = await configure_github_proxy(client, f"{sandbox_id}-new", "ghs_async_new")
            assert fresh["version"] == 1

            assert await client.delete(sandbox_id) is True
            assert await client.delete(sandbox_id) is False
            with pytest.raises(NotFoundError):
                await client.env(sandbox_id)

            # Concurrent reads on one client (one connection pool).
            results = await asyncio.gather(*(client.get(f"{sandbox_id}-new") for _ in range(10)))
            assert {r["etag"] for r in results} == {fresh["etag"]}

    asyncio.run(run())
    assert "ghs_async_py" not in admin_api.logs() + admin_api.redis.dump()
