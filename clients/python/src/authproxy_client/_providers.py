"""Builders of the cloud provider rules, ``type: aws``, ``type: gcp`` and ``type: azure``.

They check what the server checks (``src/config/provider-schema.ts``), with LangChain's messages, so a
mistake is a ``ValueError`` where the config is built instead of a 422 later. The server stays the judge:
it also resolves the Secrets and checks the service-account key when the config is applied.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

from ._types import AwsAuth, AwsRule, AzureAuth, AzureRule, GcpAuth, GcpRule, HeaderValue, Secret

__all__ = ["GCP_CLOUD_PLATFORM_SCOPE", "aws_auth", "aws_rule", "azure_auth", "azure_rule", "gcp_auth", "gcp_rule"]

_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
# The server's \p{L}\p{Z}\p{N}_.:/=+-@ : letters, digits and spaces of any script.
_TAG_KEY = re.compile(r"[\w .:/=+\-@\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,128}")
_SCOPE_URL = re.compile(r"https://[^\s/]+/\S*")
_MAX_SECRET = 65_536
_STORAGE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}", re.ASCII)

GCP_CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
"""The scope that covers every Google Cloud API (the default of :func:`gcp_auth`)."""


def _secret(field: str, value: object) -> Secret:
    """A Secret from a helper's value: workspace_secret or opaque, never plaintext, never a bare string."""
    if isinstance(value, str):
        raise TypeError(f"{field}: pass workspace_secret(...) or opaque_secret(...), not a bare string")
    if not isinstance(value, Mapping):
        raise TypeError(f"{field}: expected workspace_secret(...) or opaque_secret(...)")
    kind = value.get("type")
    if kind != "workspace_secret" and kind != "opaque":
        raise ValueError(f"{field}: must be workspace_secret or opaque (plaintext is refused: this is a credential)")
    text = value.get("value")
    if not isinstance(text, str):
        raise ValueError(f"{field}: must be a string")
    if text == "":
        raise ValueError(f"{field}: must not be empty")
    if len(text) > _MAX_SECRET:
        raise ValueError(f"{field}: is longer than {_MAX_SECRET} characters")
    return {"type": kind, "value": text}


def aws_auth(
    *,
    access_key_id: Optional[HeaderValue] = None,
    secret_access_key: Optional[HeaderValue] = None,
    role_arn: Optional[str] = None,
    session_tags: Optional[Mapping[str, str]] = None,
) -> AwsAuth:
    """The ``aws`` of a ``type: aws`` rule: static keys, or a role to assume.

    Static keys: ``aws_auth(access_key_id=workspace_secret("AWS_ACCESS_KEY_ID"),
    secret_access_key=opaque_secret(...))``. A role: ``aws_auth(role_arn="arn:aws:iam::123456789012:role/x",
    session_tags={"sandbox": "sb-1"})`` and nothing else. An empty ``role_arn`` counts as absent, as in
    LangChain's types. Raises ``ValueError`` with LangChain's messages.
    """
    if role_arn is not None and role_arn != "":
        if access_key_id is not None or secret_access_key is not None:
            raise ValueError("AWS role auth must contain only role_arn and session_tags")
        if not _ROLE_ARN.fullmatch(role_arn):
            raise ValueError("role_arn: must be an IAM role ARN: arn:aws:iam::<12 digits>:role/<name>")
        role: AwsAuth = {"role_arn": role_arn}
        if session_tags is not None:
            tags: dict[str, str] = {}
            for key, value in session_tags.items():
                if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
                    raise ValueError(f"session_tags.{key}: must be an AWS tag key")
                if not isinstance(value, str) or not 1 <= len(value) <= 256:
                    raise ValueError(f"session_tags.{key}: must be a string of 1 to 256 characters")
                tags[key] = value
            role["session_tags"] = tags
        return role
    if session_tags is not None:
        raise ValueError("session_tags requires role_arn")
    if access_key_id is None or secret_access_key is None:
        raise ValueError("AWS auth requires role_arn or both static credentials")
    return {
        "access_key_id": _secret("access_key_id", access_key_id),
        "secret_access_key": _secret("secret_access_key", secret_access_key),
    }


