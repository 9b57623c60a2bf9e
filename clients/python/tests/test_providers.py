"""aws_auth / gcp_auth: what they build is what the real server accepts, their checks raise LangChain's
messages locally, and opaque Secrets are kept by a PATCH and never read back."""

from __future__ import annotations

import json
from typing import Any, Dict, cast

import pytest

from authproxy_client import (
    GCP_CLOUD_PLATFORM_SCOPE,
    AuthProxyClient,
    ConflictError,
    InvalidConfigError,
    aws_auth,
    aws_rule,
    gcp_auth,
    gcp_rule,
    opaque_secret,
    plaintext,
    workspace_secret,
)

from conftest import AWS_SECRET, AdminApi

ROLE = "arn:aws:iam::123456789012:role/sandbox-runner"
AWS_CANARY = "py/aws+secret/canary/0123456789abcdefghij"


def test_aws_static_keys_are_accepted_and_opaque_ones_never_read_back(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str) -> None:
    rule = aws_rule(aws_auth(access_key_id=workspace_secret("AWS_ACCESS_KEY_ID"), secret_access_key=opaque_secret(AWS_CANARY)), description="static")
    created = client.create(sandbox_id, {"rules": [rule]})
    shown = created["proxy_config"].get("rules", [])[0]
    assert shown == {
        "name": "aws", "type": "aws", "enabled": True, "env_vars": {}, "description": "static",
        "aws": {
            "access_key_id": {"type": "workspace_secret", "value": "{AWS_ACCESS_KEY_ID}"},
            "secret_access_key": {"type": "opaque", "is_set": True},
        },
    }
    env = client.env(sandbox_id)
    assert set(env) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} and AWS_CANARY not in repr(env)
    sealed = admin_api.stored_value(sandbox_id, "aws", 1)
    assert sealed.startswith("sealed:")
    patched = client.patch(sandbox_id, {**client.get(sandbox_id)["proxy_config"], "description": "patched"})
    assert patched["version"] == 2 and admin_api.stored_value(sandbox_id, "aws", 1) == sealed
    assert AWS_CANARY not in admin_api.redis.dump() + admin_api.logs() + repr(patched)

    both_ws = aws_auth(access_key_id=workspace_secret("AWS_ACCESS_KEY_ID"), secret_access_key=workspace_secret("AWS_SECRET_ACCESS_KEY"))
    assert client.create(f"{sandbox_id}-ws", {"rules": [aws_rule(both_ws, name="aws-ws")]})["version"] == 1
    assert AWS_SECRET not in admin_api.redis.dump()


def test_aws_role_with_session_tags_is_accepted_and_fixed_after_create(client: AuthProxyClient, sandbox_id: str) -> None:
    rule = aws_rule(aws_auth(role_arn=ROLE, session_tags={"sandbox": sandbox_id, "team": "ml"}))
    created = client.create(sandbox_id, {"rules": [rule]})
    shown = created["proxy_config"].get("rules", [])[0]
    assert shown.get("type") == "aws"
    assert cast(Dict[str, Any], shown)["aws"] == {"role_arn": ROLE, "session_tags": {"sandbox": sandbox_id, "team": "ml"}}
    assert client.env(sandbox_id)["AWS_EC2_METADATA_DISABLED"] == "true"
    other = aws_rule(aws_auth(role_arn="arn:aws:iam::123456789012:role/other"))
    with pytest.raises(ConflictError) as err:
        client.patch(sandbox_id, {"rules": [other]})
    assert err.value.status == 409 and "AWS role" in err.value.error
    assert err.value.problems and err.value.problems[0].startswith('rules "aws": ')


def test_gcp_service_account_key_is_accepted(client: AuthProxyClient, admin_api: AdminApi, sandbox_id: str, service_account_json: str) -> None:
    key = json.loads(service_account_json)
    rule = gcp_rule(gcp_auth(opaque_secret(service_account_json), ["https://www.googleapis.com/auth/devstorage.read_only"]))
    created = client.create(sandbox_id, {"rules": [rule]})
    shown = cast(Dict[str, Any], created["proxy_config"].get("rules", [])[0])
    assert shown["gcp"] == {"service_account_json": {"type": "opaque", "is_set": True}, "scopes": ["https://www.googleapis.com/auth/devstorage.read_only"]}
    assert "CLOUDSDK_AUTH_ACCESS_TOKEN" in client.env(sandbox_id)
    assert key["private_key"].splitlines()[1] not in admin_api.redis.dump() + admin_api.logs() + repr(created)
    sealed = admin_api.stored_value(sandbox_id, "gcp")
    client.patch(sandbox_id, client.get(sandbox_id)["proxy_config"])
    assert admin_api.stored_value(sandbox_id, "gcp") == sealed

    from_secrets = gcp_rule(gcp_auth(workspace_secret("GCP_SERVICE_ACCOUNT")), name="gcp-ws")
    res = client.create(f"{sandbox_id}-ws", {"rules": [from_secrets]})
    assert cast(Dict[str, Any], res["proxy_config"].get("rules", [])[0])["gcp"]["scopes"] == [GCP_CLOUD_PLATFORM_SCOPE]


