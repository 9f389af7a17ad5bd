"""``Comparator`` and ``Range``: sets of versions, and the test of a version against them.

A port of node-semver 7.8's ``classes/comparator.js`` and the structural half of
``classes/range.js`` (the text rewriting lives in ``_desugar``).

A range is a disjunction (``||``) of sets; a set is a conjunction of primitive comparators
(``>=1.2.0``, ``<2.0.0-0``, ``1.2.3`` or the match-anything ``""``). For speed each set is
also compiled to ``(operator function, precedence key)`` pairs, so testing a version is a
handful of C-level tuple comparisons (``Range.test``), and parsed ranges are cached.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from ._desugar import comparator_strings
from ._errors import InvalidRange
from ._re import COMPARATOR, COMPARATORLOOSE, WHITESPACE_RUN, js_split_ws, js_trim
from ._version import Version, compare_versions, parse_version, tested_version

_RANGE_CACHE_SIZE = 4096
_NULL_SET = "<0.0.0-0"

# how each operator reads the result of compare(version, bound)
_ON_COMPARE: dict[str, Callable[[int], bool]] = {
    "": lambda c: c == 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}
# the same, applied to precedence keys directly
_ON_KEYS: dict[str, Callable[[Any, Any], bool]] = {
    "": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class Comparator:
    """One primitive comparator: ``operator`` (``""``, ``<``, ``<=``, ``>``, ``>=``) and
    ``semver``, or the match-anything comparator (``value == ""``, ``semver is None``).

    ``Comparator(text, loose=...)`` parses (cached) and raises :class:`InvalidRange`.
    """

    __slots__ = ("loose", "operator", "semver", "value")

    operator: str
    semver: Version | None
    value: str
    loose: bool

    def __new__(cls, comp: str | Comparator, *, loose: bool = False) -> Comparator:
        if isinstance(comp, Comparator):
            if comp.loose == bool(loose):
                return comp
            comp = comp.value
        if not isinstance(comp, str):
            raise InvalidRange(f"Invalid comparator: must be a string, got {type(comp).__name__!r}")
        parsed = _comparator(comp, bool(loose))
        if parsed is None:
            raise InvalidRange(f"Invalid comparator: {comp}")
        return parsed

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Comparator is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_comparator_from_text, (self.value, self.loose))

    def __repr__(self) -> str:
        return f"Comparator({self.value!r})"

    def __str__(self) -> str:
        return self.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Comparator):
            return NotImplemented
        return self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def test(self, version: str | Version) -> bool:
        """Whether ``version`` satisfies this comparator: text that is not a version does
        not; a value that is neither text nor a Version raises InvalidVersion (as upstream)."""
        if self.semver is None:
            return True
        parsed = tested_version(version, self.loose)
        if parsed is None:
            return False
        return _ON_COMPARE[self.operator](compare_versions(parsed, self.semver))

    def intersects(self, other: Comparator, *, loose: bool = False, include_prerelease: bool = False) -> bool:
        """Whether some version satisfies both comparators (``Comparator#intersects``)."""
        if not isinstance(other, Comparator):
            raise TypeError("a Comparator is required")
        if self.operator == "":
            if self.value == "":
                return True
            return Range(other.value, loose=loose, include_prerelease=include_prerelease).test(self.value)
        mine, theirs = self.semver, other.semver
        if other.operator == "":
            if theirs is None:
                return True
            return Range(self.value, loose=loose, include_prerelease=include_prerelease).test(theirs)
        if mine is None or theirs is None:  # only the "" operator goes without a version
            return True
        # nothing can be below 0.0.0-0 (or, prereleases excluded, below 0.0.0)
        if include_prerelease and _NULL_SET in (self.value, other.value):
            return False
        if not include_prerelease and (self.value.startswith("<0.0.0") or other.value.startswith("<0.0.0")):
            return False
        my_op, their_op = self.operator, other.operator
        if my_op[0] == their_op[0]:  # same direction: both open upwards, or both downwards
            return True
        if mine.version == theirs.version and "=" in my_op and "=" in their_op:
            return True
        order = compare_versions(mine, theirs)
        return (order < 0 and my_op[0] == ">") or (order > 0 and my_op[0] == "<")


def _comparator_from_text(value: str, loose: bool) -> Comparator:
    return Comparator(value, loose=loose)


@functools.lru_cache(maxsize=_RANGE_CACHE_SIZE)
def _comparator(text: str, loose: bool) -> Comparator | None:
    text = " ".join(js_split_ws(js_trim(text)))
    match = (COMPARATORLOOSE if loose else COMPARATOR).match(text)
    if match is None:
        return None
    op = match[1] or ""
    if op == "=":
        op = ""
    semver = None
    if match[2]:
        semver = parse_version(match[2], loose)
        if semver is None:
            return None
    self = object.__new__(Comparator)
    object.__setattr__(self, "operator", op)
    object.__setattr__(self, "semver", semver)
    object.__setattr__(self, "value", "" if semver is None else op + semver.version)
    object.__setattr__(self, "loose", loose)
    return self


class Range:
    """A parsed range: ``set`` is a tuple of alternatives, each a tuple of comparators.

    ``range`` is the canonical text (``""`` for a range matching everything, where
    :func:`valid_range` says ``"*"``). ``Range(text, loose=..., include_prerelease=...)``
    parses (cached, shared) and raises :class:`InvalidRange`.
    """

    __slots__ = ("_bounds", "_compiled", "_plain", "include_prerelease", "loose", "range", "raw", "set")

    raw: str
    set: tuple[tuple[Comparator, ...], ...]
    range: str
    loose: bool
    include_prerelease: bool
    _compiled: tuple[tuple[tuple[tuple[Callable[[Any, Any], bool], Any], ...], frozenset[tuple[int, int, int]]], ...]
    _plain: bool
    _bounds: tuple[Any, Any]

    def __new__(
        cls, range: str | Range | Comparator, *, loose: bool = False, include_prerelease: bool = False
    ) -> Range:
        loose, include_prerelease = bool(loose), bool(include_prerelease)
        if isinstance(range, Range):
            if range.loose == loose and range.include_prerelease == include_prerelease:
                return range
            range = range.raw
        elif isinstance(range, Comparator):
            return _build(range.value, ((range,),), loose, include_prerelease)
        if not isinstance(range, str):
            raise InvalidRange(f"Invalid SemVer Range: must be a string, got {type(range).__name__!r}")
        parsed = parse_range(range, loose, include_prerelease)
        if parsed is None:
            raise InvalidRange(f"Invalid SemVer Range: {range}")
        return parsed

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Range is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_range_from_text, (self.raw, self.loose, self.include_prerelease))

    def __repr__(self) -> str:
        return f"Range({self.range!r})"

    def __str__(self) -> str:
        return self.range

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return (self.range, self.loose, self.include_prerelease) == (
            other.range,
            other.loose,
            other.include_prerelease,
        )

    def __hash__(self) -> int:
        return hash((self.range, self.loose, self.include_prerelease))

    def test(self, version: str | Version) -> bool:
        """Whether ``version`` satisfies the range: text that is not a version, and None,
        do not; any other value that is not a Version raises InvalidVersion (as upstream)."""
        parsed = tested_version(version, self.loose, falsy_fails=True)
        if parsed is None:
            return False
        if not (self._plain and parsed._plain):
            return self._test_slowly(parsed)
        key = parsed._key
        for comparators, prerelease_ok in self._compiled:
            for holds, bound in comparators:
                if not holds(key, bound):
                    break
            else:
                # a prerelease passes only if this set names a prerelease of the same
                # M.m.p: ^1.2.3-pr.1 admits 1.2.3-pr.2 but not 1.2.4-alpha
                if parsed.prerelease and not self.include_prerelease:
                    if (parsed.major, parsed.minor, parsed.patch) in prerelease_ok:
                        return True
                    continue
                return True
        return False

    def _test_slowly(self, version: Version) -> bool:
        for comparators in self.set:
            if not all(c.test(version) for c in comparators):
                continue
            if version.prerelease and not self.include_prerelease:
                if any(
                    c.semver is not None
                    and c.semver.prerelease
                    and (c.semver.major, c.semver.minor, c.semver.patch)
                    == (version.major, version.minor, version.patch)
                    for c in comparators
                ):
                    return True
                continue
            return True
        return False

    def intersects(self, other: Range, *, loose: bool = False, include_prerelease: bool = False) -> bool:
        """Whether some version could satisfy both ranges (``Range#intersects``)."""
        if not isinstance(other, Range):
            raise TypeError("a Range is required")
        opts = {"loose": loose, "include_prerelease": include_prerelease}
        return any(
            _satisfiable(mine, **opts)
            and any(
                _satisfiable(theirs, **opts) and all(a.intersects(b, **opts) for a in mine for b in theirs)
                for theirs in other.set
            )
            for mine in self.set
        )


