"""Sorted version lists, for answering many range queries against one list fast.

A resolver asks "highest version of P in range R" over and over against the same packument.
``SortedVersions`` parses and sorts the list once; each query then bisects to the part of
the list the range can reach (``Range._bounds``) and tests from the top (or bottom) down
until a version passes: O(log n) plus the versions it has to skip.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from ._range import Range
from ._version import Version, compare_builds, compare_versions, to_version

T = TypeVar("T")


def _compare_build(a: tuple[Version, Any], b: tuple[Version, Any]) -> int:
    return compare_versions(a[0], b[0]) or compare_builds(a[0], b[0])


def _compare_only_build(a: tuple[Version, Any], b: tuple[Version, Any]) -> int:
    return compare_builds(a[0], b[0])


def sort_pairs(pairs: list[tuple[Version, T]], *, reverse: bool) -> list[tuple[Version, T]]:
    """``(version, item)`` pairs sorted by ``compare_build``, stably."""
    if not all(v._plain for v, _ in pairs):
        return sorted(pairs, key=functools.cmp_to_key(_compare_build), reverse=reverse)
    # precedence keys do the bulk; build metadata only orders runs of equal precedence
    ordered = sorted(pairs, key=lambda pair: pair[0]._key, reverse=reverse)
    result: list[tuple[Version, T]] = []
    for _, run in itertools.groupby(ordered, key=lambda pair: pair[0]._key):
        group = list(run)
        if len(group) > 1:
            group.sort(key=functools.cmp_to_key(_compare_only_build), reverse=reverse)
        result.extend(group)
    return result


class SortedVersions(Sequence[Version]):
    """The valid versions of an iterable, parsed once and kept in ascending order
    (``compare_build``). Immutable; build one per version list and query it many times."""

    __slots__ = ("_keys", "_plain", "_versions", "loose")

    def __init__(self, versions: Iterable[str | Version], *, loose: bool = False) -> None:
        pairs = [(v, None) for v in (to_version(item, loose) for item in versions) if v is not None]
        self._versions: tuple[Version, ...] = tuple(v for v, _ in sort_pairs(pairs, reverse=False))
        self._keys = tuple(v._key for v in self._versions)
        self._plain = all(v._plain for v in self._versions)
        self.loose = loose

    @overload
    def __getitem__(self, index: int) -> Version: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Version]: ...

    def __getitem__(self, index: int | slice) -> Version | Sequence[Version]:
        return self._versions[index]

    def __len__(self) -> int:
        return len(self._versions)

    def __iter__(self) -> Iterator[Version]:
        return iter(self._versions)

    def __repr__(self) -> str:
        return f"SortedVersions({[v.raw for v in self._versions]!r})"

    def max_satisfying(self, wanted: Range) -> Version | None:
        """The highest version in ``wanted`` (the first in this order, among equals)."""
        if not (self._plain and wanted._plain):
            return self._scan(wanted, highest=True)
        keys, (low, high) = self._keys, wanted._bounds
        stop = 0 if low is None else bisect.bisect_left(keys, low)
        start = len(keys) if high is None else bisect.bisect_right(keys, high)
        for i in range(start - 1, stop - 1, -1):
            if wanted.test(self._versions[i]):
                # versions of equal precedence satisfy alike; a scan would keep the first
                return self._versions[bisect.bisect_left(keys, keys[i], stop, i)]
        return None

    def min_satisfying(self, wanted: Range) -> Version | None:
        """The lowest version in ``wanted`` (the first in this order, among equals)."""
        if not (self._plain and wanted._plain):
            return self._scan(wanted, highest=False)
        keys, (low, high) = self._keys, wanted._bounds
        start = 0 if low is None else bisect.bisect_left(keys, low)
        stop = len(keys) if high is None else bisect.bisect_right(keys, high)
        for i in range(start, stop):
            if wanted.test(self._versions[i]):
                return self._versions[i]
        return None

    def _scan(self, wanted: Range, *, highest: bool) -> Version | None:
        # the exact, linear fallback for versions whose precedence keys are not exact
        best: Version | None = None
        for version in self._versions:
            if best is not None:
                order = compare_versions(version, best)
                if (order <= 0) if highest else (order >= 0):
                    continue
            if wanted.test(version):
                best = version
        return best
