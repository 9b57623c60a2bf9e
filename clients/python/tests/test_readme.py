"""The Python examples of the READMEs (this package's, the repository's, and any under docs/) run as written
against the real admin API: only the admin URL, the token and the sandbox id are swapped in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from authproxy_client import GITHUB_API_RULE, AuthProxyClient

from conftest import ADMIN_TOKEN, REPO, AdminApi

HERE = Path(__file__).resolve().parents[1]


def examples() -> List[Tuple[str, str]]:
    files = [HERE / "README.md", REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    found: List[Tuple[str, str]] = []
    for path in files:
        if path.is_file():
            for i, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S)):
                if "AuthProxyClient(" in block:
                    found.append((f"{path.relative_to(REPO)}#{i}", block))
    return found


EXAMPLES = examples()


def test_this_package_readme_has_an_example() -> None:
    assert any(name.startswith("clients/python/README.md") for name, _ in EXAMPLES)


@pytest.mark.parametrize("code", [code for _, code in EXAMPLES], ids=[name for name, _ in EXAMPLES])
def test_readme_example_runs(code: str, admin_api: AdminApi, client: AuthProxyClient, sandbox_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHPROXY_ADMIN_TOKEN", ADMIN_TOKEN)
    runnable = code.replace("http://authproxy-admin:8081", admin_api.url).replace("sb-123", sandbox_id)
    namespace: Dict[str, Any] = {"installation_token": "ghs_readme_example_token"}
    exec(compile(runnable, "README example", "exec"), namespace)
    res = client.get(sandbox_id)
    assert GITHUB_API_RULE in [r["name"] for r in res["proxy_config"].get("rules", [])]
    assert namespace["env"]["GH_TOKEN"] == "proxy-injected"