def test_the_server_still_checks_what_only_it_can(client: AuthProxyClient, sandbox_id: str) -> None:
    not_a_key = gcp_rule(gcp_auth(opaque_secret('{"type": "authorized_user"}')))
    with pytest.raises(InvalidConfigError) as err:
        client.create(sandbox_id, {"rules": [not_a_key]})
    assert err.value.problems[0].startswith('rules[0].gcp.service_account_json: rule "gcp": ')
    bad_id = aws_rule(aws_auth(access_key_id=opaque_secret("not an access key"), secret_access_key=opaque_secret("x")))
    with pytest.raises(InvalidConfigError) as bad:
        client.create(sandbox_id, {"rules": [bad_id]})
    assert bad.value.problems[0].startswith("rules[0].aws.access_key_id: ")


def test_aws_auth_checks_with_langchains_messages() -> None:
    with pytest.raises(ValueError, match="^AWS auth requires role_arn or both static credentials$"):
        aws_auth(access_key_id=workspace_secret("AWS_ACCESS_KEY_ID"))
    with pytest.raises(ValueError, match="^AWS auth requires role_arn or both static credentials$"):
        aws_auth(role_arn="")
    with pytest.raises(ValueError, match="^AWS role auth must contain only role_arn and session_tags$"):
        aws_auth(role_arn=ROLE, access_key_id=workspace_secret("AWS_ACCESS_KEY_ID"))
    with pytest.raises(ValueError, match="^session_tags requires role_arn$"):
        aws_auth(access_key_id=workspace_secret("A"), secret_access_key=workspace_secret("B"), session_tags={"k": "v"})
    with pytest.raises(ValueError, match="^role_arn: must be an IAM role ARN"):
        aws_auth(role_arn="arn:aws:iam::123:role/x")
    with pytest.raises(ValueError, match="^role_arn: must be an IAM role ARN"):
        aws_auth(role_arn=ROLE + "\n")
    with pytest.raises(ValueError, match="^session_tags.bad\\*key: must be an AWS tag key$"):
        aws_auth(role_arn=ROLE, session_tags={"bad*key": "v"})
    with pytest.raises(ValueError, match="plaintext is refused"):
        aws_auth(access_key_id=plaintext("AKIA"), secret_access_key=opaque_secret("s"))
    with pytest.raises(TypeError, match="not a bare string"):
        aws_auth(access_key_id=cast(Any, "AKIA"), secret_access_key=opaque_secret("s"))
    assert aws_auth(role_arn="", access_key_id=workspace_secret("A"), secret_access_key=opaque_secret("s")) == {
        "access_key_id": {"type": "workspace_secret", "value": "{A}"},
        "secret_access_key": {"type": "opaque", "value": "s"},
    }
    assert aws_auth(role_arn="arn:aws-us-gov:iam::123456789012:role/path/name", session_tags={"Équipe 1": "x"}) == {
        "role_arn": "arn:aws-us-gov:iam::123456789012:role/path/name",
        "session_tags": {"Équipe 1": "x"},
    }


def test_gcp_auth_checks() -> None:
    key = opaque_secret('{"type": "service_account"}')
    assert gcp_auth(key) == {"service_account_json": {"type": "opaque", "value": '{"type": "service_account"}'}, "scopes": [GCP_CLOUD_PLATFORM_SCOPE]}
    with pytest.raises(ValueError, match="^scopes: needs at least one scope$"):
        gcp_auth(key, [])
    with pytest.raises(ValueError, match="^scopes\\[1\\]: must be an https:// scope URL$"):
        gcp_auth(key, [GCP_CLOUD_PLATFORM_SCOPE, "http://insecure.example/scope"])
    with pytest.raises(TypeError, match="not one string"):
        gcp_auth(key, GCP_CLOUD_PLATFORM_SCOPE)
    with pytest.raises(ValueError, match="^service_account_json: must not be empty$"):
        gcp_auth(opaque_secret(""))
    with pytest.raises(ValueError, match="plaintext is refused"):
        gcp_auth(plaintext("{}"))
    rule = gcp_rule(gcp_auth(key), name="google", enabled=False, env_vars={"X": "y"}, description="d")
    assert rule == {"name": "google", "type": "gcp", "gcp": gcp_auth(key), "enabled": False, "env_vars": {"X": "y"}, "description": "d"}
