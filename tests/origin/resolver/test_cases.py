"""Data-driven cases: JSON universes (``data/universes``) and cases with the expected pins,
trees, warnings and errors (``data/cases``), as resolvelib's functional tests do.

The isolate trees were checked against ``npm install --package-lock-only`` (npm 11), with
``--force`` where npm stops at ERESOLVE (peer=warn behaves like --force); cases with a policy
have no npm counterpart. A case's ``dedupe`` answer is ``duplicate=dedupe-all``'s. Where a
case has no ``plugins`` answer, the default strategy must lay out its ``isolate`` tree: with
no plugin whose requirers disagree, it is npm's layout.
"""

from __future__ import annotations

from typing import Any

import pytest

from eghact_common.errors import Unresolvable
from eghact_origin.resolver import MemoryProvider, PromptResult, ResolvedGraph, ResolveRequest, resolve

from .helpers import case, case_names, check_invariants, universe

STRATEGIES = ("dedupe", "isolate", "plugins", "prompt")
PARAMS = [pytest.param(name, strategy, id=f"{name}-{strategy}")
          for name in case_names() for strategy in STRATEGIES
          if strategy in case(name) or (strategy == "plugins" and "isolate" in case(name))]


def test_there_are_enough_cases() -> None:
    assert len(case_names()) >= 15


def _request(data: dict[str, Any], strategy: str) -> ResolveRequest:
    body = dict(data["request"])
    if strategy != "prompt":
        duplicate = "dedupe-all" if strategy == "dedupe" else strategy
        body["strategy"] = {**body.get("strategy", {}), "duplicate": duplicate}
    return ResolveRequest.from_body(body)


@pytest.mark.parametrize(("name", "strategy"), PARAMS)
def test_case(name: str, strategy: str) -> None:
    data = case(name)
    expected = data[strategy] if strategy in data else data["isolate"]
    provider = MemoryProvider(universe(data["universe"]))
    request = _request(data, strategy)
    if "error" in expected:
        with pytest.raises(Unresolvable) as raised:
            resolve(request, provider)
        _check_error(raised.value, expected["error"])
        return
    result = resolve(request, provider)
    if strategy == "prompt":
        assert isinstance(result, PromptResult)
        assert result.choices == expected["choices"]
        return
    assert isinstance(result, ResolvedGraph)
    check_invariants(result, dedupe=strategy == "dedupe", plugins=strategy == "plugins")
    if "pins" in expected:
        assert {n.name: n.version for n in result.nodes.values()} == expected["pins"]
    if "tree" in expected:
        assert {key: n.version for key, n in result.nodes.items()} == expected["tree"]
    assert sorted(w["code"] for w in result.warnings) == sorted(expected.get("warnings", []))
    edges = {(e.source, e.target, e.kind, e.range) for e in result.edges}
    for edge in expected.get("edges", []):
        assert tuple(edge) in edges
    for key, attributes in expected.get("nodes", {}).items():
        node = result.nodes[key]
        for attribute, value in attributes.items():
            actual = getattr(node, attribute)
            if attribute == "advisories":
                actual = [a["id"] for a in actual]
            elif isinstance(actual, tuple):
                actual = list(actual)
            assert actual == value, f"{key}.{attribute}"
    assert all(isinstance(w.get("message"), str) and w["message"] for w in result.warnings)


def _check_error(error: Unresolvable, expected: dict[str, Any]) -> None:
    assert error.code == expected["code"]
    assert error.status == 422
    if "message" in expected:
        assert error.message == expected["message"]
    for text in expected.get("contains", []):
        assert text in error.message
    conflict = error.detail["conflict"]
    assert conflict["package"] == expected["package"]
    assert conflict.get("plugin", False) == expected.get("plugin", False)
    if "requirements" in expected:
        assert conflict["requirements"] == expected["requirements"]
    if "excluded" in expected:
        assert error.detail["excluded"] == expected["excluded"]
    assert error.detail["because"]
    assert isinstance(error.detail["considered"], list)
