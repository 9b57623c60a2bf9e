"""azure_auth / azure_rule: what they build is what the real server accepts (a key re-signed with Shared Key,
or a SAS), their checks raise the server's messages locally, and opaque Secrets are sealed, kept by a PATCH
and never read back."""

from __future__ import annotations

import base64
from typing import Any, Dict, cast

import pytest

from authproxy_client import AuthProxyClient, InvalidConfigError, azure_auth, azure_rule, opaque_secret, plaintext, workspace_secret

from conftest import AdminApi

KEY_CANARY = base64.b64encode(b"py-azure-account-key-canary-0123456789").decode()
SAS_CANARY = "sv=2025-01-05&sp=r&sig=pyAzureSasCanary%3D"


def test_account_key_is_accepted_sealed_and_never_read_back(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    created = client.create(sandbox_id, {"rules": [azure_rule(azure_auth("acct1", account_key=opaque_secret(KEY_CANARY)), description="blobs")]})
    shown = cast(Dict[str, Any], created["proxy_config"].get("rules", [])[0])
    assert shown["azure"] == {"storage_account": "acct1", "account_key": {"type": "opaque", "is_set": True}}
    env = client.env(sandbox_id)
    assert env["AZURE_STORAGE_ACCOUNT"] == "acct1" and "AZURE_STORAGE_KEY" in env and KEY_CANARY not in repr(env)
    stored = admin_api.stored_config(sandbox_id)
    assert stored is not None
    sealed = stored["rules"][0]["azure"]["account_key"]["value"]
    assert sealed.startswith("sealed:")
    client.patch(sandbox_id, client.get(sandbox_id)["proxy_config"])
    again = admin_api.stored_config(sandbox_id)
    assert again is not None and again["rules"][0]["azure"]["account_key"]["value"] == sealed
    assert KEY_CANARY not in admin_api.redis.dump() + admin_api.logs() + repr(created)


def test_sas_token_is_accepted_and_checked_by_the_server(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    created = client.create(sandbox_id, {"rules": [azure_rule(azure_auth("acct1", sas_token=opaque_secret(SAS_CANARY)), name="sas")]})
    assert "AZURE_STORAGE_SAS_TOKEN" in client.env(sandbox_id)
    assert SAS_CANARY not in admin_api.redis.dump() + repr(created)
    no_sig = azure_rule(azure_auth("acct1", sas_token=opaque_secret("sv=2025-01-05&sp=r")))
    with pytest.raises(InvalidConfigError) as err:
        client.create(f"{sandbox_id}-bad", {"rules": [no_sig]})
    assert list(err.value.problems) == ['rules[0].azure.sas_token: rule "azure": unsealed value is not a SAS token: it has no sig parameter']


def test_azure_auth_checks() -> None:
    assert azure_auth("acct1", account_key=workspace_secret("AZ_KEY")) == {"storage_account": "acct1", "account_key": {"type": "workspace_secret", "value": "{AZ_KEY}"}}
    with pytest.raises(ValueError, match="^Azure storage auth requires exactly one of account_key or sas_token$"):
        azure_auth("acct1")
    with pytest.raises(ValueError, match="^Azure storage auth requires exactly one of account_key or sas_token$"):
        azure_auth("acct1", account_key=workspace_secret("A"), sas_token=workspace_secret("B"))
    with pytest.raises(ValueError, match="^storage_account: must be a storage account name"):
        azure_auth("My_Account", account_key=workspace_secret("A"))
    with pytest.raises(ValueError, match="plaintext is refused"):
        azure_auth("acct1", sas_token=plaintext("sv=1&sig=x"))
    rule = azure_rule(azure_auth("acct1", sas_token=workspace_secret("SAS")), enabled=False, env_vars={"X": "y"})
    assert rule == {"name": "azure", "type": "azure", "azure": azure_auth("acct1", sas_token=workspace_secret("SAS")), "enabled": False, "env_vars": {"X": "y"}}
