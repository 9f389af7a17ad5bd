"""The layering of DESIGN/STYLE: the shared kernel imports no service, and the edge, the
mirror and the client reach the origin only over HTTP, never by import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "eghact_common": ROOT / "common" / "eghact_common",
    "eghact_origin": ROOT / "origin" / "eghact_origin",
    "eghact_edge": ROOT / "edge" / "eghact_edge",
    "eghact_mirror": ROOT / "mirror-sync" / "eghact_mirror",
    "eghact_client": ROOT / "client" / "eghact_client",
}
FORBIDDEN = {
    "eghact_common": {"eghact_origin", "eghact_edge", "eghact_mirror", "eghact_client"},
    "eghact_edge": {"eghact_origin", "eghact_mirror", "eghact_client"},
    "eghact_mirror": {"eghact_origin", "eghact_edge", "eghact_client"},
    "eghact_origin": {"eghact_edge", "eghact_mirror", "eghact_client"},
    # the client reaches every node over HTTP alone, as a plugin user's machine must
    "eghact_client": {"eghact_origin", "eghact_edge", "eghact_mirror"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_package_exists_as_a_real_package() -> None:
    for name, folder in PACKAGES.items():
        assert (folder / "__init__.py").is_file(), name


def test_no_forbidden_imports() -> None:
    violations = []
    checked = 0
    for package, folder in PACKAGES.items():
        for source in folder.rglob("*.py"):
            checked += 1
            for root in imported_roots(source) & FORBIDDEN[package]:
                violations.append(f"{source.relative_to(ROOT)} imports {root}")
    assert checked > 10
    assert violations == []
