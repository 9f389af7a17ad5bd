"""The resolver's output graph: the one value the solvers produce and the lockfile and
load planner consume.

A node is one installed copy of one version. Under ``duplicate=dedupe-all`` there is one node
per name and its key is ``node_modules/<name>``; under ``duplicate=isolate`` and
``duplicate=plugins`` (which holds only plugins to one version) a name may have several
nodes, keyed by their npm install location (``node_modules/a/node_modules/b``), exactly as
npm's package-lock ``packages`` keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EdgeKind = Literal["prod", "optional", "peer"]


@dataclass(frozen=True)
class Node:
    key: str
    name: str
    version: str
    type: str                      # component | transformer | middleware | theme | library
    resolved: str                  # tarball URL
    integrity: str
    size: int                      # bytes the load plan counts (dist.unpackedSize, else tarball size)
    license: str | None
    dependencies: dict[str, str]   # every declared edge that was installed: name -> range as declared
    capabilities: tuple[str, ...] = ()            # required + enabled optional capabilities
    disabled_capabilities: tuple[str, ...] = ()   # optional ones the policy denied
    framework: str | None = None                  # eghact.version range
    optional: bool = False         # reached only through optional dependencies
    peer: bool = False             # installed to satisfy a peer dependency
    deprecated: str | None = None
    advisories: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Edge:
    source: str                    # node key, or "" for the request's root
    target: str                    # node key
    kind: EdgeKind
    range: str


@dataclass(frozen=True)
class ResolvedGraph:
    roots: dict[str, str]                          # requested name -> node key
    nodes: dict[str, Node]
    edges: tuple[Edge, ...]
    warnings: tuple[dict[str, Any], ...] = ()
    considered: frozenset[str] = field(default_factory=frozenset)   # names whose versions were looked at

    def dependencies_of(self, key: str) -> list[str]:
        return [e.target for e in self.edges if e.source == key]
