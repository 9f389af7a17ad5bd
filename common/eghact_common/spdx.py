"""SPDX licence expressions: parse, print, and decide a resolver's licence policy.

The grammar is SPDX 2.3 annex D, with the precedence it gives (``WITH`` binds tighter than
``AND``, which binds tighter than ``OR``)::

    expression := and ("OR" and)*
    and        := with ("AND" with)*
    with       := simple ["WITH" exception-id]  |  "(" expression ")"
    simple     := license-id ["+"]  |  ["DocumentRef-" idstring ":"] "LicenseRef-" idstring

Ids and operators match case-insensitively and print in their canonical spelling. npm's two
legacy values, ``UNLICENSED`` (all rights reserved) and ``SEE LICENSE IN <file>``, are
accepted as whole expressions only.

Trees are immutable and normalised: ``And``/``Or`` are n-ary and never directly contain a
node of their own kind, so ``parse_expression(str(e)) == e`` for every tree ``e``.

Only the licences of :data:`LICENSES` are known: the ones npm packages actually use, not
the full SPDX list. Anything else can be named as ``LicenseRef-<name>``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "EXCEPTIONS",
    "LICENSES",
    "And",
    "InvalidLicense",
    "License",
    "LicenseExpr",
    "LicenseInfo",
    "Or",
    "SeeLicenseIn",
    "Unlicensed",
    "is_osi_approved",
    "parse_expression",
    "satisfies_allow_list",
]


class InvalidLicense(ValueError):
    """A string that is not a licence expression we can read."""


@dataclass(frozen=True, slots=True)
class LicenseInfo:
    id: str
    osi_approved: bool
    #: for a deprecated id, the id that replaces it (``GPL-2.0`` -> ``GPL-2.0-only``)
    replaced_by: str | None = None


# One licence a line: id, OSI approval (per the SPDX list), and for deprecated ids the id
# that replaces it. Deprecated GNU ids stay because a large part of npm still uses them.
_LICENSE_TABLE = """
0BSD yes                      AAL yes                       AFL-1.1 yes
AFL-1.2 yes                   AFL-2.0 yes                   AFL-2.1 yes
AFL-3.0 yes                   AGPL-1.0-only no              AGPL-1.0-or-later no
AGPL-3.0-only yes             AGPL-3.0-or-later yes         Apache-1.0 no
Apache-1.1 yes                Apache-2.0 yes                APSL-2.0 yes
Artistic-1.0 yes              Artistic-1.0-Perl yes         Artistic-2.0 yes
Beerware no                   BlueOak-1.0.0 yes             BSD-1-Clause yes
BSD-2-Clause yes              BSD-2-Clause-Patent yes       BSD-3-Clause yes
BSD-3-Clause-Clear no         BSD-3-Clause-LBNL yes         BSD-4-Clause no
BSL-1.0 yes                   BUSL-1.1 no                   CAL-1.0 yes
CC-BY-3.0 no                  CC-BY-4.0 no                  CC-BY-NC-4.0 no
CC-BY-NC-ND-4.0 no            CC-BY-NC-SA-4.0 no            CC-BY-ND-4.0 no
CC-BY-SA-3.0 no               CC-BY-SA-4.0 no               CC-PDDC no
CC0-1.0 no                    CDDL-1.0 yes                  CDDL-1.1 no
CECILL-2.1 yes                CPAL-1.0 yes                  CPL-1.0 yes
curl no                       ECL-2.0 yes                   EFL-2.0 yes
Elastic-2.0 no                EPL-1.0 yes                   EPL-2.0 yes
EUPL-1.0 no                   EUPL-1.1 yes                  EUPL-1.2 yes
GFDL-1.3-only no              GFDL-1.3-or-later no          GPL-1.0-only no
GPL-1.0-or-later no           GPL-2.0-only yes              GPL-2.0-or-later yes
GPL-3.0-only yes              GPL-3.0-or-later yes          Hippocratic-2.1 no
HPND yes                      IPL-1.0 yes                   ISC yes
JSON no                       LGPL-2.0-only yes             LGPL-2.0-or-later yes
LGPL-2.1-only yes             LGPL-2.1-or-later yes         LGPL-3.0-only yes
LGPL-3.0-or-later yes         Libpng no                     LPPL-1.3c yes
MirOS yes                     MIT yes                       MIT-0 yes
MIT-Modern-Variant yes        MPL-1.0 yes                   MPL-1.1 yes
MPL-2.0 yes                   MPL-2.0-no-copyleft-exception yes
MS-PL yes                     MS-RL yes                     MulanPSL-2.0 yes
NCSA yes                      NPOSL-3.0 yes                 NTP yes
ODbL-1.0 no                   OFL-1.0 no                    OFL-1.1 yes
OFL-1.1-no-RFN yes            OFL-1.1-RFN yes               OLDAP-2.8 yes
OpenSSL no                    OSL-2.1 yes                   OSL-3.0 yes
Parity-7.0.0 no               PHP-3.0 yes                   PHP-3.01 yes
PolyForm-Noncommercial-1.0.0 no                             PolyForm-Small-Business-1.0.0 no
PostgreSQL yes                Python-2.0 yes                Ruby no
Sleepycat yes                 SSPL-1.0 no                   Unicode-3.0 yes
Unicode-DFS-2016 yes          Unlicense yes                 UPL-1.0 yes
Vim no                        W3C yes                       WTFPL no
X11 no                        Zlib yes                      ZPL-2.0 yes
ZPL-2.1 yes
AGPL-1.0 no=AGPL-1.0-only     AGPL-3.0 yes=AGPL-3.0-only    GFDL-1.3 no=GFDL-1.3-only
GPL-1.0 no=GPL-1.0-only       GPL-2.0 yes=GPL-2.0-only      GPL-3.0 yes=GPL-3.0-only
LGPL-2.0 yes=LGPL-2.0-only    LGPL-2.1 yes=LGPL-2.1-only    LGPL-3.0 yes=LGPL-3.0-only
"""

_EXCEPTION_TABLE = """
389-exception Autoconf-exception-2.0 Autoconf-exception-3.0 Bison-exception-2.2
Bootloader-exception Classpath-exception-2.0 CLISP-exception-2.0 eCos-exception-2.0
FLTK-exception fmt-exception Font-exception-2.0 freertos-exception-2.0 GCC-exception-2.0
GCC-exception-3.1 GNAT-exception GPL-3.0-linking-exception GPL-3.0-linking-source-exception
GPL-CC-1.0 i2p-gpl-java-exception LGPL-3.0-linking-exception Libtool-exception
Linux-syscall-note LLVM-exception LZMA-exception mif-exception OCaml-LGPL-linking-exception
OpenJDK-assembly-exception-1.0 openvpn-openssl-exception PS-or-PDF-font-exception-20170817
Qt-GPL-exception-1.0 Qt-LGPL-exception-1.1 Qwt-exception-1.0 SHL-2.0 SHL-2.1 Swift-exception
u-boot-exception-2.0 Universal-FOSS-exception-1.0 WxWindows-exception-3.1
"""


def _load_licenses(table: str) -> dict[str, LicenseInfo]:
    words = table.split()
    infos: dict[str, LicenseInfo] = {}
    for licence_id, flags in zip(words[::2], words[1::2], strict=True):
        osi, _, successor = flags.partition("=")
        infos[licence_id] = LicenseInfo(licence_id, osi == "yes", successor or None)
    return infos


#: the known licences by canonical id
LICENSES: Mapping[str, LicenseInfo] = _load_licenses(_LICENSE_TABLE)
#: the known licence exceptions (the right-hand side of ``WITH``)
EXCEPTIONS: frozenset[str] = frozenset(_EXCEPTION_TABLE.split())

_CANONICAL_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+")
_ADDITION_REF = re.compile(r"AdditionRef-[A-Za-z0-9.\-]+")
_LICENSE_BY_FOLDED = {key.casefold(): key for key in LICENSES}
_EXCEPTION_BY_FOLDED = {key.casefold(): key for key in EXCEPTIONS}


class LicenseExpr:
    """A parsed licence expression (immutable). ``str()`` prints its canonical form."""

    __slots__ = ()

    def ids(self) -> frozenset[str]:
        """The licences it names: SPDX ids (canonical spelling) and ``LicenseRef-`` references."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class License(LicenseExpr):
    """One licence: an SPDX id (maybe ``+``, "or any later version") or a ``LicenseRef-``,
    maybe ``WITH`` an exception."""

    id: str
    plus: bool = False
    exception: str | None = None

    def __post_init__(self) -> None:
        # Valid by construction, in canonical spelling: parse_expression() is the lenient way in.
        is_ref = _CANONICAL_REF.fullmatch(self.id) is not None
        if not is_ref and self.id not in LICENSES:
            raise InvalidLicense(f"unknown licence id {self.id!r}")
        if is_ref and self.plus:
            raise InvalidLicense(f"'+' applies to SPDX licence ids, not to {self.id!r}")
        if self.exception is not None and not (self.exception in EXCEPTIONS or _ADDITION_REF.fullmatch(self.exception)):
            raise InvalidLicense(f"unknown licence exception {self.exception!r}")

    def __str__(self) -> str:
        text = self.id + ("+" if self.plus else "")
        return f"{text} WITH {self.exception}" if self.exception else text

    def ids(self) -> frozenset[str]:
        return frozenset({self.id})


