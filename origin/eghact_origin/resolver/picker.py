"""Version choice, shared by both solvers, and the ``prompt`` strategy that leaves it to a person.

``version=highest`` is npm's own picker (npm-pick-manifest), restricted to the versions the
policy allows:

1. an exact version or a dist-tag means that version and nothing else;
2. the ``latest`` dist-tag, when it is in the range and not deprecated;
3. otherwise the highest non-deprecated version in the range, then the highest deprecated one.

Prereleases are in a range only when the range names a prerelease of the same
``major.minor.patch`` (node-semver's ``satisfies`` without ``include_prerelease``), except
that ``*`` takes a prerelease ``latest``, as npm does. ``version=lowest`` takes the lowest
non-deprecated version in the range, then the lowest deprecated one.

A request's ``prefer`` (a client's locked versions) goes before either order: the preferred
versions the policy allows, then, when one is excluded, the allowed versions above the lowest
preferred one, lowest first (the smallest move off an excluded version), then the strategy's order.

Both reduce to one *preference order* per package, computed once; a choice is then the first
version of that order inside a bit mask (:meth:`Candidates.first`), so the dedupe solver can
ask it of any intersection of ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eghact_common import semver
from eghact_common.errors import NotFound

from . import explain
from .policy import Policy
from .provider import PackageInfo, Provider, VersionInfo, spec_kind
from .request import ResolveRequest

__all__ = ["Candidates", "Catalog", "PromptResult", "collect_choices"]


class Candidates:
    """One package as one resolution sees it: the versions its policy allows, in the order its
    strategy prefers them."""

    __slots__ = ("allowed", "info", "order")

    def __init__(self, info: PackageInfo, allowed: int, strategy: str, prefer: tuple[str, ...] = ()):
        self.info = info
        self.allowed = allowed
        lowest = strategy == "lowest"
        self.order: tuple[int, ...] = info.memo(("order", allowed, lowest, prefer),
                                                lambda: _preferred(info, allowed, _order(info, allowed, lowest),
                                                                   prefer))

    @property
    def name(self) -> str:
        return self.info.name

    def mask(self, spec: str) -> int:
        """The allowed versions ``spec`` admits."""
        return self.info.mask(spec) & self.allowed

    def first(self, mask: int) -> int | None:
        """The preferred version inside ``mask``, as an index into ``info.ordered``."""
        for i in self.order:
            if mask >> i & 1:
                return i
        return None

    def pick(self, spec: str) -> VersionInfo | None:
        """npm's choice for a dependency on ``spec`` among the allowed versions, or None."""
        mask = self.mask(spec)
        if spec_kind(spec) in ("version", "tag"):
            return self.info.ordered[mask.bit_length() - 1] if mask else None
        i = self.first(mask)
        return None if i is None else self.info.ordered[i]

    def choices(self, mask: int) -> list[str]:
        """The versions inside ``mask``, most preferred first."""
        return [self.info.ordered[i].version for i in self.order if mask >> i & 1]


def _order(info: PackageInfo, allowed: int, lowest: bool) -> tuple[int, ...]:
    indices = [i for i in range(len(info.ordered)) if allowed >> i & 1]
    fresh = [i for i in indices if not info.ordered[i].deprecated]
    stale = [i for i in indices if info.ordered[i].deprecated]
    if lowest:
        return tuple(fresh + stale)
    latest = info.index.get(info.dist_tags.get("latest", ""))
    first = [latest] if latest in fresh else []
    return tuple(first + [i for i in reversed(fresh) if i != latest] + stale[::-1])


def _preferred(info: PackageInfo, allowed: int, order: tuple[int, ...], prefer: tuple[str, ...]) -> tuple[int, ...]:
    """``order`` with the preferred versions first (see the module docstring)."""
    wanted = sorted(i for v in prefer if (i := info.index.get(v)) is not None)
    if not wanted:
        return order
    kept = [i for i in reversed(wanted) if allowed >> i & 1]
    if len(kept) < len(wanted):
        kept += [i for i in range(wanted[0] + 1, len(info.ordered))
                 if allowed >> i & 1 and i not in kept and not info.ordered[i].deprecated]
    return (*kept, *(i for i in order if i not in kept))


