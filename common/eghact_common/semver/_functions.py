"""node-semver's function API, in snake_case, over ``Version`` and ``Range``.

Every function takes keyword-only ``loose`` and ``include_prerelease`` (ignored where
node-semver ignores it). Error behaviour follows node-semver 7.8, function by function
(``tests/common/test_semver_errors.py`` holds its answers): functions that return text
(``valid``, ``valid_range``, ``inc``, ``truncate``) and ``parse`` return ``None`` for invalid
input; ``satisfies``, ``max_satisfying`` and ``min_satisfying`` give "not satisfied" for an
invalid range or version text (and None), but raise :class:`InvalidVersion` for a value
that is not text at all, as node-semver throws there; ``clean`` takes text only; the rest
raise :class:`InvalidVersion` / :class:`InvalidRange`. Nothing is ever coerced with ``str()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

from ._errors import InvalidRange, InvalidVersion
from ._range import Comparator, Range
from ._re import js_trim
from ._sorted import SortedVersions, sort_pairs
from ._version import (
    RELEASE_TYPES,
    Version,
    compare_builds,
    compare_versions,
    parse_version,
    require_version,
    tested_version,
    to_version,
)

T = TypeVar("T", str, Version)

_LEADING_EQ_V = re.compile(r"^[=v]+")


def parse(version: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> Version | None:
    """The parsed version, or ``None``."""
    return to_version(version, loose)


def valid(version: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> str | None:
    """The canonical text of a version (without build metadata), or ``None``."""
    parsed = to_version(version, loose)
    return parsed.version if parsed is not None else None


def clean(version: str, *, loose: bool = False, include_prerelease: bool = False) -> str | None:
    """``valid`` after trimming whitespace and leading ``=``/``v`` (``" =v1.2.3 "`` → ``1.2.3``)."""
    if not isinstance(version, str):   # upstream calls version.trim(), which throws
        raise InvalidVersion(f"Invalid version. Must be a string. Got type {type(version).__name__!r}.")
    return valid(_LEADING_EQ_V.sub("", js_trim(version), count=1), loose=loose)


def compare(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> int:
    """-1, 0 or 1 as ``a`` is lower than, equal to or higher than ``b`` in precedence."""
    return compare_versions(require_version(a, loose), require_version(b, loose))


def rcompare(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> int:
    """``compare`` reversed."""
    return compare(b, a, loose=loose)


def compare_build(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> int:
    """``compare``, with build metadata breaking ties."""
    va, vb = require_version(a, loose), require_version(b, loose)
    return compare_versions(va, vb) or compare_builds(va, vb)


def eq(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    return compare(a, b, loose=loose) == 0


def neq(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    return compare(a, b, loose=loose) != 0


def gt(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    return compare(a, b, loose=loose) > 0


def gte(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    return compare(a, b, loose=loose) >= 0


def lt(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    return compare(a, b, loose=loose) < 0


def lte(a: str | Version, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    return compare(a, b, loose=loose) <= 0


def cmp(a: str | Version, op: str, b: str | Version, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    """``a op b`` for ``op`` in ``== = "" != > >= < <=``; ``===``/``!==`` compare the texts
    (a ``Version``'s ``.version``, a string as given). Raises ``ValueError`` for another ``op``."""
    if op in ("===", "!=="):
        # Upstream compares with JavaScript's ===, after reading .version off objects: any
        # other value is compared as it is (1 === "1.2.3" is false), but null has no .version.
        texts = [x.version if isinstance(x, Version) else _strict(x) for x in (a, b)]
        return (texts[0] == texts[1]) == (op == "===")
    tests = {
        "": eq,
        "=": eq,
        "==": eq,
        "!=": neq,
        ">": gt,
        ">=": gte,
        "<": lt,
        "<=": lte,
    }
    if op not in tests:
        raise ValueError(f"Invalid operator: {op}")
    return tests[op](a, b, loose=loose)


def _strict(value: object) -> object:
    if value is None:
        require_version(value, False)  # raises InvalidVersion, as null.version throws
    return value


def satisfies(
    version: str | Version, range: str | Range, *, loose: bool = False, include_prerelease: bool = False
) -> bool:
    """Whether ``version`` is in ``range``. Never raises: invalid input is not satisfied."""
    try:
        parsed = Range(range, loose=loose, include_prerelease=include_prerelease)
    except InvalidRange:
        return False
    return parsed.test(version)


def max_satisfying(
    versions: Iterable[T], range: str | Range, *, loose: bool = False, include_prerelease: bool = False
) -> T | None:
    """The highest item of ``versions`` in ``range`` (the first such, among equals), or None.

    Invalid items are skipped, an invalid range gives None. Given :class:`SortedVersions`
    (see :func:`sorted_versions`) it bisects instead of scanning the whole list.
    """
    return _extreme(versions, range, loose, include_prerelease, highest=True)


def min_satisfying(
    versions: Iterable[T], range: str | Range, *, loose: bool = False, include_prerelease: bool = False
) -> T | None:
    """The lowest item of ``versions`` in ``range`` (the first such, among equals), or None."""
    return _extreme(versions, range, loose, include_prerelease, highest=False)


def _extreme(
    versions: Iterable[T], range: str | Range, loose: bool, include_prerelease: bool, *, highest: bool
) -> T | None:
    try:
        parsed_range = Range(range, loose=loose, include_prerelease=include_prerelease)
    except InvalidRange:
        return None
    if isinstance(versions, SortedVersions):
        return versions.max_satisfying(parsed_range) if highest else versions.min_satisfying(parsed_range)
    best: T | None = None
    best_version: Version | None = None
    for item in versions:
        # as upstream's rangeObj.test(item): a value that is not text raises, None is skipped
        version = tested_version(item, loose, falsy_fails=True)
        if version is None:
            continue
        if best_version is not None:
            # only a strictly better version replaces the incumbent, so test only those
            order = compare_versions(version, best_version)
            if (order <= 0) if highest else (order >= 0):
                continue
        if parsed_range.test(version):
            best, best_version = item, version
    return best


def sorted_versions(versions: Iterable[str | Version], *, loose: bool = False) -> SortedVersions:
    """The valid ``versions`` in ascending order, ready for fast repeated
    :func:`max_satisfying` / :func:`min_satisfying` (e.g. one per packument)."""
    return SortedVersions(versions, loose=loose)


def sort(versions: Iterable[T], *, loose: bool = False, include_prerelease: bool = False) -> list[T]:
    """A new list of ``versions`` in ascending order (``compare_build``; stable).
    Raises :class:`InvalidVersion` for an invalid item."""
    pairs = [(require_version(item, loose), item) for item in versions]
    return [item for _, item in sort_pairs(pairs, reverse=False)]


def rsort(versions: Iterable[T], *, loose: bool = False, include_prerelease: bool = False) -> list[T]:
    """A new list of ``versions`` in descending order (``compare_build``; stable)."""
    pairs = [(require_version(item, loose), item) for item in versions]
    return [item for _, item in sort_pairs(pairs, reverse=True)]


def valid_range(range: str | Range, *, loose: bool = False, include_prerelease: bool = False) -> str | None:
    """The canonical text of a range (``"*"`` for match-anything), or ``None``."""
    try:
        return Range(range, loose=loose, include_prerelease=include_prerelease).range or "*"
    except InvalidRange:
        return None


def intersects(
    range1: str | Range | Comparator,
    range2: str | Range | Comparator,
    *,
    loose: bool = False,
    include_prerelease: bool = False,
) -> bool:
    """Whether some version could satisfy both ranges. Raises :class:`InvalidRange`."""
    first = Range(range1, loose=loose, include_prerelease=include_prerelease)
    second = Range(range2, loose=loose, include_prerelease=include_prerelease)
    return first.intersects(second, loose=loose, include_prerelease=include_prerelease)


def inc(
    version: str | Version,
    release: str,
    identifier: str | None = None,
    identifier_base: str | int | bool | None = None,
    *,
    loose: bool = False,
    include_prerelease: bool = False,
) -> str | None:
    """The version text after a ``release`` bump, or ``None`` if impossible (see ``Version.inc``)."""
    parsed = parse_version(version.version, loose) if isinstance(version, Version) else to_version(version, loose)
    if parsed is None:
        return None
    try:
        return parsed.inc(release, identifier, identifier_base).version
    except ValueError:
        return None


def truncate(
    version: str | Version, release_type: str, *, loose: bool = False, include_prerelease: bool = False
) -> str | None:
    """The version without what lies below ``release_type`` (``major`` → ``M.0.0``; the
    ``pre*`` types keep the prerelease); build metadata always goes. ``None`` if invalid."""
    if release_type not in RELEASE_TYPES:
        return None
    parsed = parse_version(version.version, loose) if isinstance(version, Version) else to_version(version, loose)
    if parsed is None:
        return None
    if release_type.startswith("pre"):
        return parsed.version
    if release_type == "major":
        return f"{parsed.major}.0.0"
    if release_type == "minor":
        return f"{parsed.major}.{parsed.minor}.0"
    return f"{parsed.major}.{parsed.minor}.{parsed.patch}"


def gtr(version: str | Version, range: str | Range, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    """Whether ``version`` is above every version ``range`` could match."""
    return outside(version, range, ">", loose=loose, include_prerelease=include_prerelease)


def ltr(version: str | Version, range: str | Range, *, loose: bool = False, include_prerelease: bool = False) -> bool:
    """Whether ``version`` is below every version ``range`` could match."""
    return outside(version, range, "<", loose=loose, include_prerelease=include_prerelease)


# the match-anything comparator counts as >=0.0.0 here
_ANY_AS_BOUND = Comparator(">=0.0.0")
_ZERO = Version("0.0.0")


def outside(
    version: str | Version,
    range: str | Range,
    hilo: str,
    *,
    loose: bool = False,
    include_prerelease: bool = False,
) -> bool:
    """Whether ``version`` is outside ``range`` on the ``hilo`` (``">"`` or ``"<"``) side."""
    parsed = require_version(version, loose)
    parsed_range = Range(range, loose=loose, include_prerelease=include_prerelease)
    if hilo == ">":
        comp, ecomp, sign = ">", ">=", 1
    elif hilo == "<":
        comp, ecomp, sign = "<", "<=", -1
    else:
        raise ValueError('Must provide a hilo val of "<" or ">"')
    if parsed_range.test(parsed):
        return False
    # From here on, read as if in "gtr" mode: `sign` flips every comparison for "ltr".
    for comparators in parsed_range.set:
        bounds = [(c, c.semver) if c.semver is not None else (_ANY_AS_BOUND, _ZERO) for c in comparators]
        high, high_semver = low, low_semver = bounds[0]
        for comparator, semver in bounds[1:]:
            if sign * compare_versions(semver, high_semver) > 0:
                high, high_semver = comparator, semver
            elif sign * compare_versions(semver, low_semver) < 0:
                low, low_semver = comparator, semver
        # an edge comparator pointing our way means the version is not outside it
        if high.operator in (comp, ecomp):
            return False
        # nor is it when it is not beyond the lowest comparator
        beyond_low = sign * compare_versions(parsed, low_semver)
        if (not low.operator or low.operator == comp) and beyond_low <= 0:
            return False
        if low.operator == ecomp and beyond_low < 0:
            return False
    return True
