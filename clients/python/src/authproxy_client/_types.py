"""The admin API's wire types, as TypedDicts (the JSON goes over the wire as it is).

They mirror the TypeScript SDK's types (``src/sdk/types.ts``), which are derived from the proxy_config
schema. One shape serves writes and reads: an opaque header or Secret carries its ``value`` when it is
written, and comes back from a read as ``{"type": "opaque", "is_set": True}`` without one; sent back like
that in a PATCH, it keeps the stored value. The server checks every body; these types are for editors and
type checkers.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Literal, Union, final

if sys.version_info >= (3, 11):
    from typing import NotRequired, Required, TypedDict
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired, Required, TypedDict

__all__ = [
    "AccessControl",
    "ApiErrorBody",
    "AwsAuth",
    "AwsRule",
    "Callback",
    "GcpAuth",
    "GcpRule",
    "Header",
    "HeaderRule",
    "HeaderType",
    "HeaderValue",
    "ProxyConfig",
    "Rewrite",
    "RewriteRule",
    "Rule",
    "SandboxConfigResponse",
    "SandboxEnvResponse",
    "Secret",
    "SecretType",
]

HeaderType = Literal["plaintext", "workspace_secret", "opaque"]
"""How a header's value is given: as is, a ``{KEY}`` template of workspace secrets, or write-only."""

SecretType = Literal["workspace_secret", "opaque"]
"""How a provider rule's credential is given (never plaintext: it is a credential)."""


class HeaderValue(TypedDict):
    """What :func:`plaintext`, :func:`workspace_secret` and :func:`opaque_secret` return: a header without
    its name, so ``{"name": "Authorization", **workspace_secret("Bearer {KEY}")}`` is a :class:`Header`."""

    type: HeaderType
    value: str
    is_set: NotRequired[bool]
    """Never set by the helpers; declared so that unpacking one into a :class:`Header` type-checks."""


class Header(TypedDict):
    """One header of a rule or a callback.

    Written with its ``value``; an opaque one reads back as ``{"name", "type": "opaque", "is_set": True}``.
    """

    name: str
    type: HeaderType
    value: NotRequired[str]
    is_set: NotRequired[bool]


class Secret(TypedDict):
    """A provider rule's credential: ``{type, value}`` written; an opaque one reads back as ``is_set``."""

    type: SecretType
    value: NotRequired[str]
    is_set: NotRequired[bool]


@final
class HeaderRule(TypedDict, total=False):
    """A header-injection rule (it has no ``type``): the first enabled rule matching host and path wins."""

    name: Required[str]
    match_hosts: Required[List[str]]
    headers: Required[List[Header]]
    match_paths: List[str]
    match_headers: List[str]
    enabled: bool
    env_vars: Dict[str, str]
    description: str


class Rewrite(TypedDict, total=False):
    """``rewrite`` of a ``type: rewrite`` rule: exactly one of ``host`` (https, verified against it) and
    ``sandbox``, the ``port``, and what happens to the credentials the sandbox sent (default ``strip``)."""

    host: str
    sandbox: str
    port: Required[int]
    credentials: Literal["strip", "redact", "keep"]


@final
class RewriteRule(TypedDict, total=False):
    """A ``type: rewrite`` rule: matched like a header rule, it sends requests to another destination,
    then sets its own ``headers`` (optional)."""

    name: Required[str]
    type: Required[Literal["rewrite"]]
    match_hosts: Required[List[str]]
    rewrite: Required[Rewrite]
    headers: List[Header]
    match_paths: List[str]
    enabled: bool
    env_vars: Dict[str, str]
    description: str


class AwsAuth(TypedDict, total=False):
    """``aws`` of a ``type: aws`` rule: static keys, or a role (``role_arn`` and optional ``session_tags``)."""

    access_key_id: Secret
    secret_access_key: Secret
    role_arn: str
    session_tags: Dict[str, str]
    subject_scope: str


@final
class AwsRule(TypedDict, total=False):
    """A ``type: aws`` rule: re-signs requests to AWS endpoints with SigV4 (it matches AWS hosts itself)."""

    name: Required[str]
    type: Required[Literal["aws"]]
    aws: Required[AwsAuth]
    match_hosts: List[str]
    enabled: bool
    env_vars: Dict[str, str]
    description: str


class GcpAuth(TypedDict):
    """``gcp`` of a ``type: gcp`` rule: a service-account key (JSON) and the OAuth2 scopes to mint for."""

    service_account_json: Secret
    scopes: NotRequired[List[str]]


@final
class GcpRule(TypedDict, total=False):
    """A ``type: gcp`` rule: mints access tokens for Google APIs (it matches Google API hosts itself)."""

    name: Required[str]
    type: Required[Literal["gcp"]]
    gcp: Required[GcpAuth]
    match_hosts: List[str]
    enabled: bool
    env_vars: Dict[str, str]
    description: str


class AzureAuth(TypedDict, total=False):
    """``azure`` of a ``type: azure`` rule: a storage account and exactly one of its key or a SAS token."""

    storage_account: Required[str]
    account_key: Secret
    sas_token: Secret


@final
class AzureRule(TypedDict, total=False):
    """A ``type: azure`` rule: re-signs (Shared Key) or adds a SAS to requests to one storage account's endpoints."""

    name: Required[str]
    type: Required[Literal["azure"]]
    azure: Required[AzureAuth]
    enabled: bool
    env_vars: Dict[str, str]
    description: str


Rule = Union[HeaderRule, RewriteRule, AwsRule, GcpRule, AzureRule]
"""Any rule of a proxy_config."""


class Callback(TypedDict, total=False):
    """Your own credential endpoint for matched hosts, its answer cached for ``ttl_seconds``."""

    match_hosts: Required[List[str]]
    url: Required[str]
    ttl_seconds: Required[int]
    request_headers: List[Header]
    full_request: bool


class AccessControl(TypedDict, total=False):
    """Egress policy: populate one of ``allow_list`` or ``deny_list``."""

    allow_list: List[str]
    deny_list: List[str]


class ProxyConfig(TypedDict, total=False):
    """A proxy_config. Reads return it with defaults filled in (and without opaque values)."""

    rules: List[Rule]
    callbacks: List[Callback]
    access_control: AccessControl
    no_proxy: List[str]
    description: str


class SandboxConfigResponse(TypedDict):
    """What GET, PUT and PATCH on ``/v1/sandboxes/{id}/proxy-config`` answer."""

    sandbox_id: str
    tenant_id: str
    """The tenant (workspace) the sandbox belongs to: sent to callbacks as ``identity.tenant_id``."""
    organization_id: NotRequired[str]
    """Sent to callbacks as ``identity.organization_id``; absent when none is set."""
    version: int
    """Grows by one on every write of this sandbox's config."""
    etag: str
    """The entity tag of this version: pass it as ``if_match`` to write only if nobody changed it since."""
    updated_at: str
    """ISO 8601 time of the latest write."""
    proxy_config: ProxyConfig


class SandboxEnvResponse(TypedDict):
    """What ``GET /v1/sandboxes/{id}/env`` answers: placeholders a sandbox should set (never secrets)."""

    sandbox_id: str
    version: int
    env_vars: Dict[str, str]


class ApiErrorBody(TypedDict):
    """Every error response of the admin API."""

    error: str
    problems: NotRequired[List[str]]