class Catalog:
    """The packages one resolution has loaded, each loaded once, lazily, from the provider.

    ``considered`` lists every name asked for, found or not, in the order first asked: the
    names whose publishes can change this resolution.
    """

    def __init__(self, provider: Provider, policy: Policy, strategy: str,
                 prefer: Mapping[str, tuple[str, ...]] | None = None):
        self.provider = provider
        self.policy = policy
        self.strategy = strategy
        self.prefer = prefer or {}
        self._loaded: dict[str, Candidates | None] = {}

    @property
    def considered(self) -> frozenset[str]:
        return frozenset(self._loaded)

    def get(self, name: str) -> Candidates | None:
        """The package's candidates; None when the registry has no such package."""
        if name in self._loaded:
            return self._loaded[name]
        try:
            info = self.provider.package(name)
        except NotFound:
            found = None
        else:
            found = Candidates(info, self.policy.allowed(info), self.strategy, self._prefer(info))
        self._loaded[name] = found
        return found

    def _prefer(self, info: PackageInfo) -> tuple[str, ...]:
        """The package's preferred versions, spelled as ``info.index`` spells them."""
        found = (semver.valid(v, loose=True) for v in self.prefer.get(info.name, ()))
        return tuple(sorted({v for v in found if v is not None}))

    def excluded(self) -> dict[str, list[explain.Exclusion]]:
        return {name: self.policy.excluded(name) for name in self._loaded if self.policy.excluded(name)}

    def plugins_at(self, versions: Mapping[str, int]) -> Catalog:
        """A view of this catalog in which each plugin allows only the version ``versions``
        gives it (an index), and a plugin it does not name allows none; other packages are as
        here. The view loads through this catalog, so nothing is loaded twice and
        ``considered`` stays whole."""
        return _PluginsAt(self, versions)


class _PluginsAt(Catalog):
    def __init__(self, base: Catalog, versions: Mapping[str, int]):
        super().__init__(base.provider, base.policy, base.strategy, base.prefer)
        self._base, self._versions = base, versions

    @property
    def considered(self) -> frozenset[str]:
        return self._base.considered

    def get(self, name: str) -> Candidates | None:
        if name not in self._loaded:
            found = self._base.get(name)
            if found is not None and found.info.plugin:
                index = self._versions.get(name)
                found = Candidates(found.info, found.allowed & (0 if index is None else 1 << index), self.strategy,
                                   self._prefer(found.info))
            self._loaded[name] = found
        return self._loaded[name]

    def excluded(self) -> dict[str, list[explain.Exclusion]]:
        return self._base.excluded()


@dataclass(frozen=True)
class PromptResult:
    """``version=prompt``: the open choices, for a person to make.

    ``choices`` maps each package whose version is still open to the versions that every
    range seen so far allows (preferred first). Packages whose version is already forced are
    followed, so their dependencies' choices appear too; packages reached only through an
    open choice are not. Answer by pinning some of them and asking again.
    """

    choices: dict[str, list[str]]
    considered: frozenset[str] = frozenset()
    warnings: tuple[dict[str, Any], ...] = field(default=())


def collect_choices(request: ResolveRequest, catalog: Catalog) -> PromptResult:
    """Follow the request as far as versions are forced; return what remains open.

    Raises :class:`~eghact_common.errors.Unresolvable` when the ranges seen leave a package
    no version at all.
    """
    seen: dict[str, list[explain.Requirement]] = {}
    fixed: dict[str, int] = {}
    chains: dict[str, tuple[explain.Step, ...]] = {}

    def require(name: str, step: explain.Step, via: tuple[explain.Step, ...]) -> None:
        seen.setdefault(name, []).append(explain.Requirement((*via, step)))

    for name, spec in request.dependencies.items():
        require(name, explain.Step(explain.ROOT, name, spec), ())
    open_masks: dict[str, int] = {}
    progress = True
    while progress:
        progress = False
        open_masks.clear()
        for name in list(seen):
            candidates = catalog.get(name)
            mask = candidates.allowed if candidates is not None else 0
            for requirement in seen[name]:
                mask &= candidates.mask(requirement.last.range) if candidates is not None else 0
            if name in fixed:
                mask &= 1 << fixed[name]
            if candidates is None or not mask:
                raise explain.unresolvable(name, seen[name], excluded=catalog.policy.excluded(name),
                                           missing=candidates is None)
            if name in fixed:
                continue
            if mask & (mask - 1):
                open_masks[name] = mask
                continue
            index = fixed[name] = mask.bit_length() - 1
            info = candidates.info.ordered[index]
            chains[name] = (*seen[name][0].steps,)
            source = explain.label(name, [info.version])
            for dep, kind, spec in info.edges:
                # optional dependencies and optional peers never force anything; nor do specs
                # one version per name cannot follow (git, URL, path, and npm: aliases, whose
                # folder is not the package of that name): the layout after the prompt meets them
                if kind in ("prod", "peer") and spec_kind(spec) != "unsupported":
                    require(dep, explain.Step(source, dep, spec, kind), chains[name])
            progress = True
    choices = {}
    for name, mask in open_masks.items():
        candidates = catalog.get(name)
        if candidates is not None:
            choices[name] = candidates.choices(mask)
    return PromptResult(choices=choices, considered=catalog.considered)