@dataclass(frozen=True, slots=True)
class Unlicensed(LicenseExpr):
    """npm's ``UNLICENSED``: not licensed for use by others."""

    def __str__(self) -> str:
        return "UNLICENSED"

    def ids(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True)
class SeeLicenseIn(LicenseExpr):
    """npm's ``SEE LICENSE IN <file>``: a custom licence shipped in the package."""

    file: str

    def __post_init__(self) -> None:
        if not self.file.strip():
            raise InvalidLicense("SEE LICENSE IN needs a file name")

    def __str__(self) -> str:
        return f"SEE LICENSE IN {self.file}"

    def ids(self) -> frozenset[str]:
        return frozenset()


def _flatten(kind: type, terms: Iterable[LicenseExpr]) -> tuple[LicenseExpr, ...]:
    flat: list[LicenseExpr] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, kind) else (term,))  # type: ignore[attr-defined]
    if len(flat) < 2:
        raise InvalidLicense(f"{kind.__name__} needs at least two terms")
    return tuple(flat)


@dataclass(frozen=True, slots=True)
class And(LicenseExpr):
    """All of the terms apply at once."""

    terms: tuple[LicenseExpr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", _flatten(And, self.terms))

    def __str__(self) -> str:
        return " AND ".join(f"({term})" if isinstance(term, Or) else str(term) for term in self.terms)

    def ids(self) -> frozenset[str]:
        return frozenset().union(*(term.ids() for term in self.terms))


@dataclass(frozen=True, slots=True)
class Or(LicenseExpr):
    """The user may choose any one of the terms."""

    terms: tuple[LicenseExpr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", _flatten(Or, self.terms))

    def __str__(self) -> str:
        return " OR ".join(str(term) for term in self.terms)

    def ids(self) -> frozenset[str]:
        return frozenset().union(*(term.ids() for term in self.terms))


# ---------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<word>[A-Za-z0-9.\-:]+\+?)|(?P<bad>\S))")
_IDSTRING = re.compile(r"[A-Za-z0-9.\-]+")
_REF = re.compile(r"(?:DocumentRef-(?P<doc>[^:]*):)?LicenseRef-(?P<ref>.*)", re.IGNORECASE)
_SEE_LICENSE = re.compile(r"SEE\s+LICEN[CS]E\s+IN\s+(?P<file>\S.*)", re.IGNORECASE | re.DOTALL)
_UNLICENSED = frozenset({"unlicensed", "unlicenced"})
_OPERATORS = frozenset({"AND", "OR", "WITH"})


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, int]] = []
        for match in _TOKEN.finditer(text):
            if match["bad"]:
                raise self.error(f"unexpected {match['bad']!r} at offset {match.start('bad')}")
            token = match["paren"] or match["word"]
            if token:
                self.tokens.append((token, match.start("paren") if match["paren"] else match.start("word")))
        self.index = 0

    def error(self, why: str) -> InvalidLicense:
        return InvalidLicense(f"invalid licence expression {self.text!r}: {why}")

    def peek(self) -> str | None:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def peek_operator(self, operator: str) -> bool:
        token = self.peek()
        return token is not None and token.upper() == operator

    def where(self) -> str:
        if self.index < len(self.tokens):
            return f"at offset {self.tokens[self.index][1]}"
        return "at the end"

    def take(self, wanted: str) -> str:
        token = self.peek()
        if token is None:
            raise self.error(f"unexpected end, expected {wanted}")
        self.index += 1
        return token

    def parse(self) -> LicenseExpr:
        if not self.tokens:
            raise self.error("empty")
        expr = self.expression()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()!r} {self.where()}")
        return expr

    def expression(self) -> LicenseExpr:
        terms = [self.conjunction()]
        while self.peek_operator("OR"):
            self.index += 1
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def conjunction(self) -> LicenseExpr:
        terms = [self.with_expression()]
        while self.peek_operator("AND"):
            self.index += 1
            terms.append(self.with_expression())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def with_expression(self) -> LicenseExpr:
        if self.peek() == "(":
            self.index += 1
            inner = self.expression()
            if self.peek() != ")":
                raise self.error(f"expected ')' {self.where()}")
            self.index += 1
            if self.peek_operator("WITH"):
                raise self.error("WITH applies to one licence, not to a parenthesised expression")
            return inner
        licence = self.simple()
        if not self.peek_operator("WITH"):
            return licence
        self.index += 1
        return License(licence.id, licence.plus, self.exception())

    def simple(self) -> License:
        at = self.where()
        word = self.take("a licence id")
        if word in ("(", ")") or word.upper() in _OPERATORS:
            raise self.error(f"expected a licence id {at}, found {word!r}")
        plus = word.endswith("+")
        bare = word.removesuffix("+")
        ref = _REF.fullmatch(bare)
        if ref:
            if plus:
                raise self.error(f"'+' applies to SPDX licence ids, not to {bare!r}")
            return License(self._reference(ref), False)
        canonical = _LICENSE_BY_FOLDED.get(bare.casefold())
        if canonical is None:
            if bare.casefold() in _UNLICENSED or bare.upper() == "SEE":
                raise self.error("UNLICENSED and SEE LICENSE IN <file> must be the whole licence field")
            if bare.casefold() in _EXCEPTION_BY_FOLDED:
                raise self.error(f"{bare!r} is a licence exception; it can only follow WITH")
            raise self.error(f"unknown licence id {bare!r} (use LicenseRef-<name> for a licence not on the SPDX list)")
        return License(canonical, plus)

    def exception(self) -> str:
        at = self.where()
        word = self.take("a licence exception after WITH")
        canonical = _EXCEPTION_BY_FOLDED.get(word.casefold())
        if canonical is not None:
            return canonical
        if word[:12].casefold() == "additionref-" and _IDSTRING.fullmatch(word[12:]):
            return "AdditionRef-" + word[12:]
        if word.removesuffix("+").casefold() in _LICENSE_BY_FOLDED:
            raise self.error(f"expected a licence exception after WITH {at}, found the licence {word!r}")
        raise self.error(f"unknown licence exception {word!r} {at}")

    def _reference(self, ref: re.Match[str]) -> str:
        doc, name = ref["doc"], ref["ref"]
        if doc is not None and not _IDSTRING.fullmatch(doc):
            raise self.error(f"bad DocumentRef id {doc!r}")
        if not _IDSTRING.fullmatch(name):
            raise self.error(f"bad LicenseRef id {name!r}")
        prefix = f"DocumentRef-{doc}:" if doc is not None else ""
        return f"{prefix}LicenseRef-{name}"


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> LicenseExpr:
    stripped = text.strip()
    if stripped.casefold() in _UNLICENSED:
        return Unlicensed()
    see = _SEE_LICENSE.fullmatch(stripped)
    if see:
        return SeeLicenseIn(see["file"].strip())
    return _Parser(stripped).parse()


