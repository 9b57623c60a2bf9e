"""Header value helpers for building proxy_configs in code.

Put one into a header with its name, ``{"name": "Authorization", **workspace_secret("Bearer {OPENAI_API_KEY}")}``
or ``header("Authorization", workspace_secret("Bearer {OPENAI_API_KEY}"))``. They exist so the three header
types read at a glance and a key name can't silently become a literal value. Mirrors ``src/sdk/headers.ts``.
"""

from __future__ import annotations

import re

from ._types import Header, HeaderValue

__all__ = ["header", "opaque_secret", "plaintext", "workspace_secret"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def plaintext(value: str) -> HeaderValue:
    """A non-secret header value, stored and returned as is (e.g. ``anthropic-version``)."""
    return {"type": "plaintext", "value": value}


def workspace_secret(template_or_key: str) -> HeaderValue:
    """A value resolved from the server's workspace secrets when the config is applied.

    A bare key becomes a placeholder (``workspace_secret("GITHUB_TOKEN")`` is ``{GITHUB_TOKEN}``) and a
    template that already holds ``{KEY}`` placeholders passes through (``"Bearer {GITHUB_TOKEN}"``).
    Anything else raises ``ValueError``: a workspace_secret without a placeholder is a config error.
    """
    if _PLACEHOLDER.search(template_or_key):
        return {"type": "workspace_secret", "value": template_or_key}
    if _KEY.fullmatch(template_or_key):
        return {"type": "workspace_secret", "value": "{" + template_or_key + "}"}
    raise ValueError("workspace_secret: expected a secret key (A-Z, a-z, 0-9, _) or a template containing {KEY}")


def opaque_secret(value: str) -> HeaderValue:
    """A write-only secret: sent in plaintext over the authenticated admin API, sealed by the server before
    it is stored, never returned. A value already sealed (``sealed:...``) is stored as is."""
    return {"type": "opaque", "value": value}


def header(name: str, value: HeaderValue) -> Header:
    """A rule's (or callback's) header: ``header("x-api-key", workspace_secret("ANTHROPIC_API_KEY"))``."""
    return {"name": name, "type": value["type"], "value": value["value"]}
