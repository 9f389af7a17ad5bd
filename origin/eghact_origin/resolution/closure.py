"""Making a request's dependency closure present before it is resolved.

The resolver reads only the local store (worker processes, one snapshot per build). When the
origin can pull packages it does not hold (uplinks: ``fetch_missing``, which knows routing and
upstreams; this module knows neither), a resolution first *walks* its request:

1. each root, then each dependency found, is looked up in the store (:func:`walk_pairs`, in a
   worker, reusing its parse cache, as far as the store goes); the names it lacks are handed
   to ``fetch_missing`` in one call per round (its own concurrency bound applies inside the
   call), and the walk resumes from them;
2. for each present name and each spec asked of it, the walk follows the versions the build
   is likely to choose (:func:`likely_versions`), queueing their dependencies, optional
   dependencies, peers (optional peers too: the solvers load them to check them) and the
   targets of ``npm:`` aliases;
3. the build then runs; any name its provider still found missing (a version the policy or a
   conflict made the solver choose instead) is fetched and the build runs again
   (:class:`Pull` keeps the count, the budget and the deadline across both phases).

The walk is a guess that saves rounds, never a correctness requirement: the retry after the
build is what guarantees that every name the solver asked for was fetched once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eghact_common.errors import NotFound, PayloadTooLarge, UpstreamUnavailable
from eghact_common.npm_leniency import alias_target

from ..resolver import PackageInfo, Provider, VersionInfo
from ..resolver.picker import Candidates

__all__ = ["FetchMissing", "Pair", "Pull", "PullLimits", "alias_target", "likely_versions", "prewalk", "walk_pairs"]

#: Make the names present in the local store if anything upstream has them; returns, per name,
#: whether it is present now (absent from the answer: not present). The uplink service's
#: ``ensure_many`` is one.
FetchMissing = Callable[[list[str]], Awaitable[dict[str, bool]]]
#: A dependency as declared: (name, spec)
Pair = tuple[str, str]
#: One round of the walk, run where the store is read (:func:`walk_pairs`)
Walk = Callable[[list[Pair], frozenset[Pair]], Awaitable[tuple[list[Pair], list[Pair]]]]


@dataclass(frozen=True)
class PullLimits:
    """What one resolution may cost in pulls (settings ``resolve_fetch_*``)."""

    max_names: int = 5_000   # names asked of ``fetch_missing``
    seconds: float = 120.0   # waited for ``fetch_missing``, walk and retries together
    rounds: int = 4          # builds again after the first, each after fetching what it missed


def likely_versions(info: PackageInfo, spec: str, lowest: bool) -> list[VersionInfo]:
    """The versions of ``info`` a build is likely to choose for ``spec``: npm's pick for the
    request's strategy (the ``latest`` tag when it is in range, an exact version or tag's
    target, else the highest, or with ``version=lowest`` the lowest, non-deprecated version)
    and the highest version in range when that differs. The request's policy is not applied:
    it excludes few versions of plain libraries, and following one version too many costs one
    packument read per dependency, while missing the chosen one costs a whole extra build."""
    mask = info.mask(spec)
    if not mask:
        return []
    chosen = [info.ordered[mask.bit_length() - 1]]
    picked = Candidates(info, info.all_mask, "lowest" if lowest else "highest").pick(spec)
    if picked is not None and picked is not chosen[0]:
        chosen.append(picked)
    return chosen


def walk_pairs(provider: Provider, pairs: Iterable[Pair], lowest: bool,
               seen: frozenset[Pair] = frozenset()) -> tuple[list[Pair], list[Pair]]:
    """Follow ``pairs`` through what the store holds, transitively, skipping ``seen``: returns
    the pairs whose package the store lacks (the walk resumes there once they are fetched) and
    every pair walked. A closure that is all local is one call. Blocking; runs in a worker."""
    walked: dict[Pair, None] = {}
    missing: list[Pair] = []
    loaded: dict[str, PackageInfo | None] = {}
    queue = deque(pairs)
    while queue:
        pair = queue.popleft()
        if pair in walked or pair in seen:
            continue
        walked[pair] = None
        name, spec = pair
        if name not in loaded:
            try:
                loaded[name] = provider.package(name)
            except NotFound:
                loaded[name] = None
        info = loaded[name]
        if info is None:
            missing.append(pair)
            continue
        for version in likely_versions(info, spec, lowest):
            queue.extend(alias_target(dep_spec) or (dep, dep_spec) for dep, _, dep_spec in version.edges)
    return missing, list(walked)


class Pull:
    """What one build fetched through ``fetch_missing``, within its bounds: at most
    ``max_names`` names asked for (beyond: 413 ``closure_too_large``, before asking) and
    ``seconds`` of waiting in all (beyond: 503 ``closure_timeout``; what was fetched stays
    stored, so asking again goes on from there). Each name is asked for once."""

    def __init__(self, fetch: FetchMissing, limits: PullLimits, *, clock: Callable[[], float] = time.monotonic,
                 keep: Callable[[asyncio.Task[Any]], None] | None = None):
        self._fetch = fetch
        self._max_names = limits.max_names
        self._clock = clock
        self._keep = keep
        self._started = clock()
        self._deadline = self._started + limits.seconds
        self._seconds = limits.seconds
        self.asked: set[str] = set()
        self.present: set[str] = set()
        self.walked = 0   # names made present while walking
        self.retried = 0  # names made present after a build asked for them

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    @property
    def absent(self) -> set[str]:
        """Names ``fetch_missing`` could not make present (upstream has none, routing forbids)."""
        return self.asked - self.present

    async def names(self, names: Iterable[str], *, retry: bool = False) -> set[str]:
        """Fetch those of ``names`` not asked for before; returns the ones now present."""
        todo = sorted(set(names) - self.asked)
        if not todo:
            return set()
        if len(self.asked) + len(todo) > self._max_names:
            raise PayloadTooLarge(
                f"resolving this request would fetch more than {self._max_names} packages "
                "from upstream registries", code="closure_too_large",
                detail={"limit": self._max_names, "fetched": len(self.present), "wanted": len(self.asked) + len(todo)})
        self.asked.update(todo)
        answer = await self._within_deadline(todo)
        now = {name for name in todo if answer.get(name) is True}
        self.present |= now
        if retry:
            self.retried += len(now)
        else:
            self.walked += len(now)
        return now

    async def _within_deadline(self, todo: list[str]) -> Mapping[str, bool]:
        # Waited for, not cancelled, at the deadline: the fetcher's writes finish in the
        # background (``keep`` tracks the task), and the next ask of this request finds them.
        task = asyncio.ensure_future(self._fetch(todo))
        if self._keep is not None:
            self._keep(task)
        done, _ = await asyncio.wait({task}, timeout=max(0.0, self._deadline - self._clock()))
        if not done:
            raise UpstreamUnavailable(
                f"fetching this request's dependencies took more than {self._seconds:g} s; "
                "what was fetched is kept: ask again", code="closure_timeout",
                detail={"seconds": self._seconds, "fetched": len(self.present), "pending": len(todo)})
        return task.result()


async def prewalk(roots: Mapping[str, str], walk: Walk, pull: Pull) -> None:
    """Walk from ``roots`` until every likely dependency is present or known absent: one walk
    through the store per round of fetches."""
    seen: set[Pair] = set()
    pending = list(roots.items())
    while pending:
        missing, walked = await walk(pending, frozenset(seen))
        seen.update(walked)
        seen.difference_update(missing)  # walked again once fetched
        fetched = await pull.names(name for name, _ in missing)
        pending = [pair for pair in missing if pair[0] in fetched]
