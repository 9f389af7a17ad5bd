"""Algebraic properties of eghact_common.semver, checked with hypothesis.

The conformance suite pins node-semver's behaviour case by case; these check the laws the
resolver leans on, over generated versions and ranges: precedence is a total order that
agrees with equality and hashing, canonical ranges are fixed points, the fast paths
(compiled range tests, ``SortedVersions`` bisection) agree with the plain definitions.
"""

from __future__ import annotations

import functools
import itertools
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from eghact_common import semver
from eghact_common.semver import InvalidRange, InvalidVersion, Range, Version

FAST = settings(max_examples=100, deadline=None)

# Small numbers so that generated versions and ranges actually meet; a few huge prerelease
# numbers (exact doubles, above 2**53) to exercise the exact fallback path of precedence.
_numbers = st.integers(min_value=0, max_value=4)
_big = st.integers(min_value=0, max_value=2**10).map(lambda k: str(2**53 + k * 2**12))
_identifiers = st.one_of(
    st.sampled_from(["alpha", "beta", "rc", "x-1", "0a"]),
    st.integers(min_value=0, max_value=3).map(str),
    _big,
)
_prerelease = st.lists(_identifiers, max_size=3).map(lambda ids: "-" + ".".join(ids) if ids else "")
_build = st.lists(st.sampled_from(["b", "7", "007", "sha"]), max_size=2).map(
    lambda ids: "+" + ".".join(ids) if ids else ""
)
version_texts = st.builds(
    lambda major, minor, patch, pre, build: f"{major}.{minor}.{patch}{pre}{build}",
    _numbers,
    _numbers,
    _numbers,
    _prerelease,
    _build,
)
release_texts = st.builds(lambda m, n, p: f"{m}.{n}.{p}", _numbers, _numbers, _numbers)

_partials = st.one_of(
    version_texts,
    _numbers.map(str),
    st.builds(lambda m, n: f"{m}.{n}", _numbers, _numbers),
    st.builds(lambda m, x: f"{m}.{x}", _numbers, st.sampled_from(["x", "X", "*"])),
    st.builds(lambda m, n: f"{m}.{n}.x", _numbers, _numbers),
    st.sampled_from(["*", "x", ""]),
)
_comparators = st.one_of(
    st.builds(lambda op, p: f"{op}{p}", st.sampled_from(["", "=", "<", "<=", ">", ">=", "^", "~", "~>"]), _partials),
    st.builds(lambda a, b: f"{a} - {b}", _partials, _partials),
)


