"""One upstream seam (issue 13): only ``eghact_edge.upstream`` speaks aiohttp's client, so
pools, time limits and the translation of its exceptions live in one place. The rest of the
edge may use aiohttp's server (``aiohttp.web``) and reaches the upstream through an
``UpstreamClient``."""

from __future__ import annotations

import ast
from pathlib import Path

EDGE = Path(__file__).resolve().parents[2] / "edge" / "eghact_edge"
SEAM = EDGE / "upstream.py"


def client_uses(path: Path) -> list[str]:
    """Each place ``path`` imports aiohttp's client side, or anything of aiohttp but its server."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] == "aiohttp" and alias.name != "aiohttp.web"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aiohttp":
            found += [f"line {node.lineno}: from {node.module} import {alias.name}" for alias in node.names
                      if not (node.module == "aiohttp" and alias.name == "web") and node.module != "aiohttp.web"]
    return found


def test_only_the_upstream_module_uses_aiohttps_client() -> None:
    sources = [path for path in EDGE.rglob("*.py") if path != SEAM]
    assert len(sources) > 20
    violations = {str(path.relative_to(EDGE)): uses for path in sources if (uses := client_uses(path))}
    assert violations == {}
    assert client_uses(SEAM), "the seam itself is found (the check sees client imports)"
