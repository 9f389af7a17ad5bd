"""SPDX licence expressions: parsing, printing, OSI approval and the resolver's allow-list policy."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eghact_common.spdx import (
    EXCEPTIONS,
    LICENSES,
    And,
    InvalidLicense,
    License,
    LicenseExpr,
    Or,
    SeeLicenseIn,
    Unlicensed,
    is_osi_approved,
    parse_expression,
    satisfies_allow_list,
)

MIT, ISC, APACHE, BSD3 = License("MIT"), License("ISC"), License("Apache-2.0"), License("BSD-3-Clause")


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("MIT", MIT),
        ("mit", MIT),
        ("  Apache-2.0  ", APACHE),
        ("(MIT)", MIT),
        ("MIT OR Apache-2.0", Or((MIT, APACHE))),
        ("mit or apache-2.0", Or((MIT, APACHE))),
        ("MIT OR ISC OR BSD-3-Clause", Or((MIT, ISC, BSD3))),
        ("(MIT OR ISC) OR BSD-3-Clause", Or((MIT, ISC, BSD3))),
        # AND binds tighter than OR, on either side
        ("MIT OR ISC AND BSD-3-Clause", Or((MIT, And((ISC, BSD3))))),
        ("MIT AND ISC OR BSD-3-Clause", Or((And((MIT, ISC)), BSD3))),
        ("(MIT OR ISC) AND BSD-3-Clause", And((Or((MIT, ISC)), BSD3))),
        ("GPL-2.0+", License("GPL-2.0", plus=True)),
        ("GPL-2.0-or-later", License("GPL-2.0-or-later")),
        (
            "gpl-2.0-only with classpath-exception-2.0",
            License("GPL-2.0-only", exception="Classpath-exception-2.0"),
        ),
        # WITH binds tighter than AND and OR
        (
            "Apache-2.0 WITH LLVM-exception OR MIT",
            Or((License("Apache-2.0", exception="LLVM-exception"), MIT)),
        ),
        (
            "MIT AND GPL-2.0+ WITH Classpath-exception-2.0",
            And((MIT, License("GPL-2.0", plus=True, exception="Classpath-exception-2.0"))),
        ),
        ("LicenseRef-Acme-Proprietary", License("LicenseRef-Acme-Proprietary")),
        ("licenseref-acme", License("LicenseRef-acme")),
        (
            "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2",
            License("DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2"),
        ),
        ("MIT WITH AdditionRef-acme-extra", License("MIT", exception="AdditionRef-acme-extra")),
        ("UNLICENSED", Unlicensed()),
        ("unlicenced", Unlicensed()),
        ("SEE LICENSE IN LICENSE.md", SeeLicenseIn("LICENSE.md")),
        ("see licence in ./docs/EULA.txt", SeeLicenseIn("./docs/EULA.txt")),
    ],
)
def test_parse(text: str, tree: LicenseExpr) -> None:
    assert parse_expression(text) == tree


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("mit", "MIT"),
        ("(mit or isc) and bsd-3-clause", "(MIT OR ISC) AND BSD-3-Clause"),
        ("MIT OR (ISC AND BSD-3-Clause)", "MIT OR ISC AND BSD-3-Clause"),
        ("((MIT))", "MIT"),
        ("gpl-2.0+ with classpath-exception-2.0", "GPL-2.0+ WITH Classpath-exception-2.0"),
        ("see license in LICENSE", "SEE LICENSE IN LICENSE"),
        ("Unlicensed", "UNLICENSED"),
    ],
)
def test_canonical_printing(text: str, printed: str) -> None:
    assert str(parse_expression(text)) == printed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("MIT OR", "unexpected end, expected a licence id"),
        ("OR MIT", "expected a licence id at offset 0, found 'OR'"),
        ("MIT ISC", "unexpected 'ISC' at offset 4"),
        ("(MIT OR ISC", "expected ')' at the end"),
        ("MIT)", "unexpected ')'"),
        ("Apache 2.0", "unknown licence id 'Apache'"),
        ("BSD", "use LicenseRef-<name>"),
        ("MIT/X11", "unexpected '/' at offset 3"),
        ("MIT WITH", "expected a licence exception after WITH"),
        ("MIT WITH GPL-2.0-only", "found the licence 'GPL-2.0-only'"),
        ("MIT WITH no-such-exception", "unknown licence exception 'no-such-exception'"),
        ("LLVM-exception", "'LLVM-exception' is a licence exception; it can only follow WITH"),
        ("GPL-2.0 +", "unexpected '+' at offset 8"),
        ("LicenseRef-acme+", "'+' applies to SPDX licence ids"),
        ("LicenseRef-", "bad LicenseRef id ''"),
        ("(MIT OR ISC) WITH LLVM-exception", "WITH applies to one licence"),
        ("MIT WITH LLVM-exception WITH LLVM-exception", "unexpected 'WITH'"),
        ("UNLICENSED OR MIT", "must be the whole licence field"),
        ("SEE LICENSE IN", "must be the whole licence field"),
    ],
)
def test_invalid_expressions(text: str, says: str) -> None:
    with pytest.raises(InvalidLicense) as caught:
        parse_expression(text)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("value", [None, 3, {"type": "MIT"}, ["MIT"]])
def test_non_string_is_invalid(value: object) -> None:
    with pytest.raises(InvalidLicense, match="must be a string"):
        parse_expression(value)  # type: ignore[arg-type]


def test_parsing_is_cached() -> None:
    assert parse_expression("MIT OR ISC") is parse_expression("MIT OR ISC")


def test_trees_are_immutable_and_normalised() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MIT.id = "ISC"  # type: ignore[misc]
    assert Or((MIT, Or((ISC, BSD3)))) == Or((MIT, ISC, BSD3))
    assert And((Or((MIT, ISC)), BSD3)).terms == (Or((MIT, ISC)), BSD3)
    with pytest.raises(InvalidLicense):
        And((MIT,))
    for bad in (
        lambda: License("mit"),
        lambda: License("LicenseRef-x", plus=True),
        lambda: License("MIT", exception="MIT"),
        lambda: SeeLicenseIn(" "),
    ):
        with pytest.raises(InvalidLicense):
            bad()
    assert hash(parse_expression("MIT AND ISC")) == hash(And((MIT, ISC)))


def test_ids() -> None:
    expr = parse_expression("MIT OR (Apache-2.0 AND LicenseRef-x) OR gpl-2.0+ WITH Classpath-exception-2.0")
    assert expr.ids() == {"MIT", "Apache-2.0", "LicenseRef-x", "GPL-2.0"}
    assert parse_expression("UNLICENSED").ids() == frozenset()
    assert parse_expression("SEE LICENSE IN LICENSE").ids() == frozenset()


# ------------------------------------------------------------------------------ table


def test_table_has_the_common_licences() -> None:
    current = [info for info in LICENSES.values() if info.replaced_by is None]
    assert len(current) >= 80
    osi = {"MIT", "ISC", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "GPL-2.0-only", "GPL-2.0-or-later",
           "GPL-3.0-only", "LGPL-2.1-only", "LGPL-3.0-or-later", "MPL-2.0", "AGPL-3.0-only", "Unlicense",
           "0BSD", "Zlib", "Artistic-2.0", "EPL-2.0"}  # fmt: skip
    not_osi = {"CC0-1.0", "CC-BY-4.0", "CC-BY-NC-4.0", "SSPL-1.0", "BUSL-1.1", "Elastic-2.0", "WTFPL"}
    assert {licence for licence in osi if LICENSES[licence].osi_approved} == osi
    assert {licence for licence in not_osi if not LICENSES[licence].osi_approved} == not_osi
    assert {"Classpath-exception-2.0", "LLVM-exception", "GCC-exception-3.1"} <= EXCEPTIONS
    for info in LICENSES.values():
        assert info.replaced_by is None or info.replaced_by in LICENSES


# ------------------------------------------------------------------------------ OSI


@pytest.mark.parametrize(
    ("text", "approved"),
    [
        ("MIT", True),
        ("CC-BY-NC-4.0", False),
        ("SSPL-1.0", False),
        ("MIT OR SSPL-1.0", True),
        ("MIT AND SSPL-1.0", False),
        ("(BUSL-1.1 OR Elastic-2.0) AND MIT", False),
        ("GPL-2.0-only WITH Classpath-exception-2.0", True),
        ("GPL-3.0", True),
        ("Apache-2.0+", True),
        ("LicenseRef-acme", False),
        ("UNLICENSED", False),
        ("SEE LICENSE IN LICENSE", False),
    ],
)
def test_is_osi_approved(text: str, approved: bool) -> None:
    assert is_osi_approved(text) is approved
    assert is_osi_approved(parse_expression(text)) is approved


# ---------------------------------------------------------------------------- policy

PERMISSIVE = ["MIT", "Apache-2.0", "BSD-3-Clause", "ISC", "GPL-2.0-only"]


@pytest.mark.parametrize(
    ("text", "allowed", "ok"),
    [
        ("MIT", PERMISSIVE, True),
        ("mit", PERMISSIVE, True),
        ("MIT OR GPL-3.0-only", PERMISSIVE, True),
        ("GPL-3.0-only OR MIT", PERMISSIVE, True),
        ("MIT AND GPL-3.0-only", PERMISSIVE, False),
        ("MIT AND ISC", PERMISSIVE, True),
        ("GPL-3.0-only OR (MIT AND ISC)", PERMISSIVE, True),
        ("GPL-3.0-only OR (MIT AND CC-BY-NC-4.0)", PERMISSIVE, False),
        # an exception only adds permissions
        ("Apache-2.0 WITH LLVM-exception", PERMISSIVE, True),
        ("GPL-3.0-only WITH GCC-exception-3.1", PERMISSIVE, False),
        ("GPL-3.0-only WITH GCC-exception-3.1", ["GPL-3.0-only WITH GCC-exception-3.1"], True),
        ("GPL-3.0-only", ["GPL-3.0-only WITH GCC-exception-3.1"], False),
        ("GPL-3.0-only WITH Classpath-exception-2.0", ["GPL-3.0-only WITH GCC-exception-3.1"], False),
        # "or any later version" lets the user pick the listed one
        ("GPL-2.0+", PERMISSIVE, True),
        ("GPL-2.0-or-later", PERMISSIVE, True),
        ("Apache-2.0+", PERMISSIVE, True),
        ("GPL-2.0-only", ["GPL-2.0-or-later"], False),
        ("GPL-2.0+", ["GPL-2.0-or-later"], True),
        # deprecated ids count as their replacements
        ("GPL-2.0", PERMISSIVE, True),
        ("GPL-2.0-only", ["GPL-2.0"], True),
        ("LGPL-2.1+", ["LGPL-2.1-or-later"], True),
        ("LicenseRef-acme", PERMISSIVE, False),
        ("LicenseRef-acme", ["LicenseRef-acme"], True),
        ("UNLICENSED", PERMISSIVE, False),
        ("UNLICENSED", ["UNLICENSED"], True),
        ("SEE LICENSE IN EULA", ["SEE LICENSE IN EULA"], True),
        ("SEE LICENSE IN EULA", ["SEE LICENSE IN OTHER"], False),
        # a compound entry matches that same sub-expression
        ("MIT AND CC-BY-4.0", ["MIT AND CC-BY-4.0"], True),
        ("ISC OR (MIT AND CC-BY-4.0)", ["MIT AND CC-BY-4.0"], True),
        ("CC-BY-4.0", ["MIT AND CC-BY-4.0"], False),
        ("MIT", [], False),
    ],
)
def test_satisfies_allow_list(text: str, allowed: list[str], ok: bool) -> None:
    assert satisfies_allow_list(text, allowed) is ok
    assert satisfies_allow_list(parse_expression(text), iter(allowed)) is ok


def test_a_malformed_allow_list_entry_is_an_error() -> None:
    with pytest.raises(InvalidLicense):
        satisfies_allow_list("MIT", ["MIT", "Apache 2"])


# ------------------------------------------------------------------------ properties

_simple = st.builds(
    License,
    st.sampled_from(sorted(LICENSES)),
    st.booleans(),
    st.none() | st.sampled_from(sorted(EXCEPTIONS)),
)
_refs = st.from_regex(r"LicenseRef-[A-Za-z0-9.\-]{1,10}", fullmatch=True).map(License)


def _compounds(children: st.SearchStrategy[LicenseExpr]) -> st.SearchStrategy[LicenseExpr]:
    terms = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.builds(And, terms) | st.builds(Or, terms)


expressions = st.recursive(_simple | _refs, _compounds, max_leaves=12)
spdx_only = st.recursive(_simple, _compounds, max_leaves=12)


@given(expressions)
def test_printing_reparses_to_the_same_tree(expr: LicenseExpr) -> None:
    printed = str(expr)
    assert parse_expression(printed) == expr
    assert str(parse_expression(printed)) == printed


@given(spdx_only)
def test_spdx_ids_and_operators_are_case_insensitive(expr: LicenseExpr) -> None:
    assert parse_expression(str(expr).lower()) == expr
    assert parse_expression(str(expr).upper()) == expr


@given(expressions, st.lists(st.sampled_from(sorted(LICENSES)), max_size=6))
def test_policy_follows_the_operators(expr: LicenseExpr, allowed: list[str]) -> None:
    ok = satisfies_allow_list(expr, allowed)
    if isinstance(expr, Or):
        assert ok == any(satisfies_allow_list(term, allowed) for term in expr.terms)
    elif isinstance(expr, And):
        assert ok == all(satisfies_allow_list(term, allowed) for term in expr.terms)
    assert is_osi_approved(expr) == (
        any(map(is_osi_approved, expr.terms)) if isinstance(expr, Or)
        else all(map(is_osi_approved, expr.terms)) if isinstance(expr, And)
        else is_osi_approved(expr)
    )  # fmt: skip


@given(expressions, st.lists(st.sampled_from(sorted(LICENSES)), max_size=4), st.sampled_from(sorted(LICENSES)))
def test_allowing_more_never_refuses_more(expr: LicenseExpr, allowed: list[str], extra: str) -> None:
    if satisfies_allow_list(expr, allowed):
        assert satisfies_allow_list(expr, [*allowed, extra])


@given(expressions)
def test_an_expression_is_allowed_by_its_own_ids_and_by_itself(expr: LicenseExpr) -> None:
    assert satisfies_allow_list(expr, expr.ids())
    assert satisfies_allow_list(expr, [str(expr)])
