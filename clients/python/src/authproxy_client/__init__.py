"""authproxy's Python client: ``from authproxy_client import AuthProxyClient, configure_github_proxy``.

A client of the admin API of a shared authproxy service (the same surface as the TypeScript SDK, ``import
... from 'authproxy'``), with helpers for the common credential rules. Its only dependency is ``httpx``.
"""

from ._client import (
    DEFAULT_TIMEOUT,
    UNSET,
    AsyncAuthProxyClient,
    AuthProxyApiError,
    AuthProxyClient,
    ConflictError,
    InvalidConfigError,
    NoResponseError,
    NotFoundError,
    PreconditionFailedError,
    Unset,
)
from ._github import GITHUB_API_RULE, GITHUB_GIT_RULE, configure_github_proxy, github_proxy_rules, merge_github_rules
from ._headers import header, opaque_secret, plaintext, workspace_secret
from ._providers import GCP_CLOUD_PLATFORM_SCOPE, aws_auth, aws_rule, gcp_auth, gcp_rule
from ._retry import DEFAULT_RETRY, RetryOptions, backoff_seconds, is_retryable_status, next_delay, retry_after_seconds
from ._types import (
    AccessControl,
    ApiErrorBody,
    AwsAuth,
    AwsRule,
    Callback,
    GcpAuth,
    GcpRule,
    Header,
    HeaderRule,
    HeaderType,
    HeaderValue,
    ProxyConfig,
    Rewrite,
    RewriteRule,
    Rule,
    SandboxConfigResponse,
    SandboxEnvResponse,
    Secret,
    SecretType,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "GCP_CLOUD_PLATFORM_SCOPE",
    "GITHUB_API_RULE",
    "GITHUB_GIT_RULE",
    "UNSET",
    "AccessControl",
    "ApiErrorBody",
    "AsyncAuthProxyClient",
    "AuthProxyApiError",
    "AuthProxyClient",
    "AwsAuth",
    "AwsRule",
    "Callback",
    "ConflictError",
    "GcpAuth",
    "GcpRule",
    "Header",
    "HeaderRule",
    "HeaderType",
    "HeaderValue",
    "InvalidConfigError",
    "NoResponseError",
    "NotFoundError",
    "PreconditionFailedError",
    "ProxyConfig",
    "RetryOptions",
    "Rewrite",
    "RewriteRule",
    "Rule",
    "SandboxConfigResponse",
    "SandboxEnvResponse",
    "Secret",
    "SecretType",
    "Unset",
    "aws_auth",
    "aws_rule",
    "backoff_seconds",
    "configure_github_proxy",
    "gcp_auth",
    "gcp_rule",
    "github_proxy_rules",
    "header",
    "is_retryable_status",
    "merge_github_rules",
    "next_delay",
    "opaque_secret",
    "plaintext",
    "retry_after_seconds",
    "workspace_secret",
]
