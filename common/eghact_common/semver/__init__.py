"""npm-compatible semantic versioning: node-semver 7.8's grammar and behaviour, in Python.

Versions (``1.2.3-beta.1+build``), comparators, ranges with ``^ ~ ~> x X *``, hyphen ranges
and ``||``, the prerelease rules (a prerelease matches only a range that names a prerelease
of the same ``M.m.p``, unless ``include_prerelease``), loose parsing, ``-0`` upper bounds,
the 256-character and 2**53-1 limits: all as node-semver does them, checked against
node-semver's own fixtures (``tests/common/test_semver_conformance.py``).

The modules are private; this facade is the API::

    _re         the regular expressions, built as upstream builds them
    _version    Version, precedence, increments
    _desugar    range sugar -> primitive comparator strings
    _range      Comparator, Range, range tests and intersections
    _sorted     SortedVersions: parse and sort once, query many times
    _functions  the node-semver function API
    _errors     InvalidVersion, InvalidRange
"""

from ._errors import InvalidRange, InvalidVersion
from ._functions import (
    clean,
    cmp,
    compare,
    compare_build,
    eq,
    gt,
    gte,
    gtr,
    inc,
    intersects,
    lt,
    lte,
    ltr,
    max_satisfying,
    min_satisfying,
    neq,
    outside,
    parse,
    rcompare,
    rsort,
    satisfies,
    sort,
    sorted_versions,
    truncate,
    valid,
    valid_range,
)
from ._range import Comparator, Range
from ._re import MAX_LENGTH, MAX_SAFE_INTEGER
from ._sorted import SortedVersions
from ._version import RELEASE_TYPES, Version, compare_identifiers

__all__ = [
    "MAX_LENGTH",
    "MAX_SAFE_INTEGER",
    "RELEASE_TYPES",
    "Comparator",
    "InvalidRange",
    "InvalidVersion",
    "Range",
    "SortedVersions",
    "Version",
    "clean",
    "cmp",
    "compare",
    "compare_build",
    "compare_identifiers",
    "eq",
    "gt",
    "gte",
    "gtr",
    "inc",
    "intersects",
    "lt",
    "lte",
    "ltr",
    "max_satisfying",
    "min_satisfying",
    "neq",
    "outside",
    "parse",
    "rcompare",
    "rsort",
    "satisfies",
    "sort",
    "sorted_versions",
    "truncate",
    "valid",
    "valid_range",
]
