"""``Version``: one parsed semver version, immutable, ordered by semver precedence.

A port of node-semver 7.8's ``classes/semver.js`` and ``internal/identifiers.js``.

Precedence is computed from a precomputed flat tuple (``_key``) so that comparing two
versions, the inner loop of every range test, is one tuple comparison. The tuple is exact
for every version whose prerelease identifiers are numbers or non-numeric words, which is
every version except those with an all-digit prerelease identifier too big (or, in loose
mode, too zero-padded) to become a number. For those few, node-semver's pairwise algorithm
(``_compare_js``), including its quirks, is used instead.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Final, Literal

from ._errors import InvalidVersion
from ._re import FULL, LOOSE, MAX_LENGTH, MAX_SAFE_INTEGER, NUMERIC, PRERELEASE, PRERELEASELOOSE, js_trim

Identifier = int | str
ReleaseType = Literal["major", "premajor", "minor", "preminor", "patch", "prepatch", "prerelease", "release"]

RELEASE_TYPES: Final = ("major", "premajor", "minor", "preminor", "patch", "prepatch", "prerelease")

_PARSE_CACHE_SIZE = 16384


class Version:
    """A semver version such as ``1.2.3-beta.1+build.5``.

    ``major``, ``minor``, ``patch`` are ints; ``prerelease`` a tuple of ints and strings;
    ``build`` a tuple of strings; ``raw`` the text it was parsed from; ``version`` the
    canonical text without build metadata. Equality, hashing and ordering follow semver
    *precedence*, so build metadata is ignored: ``Version("1.0.0+a") == Version("1.0.0+b")``
    (use :func:`compare_build` to tell those apart). They are a total order; the module's
    ``compare`` is node-semver's own algorithm, which differs only where that is not one (two
    all-digit prerelease identifiers beyond 2**53 that round to the same double).

    ``Version(text, loose=...)`` parses (results are cached and shared) and raises
    :class:`InvalidVersion`; a ``Version`` passed in is returned as is.
    """

    __slots__ = ("_key", "_plain", "build", "loose", "major", "minor", "patch", "prerelease", "raw", "version")

    major: int
    minor: int
    patch: int
    prerelease: tuple[Identifier, ...]
    build: tuple[str, ...]
    raw: str
    loose: bool
    version: str
    _key: tuple[Any, ...]
    _plain: bool

    def __new__(cls, version: str | Version, *, loose: bool = False) -> Version:
        if isinstance(version, Version):
            return version
        if not isinstance(version, str):
            raise InvalidVersion(f"Invalid version. Must be a string. Got type {type(version).__name__!r}.")
        parsed = parse_version(version, bool(loose))
        if parsed is None:
            raise InvalidVersion(f"Invalid Version: {version}")
        return parsed

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_parts, (self.major, self.minor, self.patch, self.prerelease, self.build, self.raw, self.loose))

    def __str__(self) -> str:
        return self.version

    def __repr__(self) -> str:
        return f"Version({self.raw!r})"

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key == other._key

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key < other._key

    def __le__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key <= other._key

    def __gt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key > other._key

    def __ge__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key >= other._key

    def inc(
        self, release: str, identifier: str | None = None, identifier_base: str | int | bool | None = None
    ) -> Version:
        """The version after a ``release`` bump (node-semver's ``SemVer#inc``).

        ``identifier`` names the prerelease (``"beta"``); ``identifier_base`` picks its first
        number (``"0"``/``"1"``) or, when ``False``, no number at all. Build metadata is kept
        in ``raw``. Raises :class:`ValueError` for an impossible increment.
        """
        draft = _Draft(self)
        draft.inc(release, identifier, identifier_base)
        raw = draft.format()
        if self.build:
            raw += "+" + ".".join(self.build)
        prerelease: list[Identifier] = []
        for item in draft.prerelease:
            # an identifier such as "alpha.beta" lands as one element upstream; split it,
            # so that the value is what parsing its own text gives
            prerelease.extend([item] if isinstance(item, int) else map(_identifier, str(item).split(".")))
        return _from_parts(draft.major, draft.minor, draft.patch, tuple(prerelease), self.build, raw, self.loose)


def _identifier(text: str) -> Identifier:
    """A prerelease identifier as the constructor reads it: a number when it is one."""
    if NUMERIC.fullmatch(text):
        number = int(text)
        if number < MAX_SAFE_INTEGER and str(number) == text:
            return number
    return text


def _from_parts(
    major: int,
    minor: int,
    patch: int,
    prerelease: tuple[Identifier, ...],
    build: tuple[str, ...],
    raw: str,
    loose: bool,
) -> Version:
    self = object.__new__(Version)
    put = object.__setattr__
    put(self, "major", major)
    put(self, "minor", minor)
    put(self, "patch", patch)
    put(self, "prerelease", prerelease)
    put(self, "build", build)
    put(self, "raw", raw)
    put(self, "loose", loose)
    text = f"{major}.{minor}.{patch}"
    if prerelease:
        text += "-" + ".".join(map(str, prerelease))
    put(self, "version", text)
    # Flat precedence key: (M, m, p, 1) for a release, (M, m, p, 0, kind, value, ...) for a
    # prerelease. A release sorts above its prereleases, a prerelease below any longer one it
    # is a prefix of, and numbers (kind 0) below words (kind 1).
    key: list[Any] = [major, minor, patch]
    plain = True
    if prerelease:
        key.append(0)
        for item in prerelease:
            if isinstance(item, int):
                key += (0, item)
            elif NUMERIC.fullmatch(item):
                # all-digit text upstream compares as a JS number (a double): see _compare_js
                plain = False
                key += (0, _js_number(item))
            else:
                key += (1, item)
    else:
        key.append(1)
    put(self, "_key", tuple(key))
    put(self, "_plain", plain)
    return self


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def parse_version(text: str, loose: bool) -> Version | None:
    """Parse ``text`` like ``new SemVer(text, {loose})``; ``None`` where that throws."""
    if len(text) > MAX_LENGTH:
        return None
    match = (LOOSE if loose else FULL).match(js_trim(text))
    if match is None:
        return None
    major, minor, patch = int(match[1]), int(match[2]), int(match[3])
    if major > MAX_SAFE_INTEGER or minor > MAX_SAFE_INTEGER or patch > MAX_SAFE_INTEGER:
        return None
    prerelease: tuple[Identifier, ...] = ()
    if match[4]:
        items: list[Identifier] = []
        for item in match[4].split("."):
            # upstream numberifies every all-digit identifier below MAX_SAFE_INTEGER, so in
            # loose mode "01" becomes 1; bigger ones stay text
            if NUMERIC.fullmatch(item) and int(item) < MAX_SAFE_INTEGER:
                items.append(int(item))
            else:
                items.append(item)
        prerelease = tuple(items)
    build = tuple(match[5].split(".")) if match[5] else ()
    return _from_parts(major, minor, patch, prerelease, build, text, loose)


def to_version(value: object, loose: bool) -> Version | None:
    """A ``Version`` for a string or ``Version``; ``None`` for anything else or invalid text."""
    if isinstance(value, Version):
        return value
    if isinstance(value, str):
        return parse_version(value, loose)
    return None


def tested_version(value: object, loose: bool, *, falsy_fails: bool = False) -> Version | None:
    """What node-semver's ``test`` methods make of their argument: a ``Version`` as it is,
    text parsed (``None``, "not satisfied", when it is not a version), and anything else
    raises :class:`InvalidVersion`, as ``new SemVer(1)`` throws there. ``falsy_fails``:
    ``Range#test`` first answers false for JavaScript's falsy values (null, false, 0)."""
    if isinstance(value, Version):
        return value
    if isinstance(value, str):
        return parse_version(value, loose)
    if falsy_fails and (value is None or value is False or (type(value) in (int, float) and value == 0)):
        return None
    return require_version(value, loose)   # raises for the non-string


def require_version(value: object, loose: bool) -> Version:
    if isinstance(value, Version):
        return value
    return Version(value, loose=loose)  # type: ignore[arg-type]  # raises for non-strings


# -- comparison ---------------------------------------------------------------------------


def compare_versions(a: Version, b: Version) -> int:
    """-1, 0 or 1 by precedence, exactly as ``SemVer#compare``."""
    if a._plain and b._plain:
        ka, kb = a._key, b._key
        return (ka > kb) - (ka < kb)
    return _compare_js(a, b)


def _js_number(text: str) -> float:
    """``+text`` for all-digit text: the nearest double (``inf`` beyond the double range)."""
    return float(text)


def compare_identifiers(a: Identifier, b: Identifier) -> int:
    """node-semver's ``compareIdentifiers``: numbers (and all-digit text) below words."""
    if isinstance(a, int) and isinstance(b, int):
        return (a > b) - (a < b)
    a_num = isinstance(a, int) or NUMERIC.fullmatch(a) is not None
    b_num = isinstance(b, int) or NUMERIC.fullmatch(b) is not None
    if a_num and b_num:
        x = a if isinstance(a, int) else _js_number(a)
        y = b if isinstance(b, int) else _js_number(b)
        return (x > y) - (x < y)
    if a_num:
        return -1
    if b_num:
        return 1
    x_text, y_text = str(a), str(b)
    return (x_text > y_text) - (x_text < y_text)


def _same(a: Identifier, b: Identifier) -> bool:
    """JavaScript ``===`` between identifiers (a number never equals a string)."""
    return type(a) is type(b) and a == b


def _compare_identifier_lists(a: tuple[Identifier, ...], b: tuple[Identifier, ...]) -> int:
    # Upstream walks the lists and returns at the first identifiers that are not identical,
    # even when compareIdentifiers calls them equal ("01" vs "1"): a quirk kept on purpose.
    for x, y in zip(a, b, strict=False):
        if not _same(x, y):
            return compare_identifiers(x, y)
    return (len(a) > len(b)) - (len(a) < len(b))


def _compare_js(a: Version, b: Version) -> int:
    if a.version == b.version:
        return 0
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return -1 if x < y else 1
    if a.prerelease and not b.prerelease:
        return -1
    if b.prerelease and not a.prerelease:
        return 1
    return _compare_identifier_lists(a.prerelease, b.prerelease)


def compare_builds(a: Version, b: Version) -> int:
    """``SemVer#compareBuild``: build identifiers compared like prerelease ones."""
    return _compare_identifier_lists(a.build, b.build)


# -- increments ---------------------------------------------------------------------------


_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JS_RADIX = re.compile(r"0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def js_to_number(value: object) -> float:
    """JavaScript's ``Number(value)`` for the values an increment argument can be."""
    if value is None:
        return math.nan
    if isinstance(value, bool | int | float):
        return float(value)
    if not isinstance(value, str):
        return math.nan
    text = js_trim(value)
    if not text:
        return 0.0
    if text in ("Infinity", "+Infinity"):
        return math.inf
    if text == "-Infinity":
        return -math.inf
    if _JS_RADIX.fullmatch(text):
        return float(int(text, 0))
    if _JS_DECIMAL.fullmatch(text):
        return float(text)
    return math.nan


def _js_truthy_number(value: object) -> bool:
    number = js_to_number(value)
    return number != 0 and not math.isnan(number)


class _Draft:
    """The mutable working copy ``SemVer#inc`` mutates, ported statement for statement."""

    __slots__ = ("loose", "major", "minor", "patch", "prerelease", "raw")

    def __init__(self, version: Version) -> None:
        self.major = version.major
        self.minor = version.minor
        self.patch = version.patch
        self.prerelease: list[Identifier] = list(version.prerelease)
        self.loose = version.loose
        self.raw = version.raw

    def format(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(map(str, self.prerelease))
        return text

    def inc(self, release: str, identifier: str | None, base: str | int | bool | None) -> None:
        if not isinstance(release, str):
            raise ValueError(f"invalid increment argument: {release!r}")
        if release.startswith("pre"):
            if not identifier and base is False:
                raise ValueError("invalid increment argument: identifier is empty")
            if identifier:
                match = (PRERELEASELOOSE if self.loose else PRERELEASE).search(f"-{identifier}")
                if match is None or match[1] != identifier:
                    raise ValueError(f"invalid identifier: {identifier}")
        if release == "premajor":
            self.prerelease = []
            self.patch = 0
            self.minor = 0
            self.major += 1
            self.inc("pre", identifier, base)
        elif release == "preminor":
            self.prerelease = []
            self.patch = 0
            self.minor += 1
            self.inc("pre", identifier, base)
        elif release == "prepatch":
            # an existing prerelease is irrelevant: bump to the next patch, then pre
            self.prerelease = []
            self.inc("patch", identifier, base)
            self.inc("pre", identifier, base)
        elif release == "prerelease":
            # on a non-prerelease version this acts like prepatch
            if not self.prerelease:
                self.inc("patch", identifier, base)
            self.inc("pre", identifier, base)
        elif release == "release":
            if not self.prerelease:
                raise ValueError(f"version {self.raw} is not a prerelease")
            self.prerelease = []
        elif release == "major":
            # a pre-major version (1.0.0-5) bumps to its major (1.0.0)
            if self.minor != 0 or self.patch != 0 or not self.prerelease:
                self.major += 1
            self.minor = 0
            self.patch = 0
            self.prerelease = []
        elif release == "minor":
            if self.patch != 0 or not self.prerelease:
                self.minor += 1
            self.patch = 0
            self.prerelease = []
        elif release == "patch":
            if not self.prerelease:
                self.patch += 1
            self.prerelease = []
        elif release == "pre":
            self._inc_pre(identifier, base)
        else:
            raise ValueError(f"invalid increment argument: {release}")

    def _inc_pre(self, identifier: str | None, base_arg: str | int | bool | None) -> None:
        base = 1 if _js_truthy_number(base_arg) else 0
        if not self.prerelease:
            self.prerelease = [base]
        else:
            for i in range(len(self.prerelease) - 1, -1, -1):
                item = self.prerelease[i]
                if isinstance(item, int):
                    self.prerelease[i] = item + 1
                    break
            else:  # nothing numeric to increment
                if identifier == ".".join(map(str, self.prerelease)) and base_arg is False:
                    raise ValueError("invalid increment argument: identifier already exists")
                self.prerelease.append(base)
        if identifier:
            # 1.2.0-beta.1 bumps to 1.2.0-beta.2; 1.2.0-beta.fooblz or 1.2.0-beta to 1.2.0-beta.0
            fresh: list[Identifier] = [identifier] if base_arg is False else [identifier, base]
            if _starts_with_identifier(self.prerelease, identifier):
                following = identifier.count(".") + 1
                after = self.prerelease[following] if following < len(self.prerelease) else None
                if after is None or math.isnan(js_to_number(after)):
                    self.prerelease = fresh
            else:
                self.prerelease = fresh


def _starts_with_identifier(prerelease: list[Identifier], identifier: str) -> bool:
    parts = identifier.split(".")
    if len(parts) > len(prerelease):
        return False
    return all(compare_identifiers(prerelease[i], part) == 0 for i, part in enumerate(parts))