def parse_expression(text: str) -> LicenseExpr:
    """Parse an SPDX expression (or npm's ``UNLICENSED`` / ``SEE LICENSE IN <file>``).

    Raises :class:`InvalidLicense` saying what is wrong and where. Results are cached.
    """
    if not isinstance(text, str):
        raise InvalidLicense(f"a licence expression must be a string, not {type(text).__name__}")
    return _parse(text)


def _as_expr(expr: LicenseExpr | str) -> LicenseExpr:
    return expr if isinstance(expr, LicenseExpr) else parse_expression(expr)


# ----------------------------------------------------------------------------- policy


def is_osi_approved(expr: LicenseExpr | str) -> bool:
    """Whether the package may be used under OSI-approved terms only.

    An ``OR`` needs one approved choice, an ``AND`` needs every part approved; an exception
    only adds permissions, so it does not change the answer. References, ``UNLICENSED`` and
    ``SEE LICENSE IN`` are not approved.
    """
    expr = _as_expr(expr)
    if isinstance(expr, Or):
        return any(is_osi_approved(term) for term in expr.terms)
    if isinstance(expr, And):
        return all(is_osi_approved(term) for term in expr.terms)
    if isinstance(expr, License):
        info = LICENSES.get(expr.id)
        return info is not None and info.osi_approved
    return False