def _ranges(comparators: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    sets = st.lists(comparators, min_size=1, max_size=3).map(" ".join)
    return st.lists(sets, min_size=1, max_size=3).map(" || ".join)


range_texts = _ranges(_comparators)
_release_partials = _partials.filter(lambda p: "-" not in p)
release_range_texts = _ranges(
    st.one_of(
        st.builds(lambda op, p: f"{op}{p}", st.sampled_from(["", "<", "<=", ">", ">=", "^", "~"]), _release_partials),
        st.builds(lambda a, b: f"{a} - {b}", _release_partials, _release_partials),
    )
)


def _compare(a: str, b: str) -> int:
    return semver.compare(a, b)


@FAST
@given(version_texts, version_texts, version_texts)
def test_compare_is_a_total_order_consistent_with_equality(a: str, b: str, c: str) -> None:
    assert semver.compare(a, b) == -semver.compare(b, a)
    assert semver.compare(a, a) == 0
    assert (semver.compare(a, b) == 0) == semver.eq(a, b) == (Version(a) == Version(b))
    if Version(a) == Version(b):
        assert hash(Version(a)) == hash(Version(b))
    ordered = sorted([a, b, c], key=functools.cmp_to_key(_compare))
    for x, y in itertools.combinations(ordered, 2):
        assert semver.compare(x, y) <= 0
        assert Version(x) <= Version(y)
    assert semver.lt(a, b) == (Version(a) < Version(b)) == semver.gt(b, a)


@FAST
@given(version_texts, version_texts)
def test_build_metadata_only_breaks_ties(a: str, b: str) -> None:
    order = semver.compare_build(a, b)
    assert order == -semver.compare_build(b, a)
    if semver.compare(a, b) != 0:
        assert order == semver.compare(a, b)


@FAST
@given(st.lists(version_texts, max_size=8))
def test_sort_and_rsort_are_ordered_and_permutations(versions: list[str]) -> None:
    ascending = semver.sort(versions)
    descending = semver.rsort(versions)
    assert sorted(ascending) == sorted(versions) == sorted(descending)
    for x, y in itertools.pairwise(ascending):
        assert semver.compare_build(x, y) <= 0
    for x, y in itertools.pairwise(descending):
        assert semver.compare_build(x, y) >= 0


@FAST
@given(version_texts)
def test_the_canonical_text_parses_to_the_same_version(text: str) -> None:
    version = Version(text)
    assert Version(version.version) == version
    assert semver.valid(version.version) == version.version
    assert version.raw == text


@FAST
@given(range_texts, st.booleans())
def test_canonical_ranges_are_fixed_points(text: str, include_prerelease: bool) -> None:
    canonical = semver.valid_range(text, include_prerelease=include_prerelease)
    if canonical is None:
        return
    # under the same options only: with include_prerelease, `0 >=0.0.0` is `<1.0.0-0 >=0.0.0`,
    # and without it node-semver reads `>=0.0.0` as `*`
    assert semver.valid_range(canonical, include_prerelease=include_prerelease) == canonical
    if not include_prerelease:
        assert semver.valid_range(canonical) == canonical


@FAST
@given(range_texts, st.lists(version_texts, max_size=12), st.booleans())
def test_max_and_min_satisfying_agree_with_satisfies(text: str, versions: list[str], include_prerelease: bool) -> None:
    opts = {"include_prerelease": include_prerelease}
    inside = [v for v in versions if semver.satisfies(v, text, **opts)]
    highest = semver.max_satisfying(versions, text, **opts)
    lowest = semver.min_satisfying(versions, text, **opts)
    if semver.valid_range(text, **opts) is None or not inside:
        assert highest is None and lowest is None
        return
    assert highest is not None and lowest is not None
    assert semver.satisfies(highest, text, **opts) and semver.satisfies(lowest, text, **opts)
    assert all(semver.lte(v, highest) and semver.gte(v, lowest) for v in inside)
    # the first of equal precedence, like node-semver's scan
    assert highest == next(v for v in inside if semver.eq(v, highest))
    assert lowest == next(v for v in inside if semver.eq(v, lowest))
    # the bisecting path over a presorted list finds the same versions
    presorted = semver.sorted_versions(versions)
    assert semver.max_satisfying(presorted, text, **opts) == Version(highest)
    assert semver.min_satisfying(presorted, text, **opts) == Version(lowest)


@FAST
@given(range_texts, version_texts, st.booleans())
def test_range_test_is_satisfies_and_never_raises(text: str, version: str, include_prerelease: bool) -> None:
    opts = {"include_prerelease": include_prerelease}
    result = semver.satisfies(version, text, **opts)
    try:
        parsed = Range(text, **opts)
    except InvalidRange:
        assert result is False
        return
    assert parsed.test(version) is result
    assert parsed.test(Version(version)) is result
    # a version inside the range is outside it on neither side
    if result:
        assert not semver.gtr(version, parsed, **opts)
        assert not semver.ltr(version, parsed, **opts)


@FAST
@given(
    st.one_of(
        st.tuples(range_texts, range_texts, st.just(True)),
        st.tuples(release_range_texts, release_range_texts, st.booleans()),
    ),
    st.booleans(),
)
def test_intersects_is_symmetric(ranges: tuple[str, str, bool], loose: bool) -> None:
    # Not quite everywhere, exactly as upstream: without include_prerelease an exact
    # prerelease such as `0.0.0-alpha` does not intersect `*` while `*` intersects it (the
    # "" comparator short-cuts to true). So: any ranges with include_prerelease, or ranges
    # that name no prerelease with either setting.
    a, b, include_prerelease = ranges
    opts = {"loose": loose, "include_prerelease": include_prerelease}
    if semver.valid_range(a, **opts) is None or semver.valid_range(b, **opts) is None:
        return
    assert semver.intersects(a, b, **opts) == semver.intersects(b, a, **opts)


@FAST
@given(range_texts, range_texts, release_texts)
def test_a_common_version_means_the_ranges_intersect(a: str, b: str, version: str) -> None:
    if semver.satisfies(version, a) and semver.satisfies(version, b):
        assert semver.intersects(a, b)


@FAST
@given(version_texts, st.sampled_from(semver.RELEASE_TYPES), st.sampled_from([None, "alpha", "rc"]))
def test_increments_go_up(text: str, release: str, identifier: str | None) -> None:
    bumped = semver.inc(text, release, identifier)
    if bumped is None:  # e.g. "prerelease" of a version whose prerelease cannot count
        return
    assert semver.valid(bumped) == bumped
    if release == "prerelease" and identifier is not None:
        # as upstream: 1.0.0-alpha.alpha bumps to 1.0.0-alpha.0, which sorts lower
        return
    assert semver.gt(bumped, text)


@FAST
@given(version_texts, st.sampled_from(semver.RELEASE_TYPES))
def test_truncation_drops_what_is_below_the_release_type(text: str, release: str) -> None:
    cut = semver.truncate(text, release)
    assert cut is not None
    assert semver.truncate(cut, release) == cut
    version, truncated = Version(text), Version(cut)
    if release.startswith("pre"):
        assert cut == version.version
        return
    assert not truncated.prerelease and not truncated.build
    kept = ("major", "minor", "patch").index(release) + 1
    original = (version.major, version.minor, version.patch)
    assert (truncated.major, truncated.minor, truncated.patch) == original[:kept] + (0,) * (3 - kept)


_not_strings = st.one_of(
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.just(re.compile("1.2.3")),
    st.lists(st.integers(), max_size=2),
    st.builds(lambda s: type("Stringish", (), {"__str__": lambda self: s})(), version_texts),
)


@FAST
@given(_not_strings)
def test_non_strings_are_rejected_never_coerced(value: object) -> None:
    assert semver.valid(value) is None  # type: ignore[arg-type]
    assert semver.parse(value) is None  # type: ignore[arg-type]
    assert semver.valid_range(value) is None  # type: ignore[arg-type]
    assert semver.satisfies("1.2.3", value) is False  # type: ignore[arg-type]
    refused = [lambda: Version(value), lambda: semver.compare(value, "1.2.3"),  # type: ignore[arg-type]
               lambda: semver.clean(value)]  # type: ignore[arg-type]  # node-semver: version.trim throws
    if value is None or value is False or (type(value) in (int, float) and value == 0):
        assert semver.satisfies(value, "*") is False  # type: ignore[arg-type]  # Range#test: if (!version)
    else:
        refused.append(lambda: semver.satisfies(value, "*"))  # type: ignore[arg-type]  # new SemVer(value) throws
    for call in refused:
        try:
            call()
        except InvalidVersion:
            continue
        raise AssertionError(f"{value!r} was accepted as a version")
    try:
        Range(value)  # type: ignore[arg-type]
    except InvalidRange:
        pass
    else:
        raise AssertionError(f"{value!r} was accepted as a range")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="v= \t<>~^1203.-xX*a+b|", max_size=16))
def test_linear_comparator_trim_is_the_regex(text: str) -> None:
    # _desugar.comparator_trim replaces node-semver's (quadratic) COMPARATORTRIM substitution
    from eghact_common.semver import _desugar, _re

    expected = _re.COMPARATORTRIM.sub(lambda m: m[1] + m[2] + m[3], text)
    assert _desugar.comparator_trim(text) == expected


def test_long_runs_parse_in_linear_time() -> None:
    # a 50,000-character run of `v` made the regex form of the comparator trim take minutes
    started = time.perf_counter()
    for text in ("v" * 50_000, "v " * 25_000 + "1", "< " + "v=" * 25_000):
        for loose in (False, True):
            semver.valid_range(text, loose=loose)
    assert time.perf_counter() - started < 5