def aws_rule(
    auth: AwsAuth,
    *,
    name: str = "aws",
    enabled: Optional[bool] = None,
    env_vars: Optional[Mapping[str, str]] = None,
    description: Optional[str] = None,
) -> AwsRule:
    """A ``type: aws`` rule around :func:`aws_auth`'s result (at most one aws rule per config)."""
    rule: AwsRule = {"name": name, "type": "aws", "aws": auth}
    _common(rule, enabled, env_vars, description)
    return rule


def gcp_auth(service_account_json: HeaderValue, scopes: Sequence[str] = (GCP_CLOUD_PLATFORM_SCOPE,)) -> GcpAuth:
    """The ``gcp`` of a ``type: gcp`` rule: a service-account key file's JSON as a Secret, and its scopes.

    ``gcp_auth(opaque_secret(Path("key.json").read_text()))`` seals the key; a workspace secret holding the
    key is ``workspace_secret("GCP_SERVICE_ACCOUNT")``. ``scopes``: 1 to 64 ``https://`` scope URLs.
    """
    if isinstance(scopes, str):
        raise TypeError("scopes: expected a list of scope URLs, not one string")
    listed = list(scopes)
    if not listed:
        raise ValueError("scopes: needs at least one scope")
    if len(listed) > 64:
        raise ValueError("scopes: at most 64 scopes")
    for i, scope in enumerate(listed):
        if not isinstance(scope, str) or not _SCOPE_URL.fullmatch(scope):
            raise ValueError(f"scopes[{i}]: must be an https:// scope URL")
    return {"service_account_json": _secret("service_account_json", service_account_json), "scopes": listed}


def gcp_rule(
    auth: GcpAuth,
    *,
    name: str = "gcp",
    enabled: Optional[bool] = None,
    env_vars: Optional[Mapping[str, str]] = None,
    description: Optional[str] = None,
) -> GcpRule:
    """A ``type: gcp`` rule around :func:`gcp_auth`'s result (at most one gcp rule per config)."""
    rule: GcpRule = {"name": name, "type": "gcp", "gcp": auth}
    _common(rule, enabled, env_vars, description)
    return rule


def azure_auth(
    storage_account: str,
    *,
    account_key: Optional[HeaderValue] = None,
    sas_token: Optional[HeaderValue] = None,
) -> AzureAuth:
    """The ``azure`` of a ``type: azure`` rule: one storage account and exactly one of its key or a SAS token.

    ``azure_auth("acct1", account_key=workspace_secret("AZURE_STORAGE_KEY"))`` re-signs the sandbox's requests
    with Shared Key; ``azure_auth("acct1", sas_token=opaque_secret(sas))`` appends the SAS instead. The
    workload-identity variant (``tenant_id``/``client_id``) is not offered: the server refuses it for now.
    """
    if not isinstance(storage_account, str) or not _STORAGE_ACCOUNT.fullmatch(storage_account):
        raise ValueError("storage_account: must be a storage account name: 3 to 24 lower-case letters and digits")
    if (account_key is None) == (sas_token is None):
        raise ValueError("Azure storage auth requires exactly one of account_key or sas_token")
    if account_key is not None:
        return {"storage_account": storage_account, "account_key": _secret("account_key", account_key)}
    return {"storage_account": storage_account, "sas_token": _secret("sas_token", sas_token)}


def azure_rule(
    auth: AzureAuth,
    *,
    name: str = "azure",
    enabled: Optional[bool] = None,
    env_vars: Optional[Mapping[str, str]] = None,
    description: Optional[str] = None,
) -> AzureRule:
    """A ``type: azure`` rule around :func:`azure_auth`'s result (at most one azure rule per config)."""
    rule: AzureRule = {"name": name, "type": "azure", "azure": auth}
    _common(rule, enabled, env_vars, description)
    return rule


def _common(
    rule: AwsRule | GcpRule | AzureRule,
    enabled: Optional[bool],
    env_vars: Optional[Mapping[str, str]],
    description: Optional[str],
) -> None:
    if enabled is not None:
        rule["enabled"] = enabled
    if env_vars is not None:
        rule["env_vars"] = dict(env_vars)
    if description is not None:
        rule["description"] = description
