"""``duplicate=plugins`` (the default): one version per plugin, npm's nesting for plain libraries.

The runtime activates one copy of each plugin (a package with an ``eghact`` block), so every
requirer of a plugin must accept one version of it. Plain npm libraries have no such limit:
npm nests a second ``ms`` under the package that needs it, and so does this strategy. Two
passes:

1. **Versions.** The dedupe search (:mod:`.dedupe`, PubGrub with backtracking) runs over
   *keys*: a plugin's key is its name, so all its requirements meet on one version; a plain
   library's key is its name *and* the range asked for, so requirements on it never
   conflict (each range gets its own copy, as npm gives it). A failure is therefore always a
   disagreement about a plugin (or a range nothing satisfies), explained with the requirers'
   chains; the explanation says so.
2. **Layout.** npm's tree (:mod:`.isolate`) is built with every plugin held to the version
   pass 1 chose and every library requirement given the version pass 1 chose for it
   (libraries may have been stepped back to avoid a plugin conflict), so the tree's copies
   are the ones the search proved consistent. With one allowed version, a plugin's copies
   all hoist to one place. An optional or peer requirement the search dropped (no library
   version for it, or the plugin's version does not meet it) is not fetched at all -- a
   failed copy would shadow good ones -- and ends as the usual warning.

An optional peer on a plain library asks nothing of pass 1 (its key, the name at that range,
is not otherwise required), yet npm fetches a copy in range when the layout shows the dependent
another version of the name (``app -> e ^1``, ``c -> e 1.0.0`` optional peer: npm installs
e@1.0.0 for both). So when the layout meets such a peer with a copy outside its range, pass 1
runs again with that key *wanted* (a soft requirement, dropped only if it cannot hold) and the
layout again with its version; each round only adds keys, and if wanting them fails, the tree
without them stands.

A package counts as a plugin when any of its versions has an ``eghact`` block.
"""

from __future__ import annotations

from typing import Any

from eghact_common.errors import Unresolvable

from .dedupe import Keys, solve
from .graph import ResolvedGraph
from .isolate import Builder
from .picker import Catalog
from .policy import Policy
from .provider import Provider, registry_spec, spec_kind
from .request import ResolveRequest

__all__ = ["resolve_plugins"]

# Between a library's name and the range in its key: no package name or range holds it.
_SEP = "\x00"
# Layouts tried per request: each retry wants at least one more key. In 80 seeds of the
# property tests (8,906 requests) 113 retried, wanting at most two keys.
_MAX_ROUNDS = 8


class _PluginKeys(Keys):
    """Plugins keyed by name, plain libraries by name and range."""

    def __init__(self, catalog: Catalog, wanted: frozenset[str] = frozenset()):
        self.catalog, self._wanted = catalog, wanted

    def key(self, name: str, spec: str) -> str:
        found = self.catalog.get(name)
        return name if found is not None and found.info.plugin else f"{name}{_SEP}{spec}"

    def edge(self, name: str, spec: str) -> tuple[str, str] | None:
        # npm's layout gives an alias its own folder, so its target is one more requirement
        # on that package (a library's copy at that range, or the plugin's one version)
        package, wanted = registry_spec(name, spec)
        return None if spec_kind(wanted) == "unsupported" else (self.key(package, wanted), wanted)

    def name(self, key: str) -> str:
        return key.split(_SEP, 1)[0]

    def wanted(self, key: str) -> bool:
        return key in self._wanted


def resolve_plugins(request: ResolveRequest, provider: Provider) -> ResolvedGraph:
    """Resolve with one version per plugin and npm's layout for everything else. Raises
    :class:`~eghact_common.errors.Unresolvable` with an explanation (naming the plugin and
    its requirers) when the plugins' requirers cannot agree."""
    policy = Policy(request)
    catalog = Catalog(provider, policy, request.strategy.version, request.prefer)
    builder = _layout(request, catalog, policy, _PluginKeys(catalog))
    wanted: frozenset[str] = frozenset()
    for _ in range(1, _MAX_ROUNDS):
        missed = {asked[0] for edge in builder.missed_optional_peers()
                  if (asked := _PluginKeys(catalog).edge(edge.name, edge.spec)) is not None}
        if missed <= wanted:
            break
        wanted |= missed
        try:
            builder = _layout(request, catalog, policy, _PluginKeys(catalog, wanted))
        except Unresolvable:
            break  # the tree without them stands (with its warnings): wanting is only a better try
    try:
        return builder.finish(request)
    except Unresolvable as error:
        error.detail["considered"] = sorted(catalog.considered)
        raise


def _layout(request: ResolveRequest, catalog: Catalog, policy: Policy, keys: _PluginKeys) -> Builder:
    """Pass 1 (the versions) and pass 2 (npm's tree with them), not yet finished."""
    try:
        chosen = solve(request, catalog, keys)
    except Unresolvable as error:
        raise _about_plugin(error, catalog) from None
    plugins: dict[str, int] = {}
    pins: dict[tuple[str, str], int] = {}
    for key, index in chosen.items():
        name, _, spec = key.partition(_SEP)
        if _SEP in key:
            pins[(name, spec)] = index
        else:
            plugins[name] = index
    # every plugin the layout meets allows one version (or none, if pass 1 never installed
    # it), so no plugin can be laid out at two versions
    builder = Builder(request, catalog.plugins_at(plugins), policy, pins)
    try:
        builder.build()
    except Unresolvable as error:
        error.detail["considered"] = sorted(catalog.considered)
        raise
    return builder


def _about_plugin(error: Unresolvable, catalog: Catalog) -> Unresolvable:
    """``error``, saying why the requirers must agree when they disagree about a plugin."""
    conflict: dict[str, Any] | None = error.detail.get("conflict")
    package = conflict.get("package") if conflict else None
    found = catalog.get(package) if isinstance(package, str) else None
    if conflict is None or found is None or not found.info.plugin or len(conflict["requirements"]) < 2:
        return error
    conflict["plugin"] = True
    return Unresolvable(f"{error.message} ({package} is a plugin: an app loads one copy of each plugin, so "
                        f"its requirers must agree on one version)", detail=error.detail)
