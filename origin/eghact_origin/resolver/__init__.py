"""The resolver: from a request's root ranges to a :class:`ResolvedGraph` of installed copies.

::

    request     ResolveRequest: the POST /-/v1/resolve body, validated, canonical form and hash
    provider    Provider protocol, PackageInfo/VersionInfo, MemoryProvider
    policy      capability, licence, security and framework rules applied to versions
    picker      version choice (npm-pick-manifest), the catalog of loaded packages, prompt
    dedupe      one version per name (or per key): PubGrub conflict-driven search
    isolate     npm's node_modules layout (arborist), over _tree and _placement
    plugins     one version per plugin (dedupe over plugins), then npm's layout (isolate)
    explain     conflict explanations (Unresolvable, 422)
    graph       the output value shared with the lockfile and load planner
"""

from __future__ import annotations

from eghact_common.errors import Unresolvable

from .dedupe import resolve_dedupe
from .graph import Edge, Node, ResolvedGraph
from .isolate import resolve_isolate
from .picker import Catalog, PromptResult, collect_choices
from .plugins import resolve_plugins
from .policy import Exclusion, Policy
from .provider import MemoryProvider, PackageInfo, Provider, VersionInfo, package_info_from_packument
from .request import ResolveRequest

__all__ = [
    "Edge",
    "Exclusion",
    "MemoryProvider",
    "Node",
    "PackageInfo",
    "Policy",
    "PromptResult",
    "Provider",
    "ResolveRequest",
    "ResolvedGraph",
    "VersionInfo",
    "package_info_from_packument",
    "resolve",
    "resolve_dedupe",
    "resolve_isolate",
    "resolve_plugins",
]


def resolve(request: ResolveRequest, provider: Provider) -> ResolvedGraph | PromptResult:
    """Resolve ``request`` with the strategies it names.

    ``version=prompt`` returns the open choices (:class:`PromptResult`) while any remain;
    once every version is forced by the ranges, it resolves as ``highest`` would.
    Raises :class:`~eghact_common.errors.Unresolvable` (422) with an explanation.
    """
    if request.strategy.version == "prompt":
        catalog = Catalog(provider, Policy(request), "highest")
        try:
            prompt = collect_choices(request, catalog)
        except Unresolvable as error:
            error.detail["considered"] = sorted(catalog.considered)
            raise
        if prompt.choices:
            return prompt
        request = request.with_strategy(version="highest")
    if request.strategy.duplicate == "isolate":
        return resolve_isolate(request, provider)
    if request.strategy.duplicate == "dedupe-all":
        return resolve_dedupe(request, provider)
    return resolve_plugins(request, provider)
