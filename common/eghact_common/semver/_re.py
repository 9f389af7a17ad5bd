"""node-semver's regular expressions, built the way upstream builds them.

Upstream (``internal/re.js``) composes JavaScript regex *sources* token by token, then
derives a "safe" variant of each (``makeSafeRegex``) in which the unbounded quantifiers on
``\\s``, ``\\d`` and ``[a-zA-Z0-9-]`` get upper bounds. The library itself only ever matches
with the safe variants, and the bounds are behaviour, not decoration: a 300-digit number or a
251-character build identifier simply does not match. So we compose the same sources, apply
the same transform, and only then translate JavaScript regex dialect into Python's:

* ``\\s`` is JavaScript's whitespace set (it differs from Python's: U+FEFF is in, U+001C..1F
  and U+0085 are out);
* ``\\d`` is ASCII ``[0-9]`` (Python's ``\\d`` would accept any Unicode digit);
* ``$`` is ``\\Z`` (Python's ``$`` also matches before a trailing newline, JavaScript's not).
"""

from __future__ import annotations

import re

MAX_LENGTH = 256
MAX_SAFE_INTEGER = 2**53 - 1
# the longest build identifier that fits the shortest version with a build: 0.0.0+BUILD
MAX_SAFE_BUILD_LENGTH = MAX_LENGTH - 6

# JavaScript's WhiteSpace + LineTerminator: what `\s` matches and what String#trim removes.
JS_WHITESPACE = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_WS_CLASS_BODY = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

_LETTERDASHNUMBER = "[a-zA-Z0-9-]"
_SAFE_REPLACEMENTS = ((r"\s", 1), (r"\d", MAX_LENGTH), (_LETTERDASHNUMBER, MAX_SAFE_BUILD_LENGTH))


def _make_safe(source: str) -> str:
    for token, bound in _SAFE_REPLACEMENTS:
        source = source.replace(token + "*", f"{token}{{0,{bound}}}")
        source = source.replace(token + "+", f"{token}{{1,{bound}}}")
    return source


def _to_python(source: str) -> str:
    source = source.replace(r"[v=\s]", "[v=" + _WS_CLASS_BODY + "]")
    source = source.replace(r"\s", "[" + _WS_CLASS_BODY + "]")
    source = source.replace(r"\d", "[0-9]")
    return source.replace("$", r"\Z")


def _compile(source: str, *, safe: bool = True) -> re.Pattern[str]:
    return re.compile(_to_python(_make_safe(source) if safe else source))


# -- sources, token for token as in node-semver 7.8 internal/re.js --------------------------
_NUMERICIDENTIFIER = r"0|[1-9]\d*"
_NUMERICIDENTIFIERLOOSE = r"\d+"
_NONNUMERICIDENTIFIER = rf"\d*[a-zA-Z-]{_LETTERDASHNUMBER}*"
_MAINVERSION = rf"({_NUMERICIDENTIFIER})\.({_NUMERICIDENTIFIER})\.({_NUMERICIDENTIFIER})"
_MAINVERSIONLOOSE = rf"({_NUMERICIDENTIFIERLOOSE})\.({_NUMERICIDENTIFIERLOOSE})\.({_NUMERICIDENTIFIERLOOSE})"
# non-numeric identifiers include numeric ones but can be longer, so they go first
_PRERELEASEIDENTIFIER = f"(?:{_NONNUMERICIDENTIFIER}|{_NUMERICIDENTIFIER})"
_PRERELEASEIDENTIFIERLOOSE = f"(?:{_NONNUMERICIDENTIFIER}|{_NUMERICIDENTIFIERLOOSE})"
_PRERELEASE = rf"(?:-({_PRERELEASEIDENTIFIER}(?:\.{_PRERELEASEIDENTIFIER})*))"
_PRERELEASELOOSE = rf"(?:-?({_PRERELEASEIDENTIFIERLOOSE}(?:\.{_PRERELEASEIDENTIFIERLOOSE})*))"
_BUILDIDENTIFIER = f"{_LETTERDASHNUMBER}+"
_BUILD = rf"(?:\+({_BUILDIDENTIFIER}(?:\.{_BUILDIDENTIFIER})*))"
_FULLPLAIN = f"v?{_MAINVERSION}{_PRERELEASE}?{_BUILD}?"
_LOOSEPLAIN = rf"[v=\s]*{_MAINVERSIONLOOSE}{_PRERELEASELOOSE}?{_BUILD}?"
_GTLT = "((?:<|>)?=?)"
_XRANGEIDENTIFIERLOOSE = rf"{_NUMERICIDENTIFIERLOOSE}|x|X|\*"
_XRANGEIDENTIFIER = rf"{_NUMERICIDENTIFIER}|x|X|\*"
_XRANGEPLAIN = (
    rf"[v=\s]*({_XRANGEIDENTIFIER})(?:\.({_XRANGEIDENTIFIER})(?:\.({_XRANGEIDENTIFIER})"
    rf"(?:{_PRERELEASE})?{_BUILD}?)?)?"
)
_XRANGEPLAINLOOSE = (
    rf"[v=\s]*({_XRANGEIDENTIFIERLOOSE})(?:\.({_XRANGEIDENTIFIERLOOSE})(?:\.({_XRANGEIDENTIFIERLOOSE})"
    rf"(?:{_PRERELEASELOOSE})?{_BUILD}?)?)?"
)
_LONETILDE = "(?:~>?)"
_LONECARET = r"(?:\^)"

