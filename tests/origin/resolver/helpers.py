"""Shared by the resolver tests: the JSON data, and the invariants every resolved graph keeps."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from eghact_common import semver
from eghact_origin.resolver import MemoryProvider, ResolvedGraph
from eghact_origin.resolver.provider import registry_spec, spec_kind

DATA = Path(__file__).parent / "data"


@functools.cache
def universe(name: str) -> dict[str, Any]:
    return json.loads((DATA / "universes" / f"{name}.json").read_text())["packages"]


def case_names() -> list[str]:
    return sorted(path.stem for path in (DATA / "cases").glob("*.json"))


@functools.cache
def case(name: str) -> dict[str, Any]:
    return json.loads((DATA / "cases" / f"{name}.json").read_text())


def edge_met(version: str, spec: str, tags: dict[str, str] | None = None) -> bool:
    """Whether an installed ``version`` meets a declared ``spec``, as npm checks it."""
    if spec.strip() in ("*", ""):
        return True
    if spec_kind(spec) == "tag":
        return tags is None or tags.get(spec) == version
    return semver.satisfies(version, spec, loose=True)


def folder(key: str) -> str:
    """The folder a node's key ends with: its name, or its npm: alias."""
    return key.rsplit("node_modules/", 1)[-1]


def visible_from(keys: set[str], source: str, name: str) -> str | None:
    """The copy of ``name`` that Node's module resolution finds from ``source``."""
    base = source
    while True:
        candidate = f"{base}/node_modules/{name}" if base else f"node_modules/{name}"
        if candidate in keys:
            return candidate
        if not base:
            return None
        cut = base.rfind("/node_modules/")
        base = base[:cut] if cut >= 0 else ""


def check_invariants(graph: ResolvedGraph, *, dedupe: bool, plugins: bool = False,
                     provider: MemoryProvider | None = None) -> None:
    """What every graph promises the lockfile and the load planner; ``plugins``: also one copy
    of each plugin (a name with an eghact block in any version, as ``provider`` has it, else as
    the nodes' types say)."""
    keys = set(graph.nodes)
    for name, key in graph.roots.items():
        assert key in keys, f"root {name} -> {key} is not a node"
        assert graph.nodes[key].name == name
    for key, node in graph.nodes.items():
        assert node.key == key
        out = {e.target: e for e in graph.edges if e.source == key}
        # a node's folder is its name, or the name of the npm: alias that put it there
        assert {folder(t) for t in out} == set(node.dependencies), key
        for out_key, out_edge in out.items():
            assert node.dependencies[folder(out_key)] == out_edge.range
    for edge in graph.edges:
        assert edge.source == "" or edge.source in keys, edge
        target = graph.nodes[edge.target]
        package, wanted = registry_spec(folder(edge.target), edge.range)
        assert target.name == package, edge
        assert edge_met(target.version, wanted), f"{edge.source} -> {target.name}@{target.version} {edge.range}"
        # the edge points at the copy the runtime will actually load -- or, where npm would
        # break a nesting cycle with a symlink to an ancestor copy, at that ancestor
        assert (visible_from(keys, edge.source, folder(edge.target)) == edge.target
                or edge.source.startswith(edge.target + "/")), edge
    if plugins:
        copies = [node.name for node in graph.nodes.values()
                  if (provider.package(node.name).plugin if provider is not None else node.type != "library")]
        assert len(copies) == len(set(copies)), f"two copies of one plugin: {sorted(copies)}"
    if dedupe:
        names = [node.name for node in graph.nodes.values()]
        assert len(names) == len(set(names)), "dedupe holds two versions of one name"
        assert all(key == f"node_modules/{node.name}" for key, node in graph.nodes.items())
    reachable, stack = set(), [""]
    while stack:
        here = stack.pop()
        for edge in graph.edges:
            if edge.source == here and edge.target not in reachable:
                reachable.add(edge.target)
                stack.append(edge.target)
    assert reachable == keys, f"unreachable nodes: {keys - reachable}"