def _satisfiable(comparators: tuple[Comparator, ...], *, loose: bool, include_prerelease: bool) -> bool:
    # upstream pops the last comparator and checks it against all the others, repeatedly
    remaining = list(comparators)
    current = remaining.pop()
    while remaining:
        if not all(current.intersects(o, loose=loose, include_prerelease=include_prerelease) for o in remaining):
            return False
        current = remaining.pop()
    return True


def _range_from_text(raw: str, loose: bool, include_prerelease: bool) -> Range:
    return Range(raw, loose=loose, include_prerelease=include_prerelease)


@functools.lru_cache(maxsize=_RANGE_CACHE_SIZE)
def parse_range(text: str, loose: bool, include_prerelease: bool) -> Range | None:
    """Parse ``text`` like ``new Range(text, options)``; ``None`` where that throws."""
    # collapse whitespace first, so the bounded patterns never meet long runs of it
    raw = WHITESPACE_RUN.sub(" ", js_trim(text))
    sets: list[tuple[Comparator, ...]] = []
    for part in raw.split("||"):
        comparators = _parse_set(js_trim(part), loose, include_prerelease)
        if comparators is None:
            return None
        if comparators:  # an empty alternative (loose mode dropped it all) is no alternative
            sets.append(comparators)
    if not sets:
        return None
    if len(sets) > 1:
        # null sets go unless all are null; then a match-anything set swallows the rest
        first = sets[0]
        sets = [s for s in sets if s[0].value != _NULL_SET] or [first]
        if len(sets) > 1:
            for s in sets:
                if len(s) == 1 and s[0].value == "":
                    sets = [s]
                    break
    return _build(raw, tuple(sets), loose, include_prerelease)