FULL = _compile(f"^{_FULLPLAIN}$")
LOOSE = _compile(f"^{_LOOSEPLAIN}$")
PRERELEASE = _compile(_PRERELEASE)
PRERELEASELOOSE = _compile(_PRERELEASELOOSE)
BUILD = _compile(_BUILD)
# parseRange strips build metadata with the *unbounded* source, so long metadata cannot
# survive the bounded patterns half-matched and bleed into the version (upstream #869)
BUILDSTRIP = _compile(_BUILD, safe=False)
XRANGE = _compile(rf"^{_GTLT}\s*{_XRANGEPLAIN}$")
XRANGELOOSE = _compile(rf"^{_GTLT}\s*{_XRANGEPLAINLOOSE}$")
TILDETRIM = _compile(rf"(\s*){_LONETILDE}\s+")
TILDE = _compile(f"^{_LONETILDE}{_XRANGEPLAIN}$")
TILDELOOSE = _compile(f"^{_LONETILDE}{_XRANGEPLAINLOOSE}$")
CARETTRIM = _compile(rf"(\s*){_LONECARET}\s+")
CARET = _compile(f"^{_LONECARET}{_XRANGEPLAIN}$")
CARETLOOSE = _compile(f"^{_LONECARET}{_XRANGEPLAINLOOSE}$")
COMPARATORLOOSE = _compile(rf"^{_GTLT}\s*({_LOOSEPLAIN})$|^$")
COMPARATOR = _compile(rf"^{_GTLT}\s*({_FULLPLAIN})$|^$")
COMPARATORTRIM = _compile(rf"(\s*){_GTLT}\s*({_LOOSEPLAIN}|{_XRANGEPLAIN})")
# COMPARATORTRIM after its leading [v=\s]* run: what _desugar.comparator_trim matches at the
# end of each run instead of letting the regex rescan the run from every start position
COMPARATORTRIM_REST = _compile(
    rf"(?:{_MAINVERSIONLOOSE}{_PRERELEASELOOSE}?{_BUILD}?"
    rf"|({_XRANGEIDENTIFIER})(?:\.({_XRANGEIDENTIFIER})(?:\.({_XRANGEIDENTIFIER})(?:{_PRERELEASE})?{_BUILD}?)?)?)"
)
HYPHENRANGE = _compile(rf"^\s*({_XRANGEPLAIN})\s+-\s+({_XRANGEPLAIN})\s*$")
HYPHENRANGELOOSE = _compile(rf"^\s*({_XRANGEPLAINLOOSE})\s+-\s+({_XRANGEPLAINLOOSE})\s*$")
STAR = _compile(r"(<|>)?=?\s*\*")
GTE0 = _compile(r"^\s*>=\s*0\.0\.0\s*$")
GTE0PRE = _compile(r"^\s*>=\s*0\.0\.0-0\s*$")

# plumbing that upstream writes as JavaScript literals (/\s+/, /^[0-9]+$/)
WHITESPACE_RUN = _compile(r"\s+", safe=False)
NUMERIC = re.compile(r"[0-9]+")


def js_trim(text: str) -> str:
    """JavaScript's ``String.prototype.trim``."""
    return text.strip(JS_WHITESPACE)


def js_split_ws(text: str) -> list[str]:
    """JavaScript's ``text.split(/\\s+/)`` (keeps the empty ends, like JS does)."""
    return WHITESPACE_RUN.split(text)