# A policy key names what a licence grants, not how it is spelled: `GPL-2.0`, `GPL-2.0-only`
# -> ("GPL-2.0", False); `GPL-2.0+`, `GPL-2.0-or-later` -> ("GPL-2.0", True).
_Key = tuple[str, bool, str | None]


def _key(licence: License) -> _Key:
    info = LICENSES.get(licence.id)
    stem = info.replaced_by if info and info.replaced_by else licence.id
    plus = licence.plus
    if info is not None and stem.endswith("-or-later"):
        stem, plus = stem.removesuffix("-or-later"), True
    elif info is not None and stem.endswith("-only"):
        stem = stem.removesuffix("-only")
    return stem, plus, licence.exception


@dataclass(frozen=True, slots=True)
class _AllowList:
    keys: frozenset[_Key]
    #: compound entries ("MIT AND BSD-3-Clause") and npm legacy values, matched as printed
    exact: frozenset[str]


@functools.lru_cache(maxsize=64)
def _compile_allow_list(entries: tuple[str, ...]) -> _AllowList:
    keys: set[_Key] = set()
    exact: set[str] = set()
    for entry in entries:
        expr = parse_expression(entry)
        if isinstance(expr, License):
            keys.add(_key(expr))
        else:
            exact.add(str(expr))
    return _AllowList(frozenset(keys), frozenset(exact))


