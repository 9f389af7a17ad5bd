"""Range sugar to primitive comparators: ``^1.2`` → ``>=1.2.0 <2.0.0-0``.

A port of the text-rewriting half of node-semver 7.8's ``classes/range.js``
(``parseRange`` up to the comparator strings, ``hyphenReplace``, ``replaceCaret``,
``replaceTilde``, ``replaceXRange``, ``replaceStars``, ``replaceGTE0``). It works on strings,
as upstream does, because the exact strings matter: loose mode *drops* a comparator whose
text does not parse, so the text each step produces is part of the behaviour. Group values
are kept as the matched text (``"01"`` stays ``"01"`` in loose mode) for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._re import (
    BUILD,
    BUILDSTRIP,
    CARET,
    CARETLOOSE,
    CARETTRIM,
    COMPARATORLOOSE,
    COMPARATORTRIM_REST,
    GTE0,
    GTE0PRE,
    HYPHENRANGE,
    HYPHENRANGELOOSE,
    JS_WHITESPACE,
    STAR,
    TILDE,
    TILDELOOSE,
    TILDETRIM,
    XRANGE,
    XRANGELOOSE,
    js_split_ws,
    js_trim,
)

_SPACE = frozenset(JS_WHITESPACE)
_RUN = frozenset("v=" + JS_WHITESPACE)


def comparator_strings(part: str, loose: bool, include_prerelease: bool) -> list[str]:
    """The primitive comparator strings of one ``||`` alternative (``parseRange``)."""
    part = BUILDSTRIP.sub("", part)
    hyphen = HYPHENRANGELOOSE if loose else HYPHENRANGE
    part = hyphen.sub(_hyphen_replace(include_prerelease), part, count=1)
    # `> 1.2.3 < 1.2.5` => `>1.2.3 <1.2.5`, `~ 1.2.3` => `~1.2.3`, `^ 1.2.3` => `^1.2.3`
    part = comparator_trim(part)
    part = TILDETRIM.sub(lambda m: m[1] + "~", part)
    part = CARETTRIM.sub(lambda m: m[1] + "^", part)
    joined = " ".join(_parse_comparator(comp, loose, include_prerelease) for comp in part.split(" "))
    comps = [_replace_gte0(comp, include_prerelease) for comp in js_split_ws(joined)]
    if loose:
        # loose mode throws out what is not a comparator instead of failing the range
        comps = [comp for comp in comps if COMPARATORLOOSE.match(comp)]
    return comps


def comparator_trim(text: str) -> str:
    """``text.replace(COMPARATORTRIM, '$1$2$3')`` in linear time: `> 1.2.3` => `>1.2.3`.

    The regex is a global search for ``(\\s?)(GTLT)\\s?`` + a version, and a version opens
    with an unbounded ``[v=\\s]*`` run. On a long run that leads nowhere (``"v" * 20000``),
    the regex rescans the rest of the run from every start position: quadratic. But no way
    through the optional prefix changes where that run ends, and the version proper must
    start right there (its first character, a digit, x or *, is not in the run), so whether a
    match starts at a position depends only on the run's end. This walks the same greedy
    path the regex takes, matches the rest of the version once per run end, and drops just
    what ``$1$2$3`` drops: the optional whitespace between the operator and the version.
    """
    size = len(text)
    run_end = list(range(size + 1))  # run_end[i]: first index >= i not in [v=\s]
    for i in range(size - 1, -1, -1):
        if text[i] in _RUN:
            run_end[i] = run_end[i + 1]
    rest_end: dict[int, int] = {}
    pieces: list[str] = []
    emitted = i = 0
    while i < size:
        j = i + (text[i] in _SPACE)
        j += j < size and text[j] in "<>"
        j += j < size and text[j] == "="
        gap = j
        j += j < size and text[j] in _SPACE
        start = run_end[j]
        end = rest_end.get(start)
        if end is None:
            match = COMPARATORTRIM_REST.match(text, start)
            end = rest_end[start] = match.end() if match else -1
        if end < 0:
            i += 1
            continue
        if j > gap:
            pieces.append(text[emitted:gap])
            emitted = j
        i = end
    pieces.append(text[emitted:])
    return "".join(pieces)


def _parse_comparator(comp: str, loose: bool, include_prerelease: bool) -> str:
    comp = BUILD.sub("", comp, count=1)
    comp = " ".join(_replace_caret(c, loose, include_prerelease) for c in js_split_ws(js_trim(comp)))
    comp = " ".join(_replace_tilde(c, loose, include_prerelease) for c in js_split_ws(js_trim(comp)))
    comp = " ".join(_replace_xrange(c, loose, include_prerelease) for c in js_split_ws(comp))
    # `*` is AND-ed with the rest and means "any", so it just disappears
    return STAR.sub("", js_trim(comp), count=1)


def _is_x(part: str | None) -> bool:
    return not part or part.lower() == "x" or part == "*"


def js_plus_one(digits: str) -> str:
    """``String(+digits + 1)``: JavaScript arithmetic on doubles, JavaScript formatting.

    Exact below 2**53; above that the double's digits; at 1e21 and beyond JavaScript writes
    an exponent (``1e+21``), which is no version text, so loose mode drops that comparator.
    """
    number = int(digits)
    if number < 2**53:
        return str(number + 1)
    value = float(number) + 1.0
    if value >= 1e21:
        return repr(value)  # Python's shortest repr has JavaScript's shape here: 1.5e+21
    shortest = repr(value)
    if "e" in shortest:
        mantissa, _, exponent = shortest.partition("e")
        figures = mantissa.replace(".", "")
        return figures + "0" * (int(exponent) + 1 - len(figures))
    return shortest.removesuffix(".0")


def _replace_caret(comp: str, loose: bool, include_prerelease: bool) -> str:
    z = "-0" if include_prerelease else ""

    def caret(m: re.Match[str]) -> str:
        major, minor, patch, pre = m[1], m[2], m[3], m[4]
        if _is_x(major):
            return ""
        if _is_x(minor):
            return f">={major}.0.0{z} <{js_plus_one(major)}.0.0-0"
        if _is_x(patch):
            if major == "0":
                return f">={major}.{minor}.0{z} <{major}.{js_plus_one(minor)}.0-0"
            return f">={major}.{minor}.0{z} <{js_plus_one(major)}.0.0-0"
        low = f">={major}.{minor}.{patch}-{pre}" if pre else f">={major}.{minor}.{patch}"
        if major == "0":
            if minor == "0":
                return f"{low} <{major}.{minor}.{js_plus_one(patch)}-0"
            return f"{low} <{major}.{js_plus_one(minor)}.0-0"
        return f"{low} <{js_plus_one(major)}.0.0-0"

    return (CARETLOOSE if loose else CARET).sub(caret, comp, count=1)


def _replace_tilde(comp: str, loose: bool, include_prerelease: bool) -> str:
    # with prereleases included the lower bound is -0, as for x-ranges and carets, which
    # keeps `~1.2` equal to the `1.2.x` it is documented as
    z = "-0" if include_prerelease else ""

    def tilde(m: re.Match[str]) -> str:
        major, minor, patch, pre = m[1], m[2], m[3], m[4]
        if _is_x(major):
            return ""
        if _is_x(minor):
            return f">={major}.0.0{z} <{js_plus_one(major)}.0.0-0"
        if _is_x(patch):
            return f">={major}.{minor}.0{z} <{major}.{js_plus_one(minor)}.0-0"
        if pre:
            return f">={major}.{minor}.{patch}-{pre} <{major}.{js_plus_one(minor)}.0-0"
        return f">={major}.{minor}.{patch} <{major}.{js_plus_one(minor)}.0-0"

    return (TILDELOOSE if loose else TILDE).sub(tilde, comp, count=1)


def _replace_xrange(comp: str, loose: bool, include_prerelease: bool) -> str:
    comp = js_trim(comp)

    def xrange(m: re.Match[str]) -> str:
        gtlt, major, minor, patch = m[1], m[2], m[3], m[4]
        # `x.1` and `1.x.5` name no set of versions: left as is, they fail to parse
        if (_is_x(major) and not _is_x(minor)) or (_is_x(minor) and patch and not _is_x(patch)):
            return comp
        x_major = _is_x(major)
        x_minor = x_major or _is_x(minor)
        any_x = x_minor or _is_x(patch)
        if gtlt == "=" and any_x:
            gtlt = ""
        # with prereleases included the lowest version is the -0 prerelease
        pr = "-0" if include_prerelease else ""
        if x_major:
            return "<0.0.0-0" if gtlt in (">", "<") else "*"
        if gtlt and any_x:
            minor_text = "0" if x_minor else minor
            patch_text = "0"
            if gtlt == ">":
                # >1 => >=2.0.0, >1.2 => >=1.3.0
                gtlt = ">="
                if x_minor:
                    major, minor_text = js_plus_one(major), "0"
                else:
                    minor_text = js_plus_one(minor_text)
            elif gtlt == "<=":
                # <=0.7.x is <0.8.0-0: any 0.7.x passes
                gtlt = "<"
                if x_minor:
                    major = js_plus_one(major)
                else:
                    minor_text = js_plus_one(minor_text)
            if gtlt == "<":
                pr = "-0"
            return f"{gtlt}{major}.{minor_text}.{patch_text}{pr}"
        if x_minor:
            return f">={major}.0.0{pr} <{js_plus_one(major)}.0.0-0"
        if any_x:
            return f">={major}.{minor}.0{pr} <{major}.{js_plus_one(minor)}.0-0"
        return m[0]

    return (XRANGELOOSE if loose else XRANGE).sub(xrange, comp, count=1)


def _replace_gte0(comp: str, include_prerelease: bool) -> str:
    # >=0.0.0 is the same as * (and >=0.0.0-0 when prereleases are included)
    return (GTE0PRE if include_prerelease else GTE0).sub("", js_trim(comp), count=1)


def _hyphen_replace(include_prerelease: bool) -> Callable[[re.Match[str]], str]:
    # 1.2 - 3.4.5 => >=1.2.0 <=3.4.5;  1.2.3 - 3.4 => >=1.2.3 <3.5.0-0 (any 3.4.x will do)
    z = "-0" if include_prerelease else ""

    def hyphen(m: re.Match[str]) -> str:
        (whole_from, f_major, f_minor, f_patch, f_pre, _f_build,
         whole_to, t_major, t_minor, t_patch, t_pre, _t_build) = m.groups()  # fmt: skip
        if _is_x(f_major):
            low = ""
        elif _is_x(f_minor):
            low = f">={f_major}.0.0{z}"
        elif _is_x(f_patch):
            low = f">={f_major}.{f_minor}.0{z}"
        elif f_pre:
            low = f">={whole_from}"
        else:
            low = f">={whole_from}{z}"
        if _is_x(t_major):
            high = ""
        elif _is_x(t_minor):
            high = f"<{js_plus_one(t_major)}.0.0-0"
        elif _is_x(t_patch):
            high = f"<{t_major}.{js_plus_one(t_minor)}.0-0"
        elif t_pre:
            high = f"<={t_major}.{t_minor}.{t_patch}-{t_pre}"
        elif include_prerelease:
            high = f"<{t_major}.{t_minor}.{js_plus_one(t_patch)}-0"
        else:
            high = f"<={whole_to}"
        return js_trim(f"{low} {high}")

    return hyphen
