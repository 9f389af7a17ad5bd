"""Every semver function fails where node-semver 7.8 throws and returns None where it returns
null, on invalid input of every kind: bad text, bad ranges (a comparator invalid inside one),
and values that are not text at all. The expected answers were produced by node-semver 7.8.5
itself (``node -e``, the copy bundled with npm), one row per call."""

from __future__ import annotations

from typing import Any

import pytest

from eghact_common import semver

THROWS = "THROWS"
FUNCTIONS = {
    "clean": semver.clean, "valid": semver.valid, "parse": semver.parse, "cmp": semver.cmp,
    "satisfies": semver.satisfies, "maxSatisfying": semver.max_satisfying, "minSatisfying": semver.min_satisfying,
    "compare": semver.compare, "gt": semver.gt, "eq": semver.eq, "rcompare": semver.rcompare,
    "compareBuild": semver.compare_build, "sort": semver.sort, "rsort": semver.rsort,
    "validRange": semver.valid_range, "intersects": semver.intersects, "gtr": semver.gtr, "ltr": semver.ltr,
    "outside": semver.outside, "inc": semver.inc, "truncate": semver.truncate,
}
# [node-semver function, its arguments, what it returned, or THROWS]
NODE_SEMVER = [
    ["clean",[None],"THROWS"],
    ["clean",[1],"THROWS"],
    ["clean",[" =v1.2.3 "],"1.2.3"],
    ["clean",["blah"],None],
    ["valid",[1],None],
    ["valid",["blah"],None],
    ["parse",[None],None],
    ["cmp",["1.2.3","===",1],False],
    ["cmp",["1.2.3","!==",1],True],
    ["cmp",[1,"===",1],True],
    ["cmp",[None,"===","1.2.3"],"THROWS"],
    ["cmp",["1.2.3","bogus","1.2.3"],"THROWS"],
    ["cmp",["1.2.3",">","blah"],"THROWS"],
    ["satisfies",[1,"^1.2.3"],"THROWS"],
    ["satisfies",[True,"*"],"THROWS"],
    ["satisfies",[{},"^1.2.3"],"THROWS"],
    ["satisfies",[1,"blah"],False],
    ["satisfies",[None,"^1.2.3"],False],
    ["satisfies",[False,"*"],False],
    ["satisfies",["blah","*"],False],
    ["maxSatisfying",[["1.2.3",1],"^1.2.3"],"THROWS"],
    ["maxSatisfying",[["1.2.3",None],"^1.2.3"],"1.2.3"],
    ["maxSatisfying",[["1.2.3","blah"],"^1.2.3"],"1.2.3"],
    ["maxSatisfying",[["1.2.3",1],"blah"],None],
    ["minSatisfying",[[True,"2.0.0"],"*"],"THROWS"],
    ["minSatisfying",[["1.2.3",False],"*"],"1.2.3"],
    ["compare",["1.2.3","blah"],"THROWS"],
    ["compare",[None,"1.2.3"],"THROWS"],
    ["gt",["1.2","1.0.0"],"THROWS"],
    ["eq",[1,1],"THROWS"],
    ["rcompare",["blah","1.2.3"],"THROWS"],
    ["compareBuild",["1.2.3",{}],"THROWS"],
    ["sort",[["1.2.3","blah"]],"THROWS"],
    ["rsort",[["1.2.3",None]],"THROWS"],
    ["validRange",["blah"],None],
    ["validRange",[1],None],
    ["validRange",[">=1.0.0 <=blah"],None],
    ["intersects",[">1.0.0 <=blah","^1.2.3"],"THROWS"],
    ["intersects",["^1.2.3","blah"],"THROWS"],
    ["intersects",[1,"^1.2.3"],"THROWS"],
    ["intersects",[">=","<"],"THROWS"],
    ["intersects",["1.2.3 - blah","*"],"THROWS"],
    ["gtr",["blah","^1.2.3"],"THROWS"],
    ["gtr",["3.0.0","blah"],"THROWS"],
    ["ltr",["0.1.0",">=blah"],"THROWS"],
    ["ltr",[None,"^1.0.0"],"THROWS"],
    ["outside",["1.2.3","^1.0.0","x"],"THROWS"],
    ["outside",["blah","^1.0.0","<"],"THROWS"],
    ["outside",["3.0.0","^1.0.0",">"],True],
    ["inc",["blah","major"],None],
    ["inc",["1.2.3","bogus"],None],
    ["inc",[None,"minor"],None],
    ["inc",["1.2.3","prerelease","01"],None],
    ["inc",["1.2.3","prerelease",""],"1.2.4-0"],
    ["truncate",["blah","major"],None],
    ["truncate",["1.2.3","bogus"],None],
    ["truncate",[None,"major"],None],
]


@pytest.mark.parametrize(("function", "args", "expected"), NODE_SEMVER,
                         ids=[f"{row[0]}{row[1]!r}" for row in NODE_SEMVER])
def test_invalid_input_as_node_semver(function: str, args: list[Any], expected: Any) -> None:
    call = FUNCTIONS[function]
    if expected == THROWS:
        # InvalidVersion / InvalidRange (ValueError and a 400 BadRequest), or a plain ValueError
        # / TypeError for a bad operator or argument, as node-semver's TypeErrors
        with pytest.raises((ValueError, TypeError)):
            call(*args)
    else:
        result = call(*args)
        assert (result.version if isinstance(result, semver.Version) else result) == expected


def test_a_value_that_is_not_text_is_refused_with_the_module_error() -> None:
    for call in (lambda: semver.satisfies(1, "^1.2.3"), lambda: semver.clean(None),  # type: ignore[arg-type]
                 lambda: semver.max_satisfying(["1.2.3", 1], "*")):  # type: ignore[list-item]
        with pytest.raises(semver.InvalidVersion) as caught:
            call()
        assert caught.value.status == 400 and caught.value.code == "invalid_version"
