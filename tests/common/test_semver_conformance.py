"""eghact_common.semver against node-semver's own test fixtures.

The data (``tests/conformance/semver/*.json``, one JSON case per JS fixture tuple) and the
rules for reading it are in that folder's README: every case of every file is driven here,
exactly as the README says each file must be satisfied. Nothing is skipped; an unknown file
or a missing case fails the run. The number of cases checked is printed at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eghact_common import semver
from eghact_common.semver import Comparator, InvalidRange, InvalidVersion, Range, Version

# In the repository, beside the tests: a fresh clone runs the suite with nothing beside it.
DATA = Path(__file__).resolve().parents[1] / "conformance" / "semver"


# -- reading the data, as the README's "Encoding" section says -------------------------------


def js_truthy(value: Any) -> bool:
    if isinstance(value, dict) and "$js" in value:
        return value["$js"] not in ("undefined", "NaN", "-0", "hole")
    if isinstance(value, dict | list):
        return True  # JS objects and arrays are truthy, even empty
    return bool(value)


def options(value: Any) -> dict[str, bool]:
    """Keyword options for an options element of the data (the README's laundering table)."""
    if not js_truthy(value):
        return {"loose": False, "include_prerelease": False}
    if isinstance(value, dict) and "$js" not in value:
        return {"loose": js_truthy(value.get("loose")), "include_prerelease": js_truthy(value.get("includePrerelease"))}
    if isinstance(value, dict) and value["$js"] == "RegExp":
        return {"loose": False, "include_prerelease": False}  # an object without those fields
    return {"loose": True, "include_prerelease": False}  # true, "dev", ...: the loose shorthand


class ObjectWithToString:
    """A non-string that stringifies to a valid version; it must still be rejected."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def decode(value: Any) -> Any:
    """A version/range argument: tagged JS values become non-string Python objects."""
    if isinstance(value, dict) and value.get("$js") == "RegExp":
        return re.compile(value["source"])
    if isinstance(value, dict) and value.get("$js") == "ObjectWithToString":
        return ObjectWithToString(value["toString"])
    return value


def arg(case: list[Any], index: int) -> Any:
    """Element ``index`` of a case; a trailing element the JS source left out is None."""
    return case[index] if index < len(case) else None


# -- what each file must satisfy; each checker returns how many assertions it made --------


def check_range_include(case: list[Any]) -> int:
    range_, version, opts = case[0], decode(case[1]), options(arg(case, 2))
    assert semver.satisfies(version, range_, **opts) is True
    assert Range(range_, **opts).test(version) is True
    return 2


def check_range_exclude(case: list[Any]) -> int:
    range_, version, opts = case[0], decode(case[1]), options(arg(case, 2))
    assert semver.satisfies(version, range_, **opts) is False
    checks = 1
    if semver.valid_range(range_, **opts) is not None:
        assert Range(range_, **opts).test(version) is False
        checks += 1
    if range_ == "== 1.0.0 || foo":  # the README's worked example
        assert semver.valid_range(range_, **opts) == "1.0.0"
        checks += 1
    return checks


def check_range_parse(case: list[Any]) -> int:
    range_, expected, opts = case[0], case[1], options(arg(case, 2))
    assert semver.valid_range(range_, **opts) == expected
    if expected is None:
        with pytest.raises(InvalidRange):
            Range(range_, **opts)
        return 2
    parsed = Range(range_, **opts)
    assert parsed.range == Range(expected).range
    if expected == "*":
        assert parsed.range == ""
    # the canonical text is a fixed point
    assert semver.valid_range(parsed.range or "*") == expected
    return 4


def check_comparisons(case: list[Any]) -> int:
    v1, v2, opts = case[0], case[1], options(arg(case, 2))
    assert semver.compare(v1, v2, **opts) == 1
    assert semver.compare(v2, v1, **opts) == -1
    assert semver.compare(v1, v1, **opts) == 0
    assert semver.compare(v2, v2, **opts) == 0
    assert semver.rcompare(v1, v2, **opts) == -1
    assert semver.gt(v1, v2, **opts)
    assert not semver.gt(v2, v1, **opts)
    assert semver.lt(v2, v1, **opts)
    assert not semver.lt(v1, v2, **opts)
    assert semver.gte(v1, v2, **opts)
    assert semver.lte(v2, v1, **opts)
    assert semver.neq(v1, v2, **opts)
    assert not semver.eq(v1, v2, **opts)
    for op in (">", ">=", "!="):
        assert semver.cmp(v1, op, v2, **opts), op
    for op in ("<", "<=", "=="):
        assert not semver.cmp(v1, op, v2, **opts), op
    loose = opts["loose"]
    assert Version(v1, loose=loose) > Version(v2, loose=loose)
    return 20


def check_equality(case: list[Any]) -> int:
    v1, v2, opts = case[0], case[1], options(arg(case, 2))
    assert semver.compare(v1, v2, **opts) == 0
    assert semver.compare(v2, v1, **opts) == 0
    assert semver.rcompare(v1, v2, **opts) == 0
    assert semver.eq(v1, v2, **opts)
    assert not semver.neq(v1, v2, **opts)
    assert not semver.gt(v1, v2, **opts)
    assert not semver.lt(v1, v2, **opts)
    assert semver.gte(v1, v2, **opts)
    assert semver.lte(v1, v2, **opts)
    for op in ("", "=", "=="):
        assert semver.cmp(v1, op, v2, **opts), op
    # === and !== compare the raw texts: JS identity, not semver
    assert semver.cmp(v1, "===", v2, **opts) is False
    assert semver.cmp(v1, "!==", v2, **opts) is True
    loose = opts["loose"]
    a, b = Version(v1, loose=loose), Version(v2, loose=loose)
    assert a == b
    assert hash(a) == hash(b)
    return 16


def check_invalid_versions(case: list[Any]) -> int:
    value, reason, opts = decode(case[0]), case[1], options(arg(case, 2))
    with pytest.raises(InvalidVersion):
        Version(value, loose=opts["loose"])
    assert issubclass(InvalidVersion, ValueError)
    assert semver.parse(value, **opts) is None, reason
    assert semver.valid(value, **opts) is None, reason
    return 3


def check_valid_versions(case: list[Any]) -> int:
    text, major, minor, patch, prerelease, build = case
    parsed = semver.parse(text)
    assert parsed is not None
    assert (parsed.major, parsed.minor, parsed.patch) == (major, minor, patch)
    assert list(parsed.prerelease) == prerelease
    assert [type(x) for x in parsed.prerelease] == [type(x) for x in prerelease]  # numbers are ints
    assert list(parsed.build) == build
    assert parsed.raw == text
    for release_type in ("prerelease", "prepatch", "preminor", "premajor"):
        assert semver.truncate(text, release_type) == parsed.version
    return 10


def check_increments(case: list[Any]) -> int:
    version, release, expected = case[0], case[1], case[2]
    opts_value = arg(case, 3)
    if isinstance(opts_value, str):
        # node-semver's inc() reads a string here as the identifier, shifting the rest; its
        # class test reads it as options (= loose). Both readings must give `expected`.
        identifier, identifier_base, func_opts = opts_value, arg(case, 4), options(None)
        method_loose, method_identifier, method_base = True, arg(case, 4), arg(case, 5)
    else:
        identifier, identifier_base, func_opts = arg(case, 4), arg(case, 5), options(opts_value)
        method_loose, method_identifier, method_base = func_opts["loose"], arg(case, 4), arg(case, 5)
    if method_identifier is False:
        method_identifier = None  # a JS `false` identifier is just falsy
    bumped_text = semver.inc(
        version,
        release,
        identifier,
        identifier_base,
        loose=func_opts["loose"],
        include_prerelease=func_opts["include_prerelease"],
    )
    assert bumped_text == expected
    if expected is None:
        with pytest.raises(ValueError):
            Version(version, loose=method_loose).inc(release, method_identifier, method_base)
        return 2
    original = Version(version, loose=method_loose)
    bumped = original.inc(release, method_identifier, method_base)
    assert bumped.version == expected
    assert bumped.raw == expected + ("+" + ".".join(original.build) if original.build else "")
    assert original.version == Version(version, loose=method_loose).version  # not mutated
    return 4


def check_truncations(case: list[Any]) -> int:
    version, release_type, expected = case
    assert semver.truncate(version, release_type) == expected
    return 1


def check_range_intersection(case: list[Any]) -> int:
    r1, r2, expected = case
    checks = 0
    for loose in (False, True):
        for a, b in ((r1, r2), (r2, r1)):
            assert semver.intersects(a, b, loose=loose) is expected, (a, b, loose)
            checks += 1
    return checks


def check_comparator_intersection(case: list[Any]) -> int:
    c1, c2, expected = case[0], case[1], case[2]
    include_prerelease = bool(arg(case, 3))  # a bare boolean here, not an options object
    checks = 0
    for a, b in ((c1, c2), (c2, c1)):
        assert Comparator(a).intersects(Comparator(b), include_prerelease=include_prerelease) is expected
        checks += 1
        for loose in (False, True):
            assert semver.intersects(a, b, loose=loose, include_prerelease=include_prerelease) is expected
            checks += 1
    return checks


def _outside_checker(function: Callable[..., bool], hilo: str, expected: bool) -> Callable[[list[Any]], int]:
    def check(case: list[Any]) -> int:
        range_, version, opts = case[0], case[1], options(arg(case, 2))
        assert function(version, range_, **opts) is expected
        assert semver.outside(version, range_, hilo, **opts) is expected
        return 2

    return check


CHECKERS: dict[str, Callable[[list[Any]], int]] = {
    "comparator-intersection": check_comparator_intersection,
    "comparisons": check_comparisons,
    "equality": check_equality,
    "increments": check_increments,
    "invalid-versions": check_invalid_versions,
    "range-exclude": check_range_exclude,
    "range-include": check_range_include,
    "range-intersection": check_range_intersection,
    "range-parse": check_range_parse,
    "truncations": check_truncations,
    "valid-versions": check_valid_versions,
    "version-gt-range": _outside_checker(semver.gtr, ">", True),
    "version-lt-range": _outside_checker(semver.ltr, "<", True),
    "version-not-gt-range": _outside_checker(semver.gtr, ">", False),
    "version-not-lt-range": _outside_checker(semver.ltr, "<", False),
}


def _cases() -> Iterator[Any]:
    for path in sorted(DATA.glob("*.json")):
        for index, case in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            yield pytest.param(path.stem, case, id=f"{path.stem}[{index}]")


CASES = list(_cases())


def _readme_counts() -> dict[str, int]:
    """The per-file case counts of the README's table."""
    text = (DATA / "README.md").read_text(encoding="utf-8")
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| `([a-z-]+)\.json` \| (\d+) \|", text, re.MULTILINE)}


class _Summary:
    """Prints the count in pytest's terminal summary (output of a running test is captured)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        passed, total = self.counts["cases"], len(CASES)
        terminalreporter.write_line(
            f"semver conformance: {passed + self.counts['failed']} of {total} cases checked "
            f"({self.counts['assertions']} assertions): {passed} passed, {self.counts['failed']} failed"
        )


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> dict[str, int]:
    counts = {"cases": 0, "assertions": 0, "failed": 0}
    request.config.pluginmanager.register(_Summary(counts), name=f"semver-conformance-summary-{id(counts)}")
    return counts


def test_the_data_is_all_there() -> None:
    expected = _readme_counts()
    found: dict[str, int] = {}
    for param in CASES:
        stem = param.values[0]
        found[stem] = found.get(stem, 0) + 1
    assert found == expected
    assert sum(found.values()) == 982
    assert set(found) == set(CHECKERS), "every file has a checker, every checker a file"


@pytest.mark.parametrize(("stem", "case"), CASES)
def test_case(stem: str, case: list[Any], tally: dict[str, int]) -> None:
    try:
        tally["assertions"] += CHECKERS[stem](case)
    except BaseException:
        tally["failed"] += 1
        raise
    tally["cases"] += 1