def _leaf_allowed(licence: License, allow: _AllowList) -> bool:
    stem, plus, exception = _key(licence)
    # `X WITH exc` is fine when X is: an exception only ever adds permissions. `X+` is fine
    # when X is: "X or any later version" lets the user pick X itself.
    candidates = {(stem, plus, exception), (stem, plus, None)}
    if plus:
        candidates |= {(stem, False, exception), (stem, False, None)}
    return not candidates.isdisjoint(allow.keys)


def _allowed(expr: LicenseExpr, allow: _AllowList) -> bool:
    if str(expr) in allow.exact:
        return True
    if isinstance(expr, Or):
        return any(_allowed(term, allow) for term in expr.terms)
    if isinstance(expr, And):
        return all(_allowed(term, allow) for term in expr.terms)
    if isinstance(expr, License):
        return _leaf_allowed(expr, allow)
    return False


def satisfies_allow_list(expr: LicenseExpr | str, allowed: Iterable[str]) -> bool:
    """Whether a package under ``expr`` may be used by a policy that allows ``allowed``.

    ``A OR B`` passes when either passes, ``A AND B`` when both do; ``X WITH exc`` passes
    when ``X`` (or exactly ``X WITH exc``) is allowed, ``X+`` when ``X`` is. Deprecated ids
    count as their replacements (``GPL-2.0`` is ``GPL-2.0-only``, ``GPL-2.0+`` is
    ``GPL-2.0-or-later``). An allow-list entry that is itself compound, ``UNLICENSED`` or
    ``SEE LICENSE IN ...`` matches only that same (sub)expression. A malformed entry raises
    :class:`InvalidLicense`: a policy typo must not silently allow or refuse.
    """
    return _allowed(_as_expr(expr), _compile_allow_list(tuple(allowed)))