def _parse_set(part: str, loose: bool, include_prerelease: bool) -> tuple[Comparator, ...] | None:
    unique: dict[str, Comparator] = {}
    for text in comparator_strings(part, loose, include_prerelease):
        comparator = _comparator(text, loose)
        if comparator is None:
            return None
        if comparator.value == _NULL_SET:
            return (comparator,)
        unique[comparator.value] = comparator
    if len(unique) > 1:
        unique.pop("", None)
    return tuple(unique.values())


def _build(raw: str, sets: tuple[tuple[Comparator, ...], ...], loose: bool, include_prerelease: bool) -> Range:
    self = object.__new__(Range)
    put = object.__setattr__
    put(self, "raw", raw)
    put(self, "set", sets)
    put(self, "loose", loose)
    put(self, "include_prerelease", include_prerelease)
    put(self, "range", "||".join(" ".join(c.value for c in s) for s in sets))
    compiled = []
    plain = True
    for s in sets:
        checks = []
        prerelease_ok = set()
        for c in s:
            if c.semver is None:
                continue
            plain = plain and c.semver._plain
            checks.append((_ON_KEYS[c.operator], c.semver._key))
            if c.semver.prerelease:
                prerelease_ok.add((c.semver.major, c.semver.minor, c.semver.patch))
        compiled.append((tuple(checks), frozenset(prerelease_ok)))
    put(self, "_compiled", tuple(compiled))
    put(self, "_plain", plain)
    put(self, "_bounds", _bounds(sets) if plain else (None, None))
    return self


def _bounds(sets: tuple[tuple[Comparator, ...], ...]) -> tuple[Any, Any]:
    """(lowest, highest) precedence key any version in the range can have; None = open.

    Inclusive and loose on purpose: it only narrows where to look in a sorted list, the
    real test still decides.
    """
    lows: list[Any] = []
    highs: list[Any] = []
    for s in sets:
        low = high = None
        for c in s:
            if c.semver is None:
                continue
            key = c.semver._key
            if c.operator in ("", ">", ">=") and (low is None or key > low):
                low = key
            if c.operator in ("", "<", "<=") and (high is None or key < high):
                high = key
        lows.append(low)
        highs.append(high)
    return (
        None if any(k is None for k in lows) else min(lows),
        None if any(k is None for k in highs) else max(highs),
    )
