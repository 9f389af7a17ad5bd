"""The top-level ``resolve``: strategies dispatched, prompt mode, guards, and what errors carry."""

from __future__ import annotations

import time

import pytest

from eghact_common.errors import Unresolvable
from eghact_origin.resolver import MemoryProvider, PromptResult, ResolvedGraph, ResolveRequest, resolve

from .helpers import check_invariants, universe


def _resolve(universe_name: str, body: dict) -> ResolvedGraph | PromptResult:
    return resolve(ResolveRequest.from_body(body), MemoryProvider(universe(universe_name)))


@pytest.mark.parametrize("duplicate", ["plugins", "dedupe-all", "isolate"])
def test_prompt_ignores_the_duplicate_strategy(duplicate: str) -> None:
    result = _resolve("basic", {"dependencies": {"left": "^1", "shared": ">=1.0.0"},
                                "strategy": {"version": "prompt", "duplicate": duplicate}})
    assert isinstance(result, PromptResult)
    assert result.choices == {"shared": ["1.3.0", "1.1.0", "1.0.0"]}
    assert result.considered == frozenset({"left", "shared"})


def test_prompt_explains_a_dead_end() -> None:
    with pytest.raises(Unresolvable) as raised:
        _resolve("basic", {"dependencies": {"left": "^1", "shared": "2.0.0"}, "strategy": {"version": "prompt"}})
    assert raised.value.message.endswith("no version of shared satisfies both 2.0.0 and ^1.0.0")
    assert raised.value.detail["considered"] == ["left", "shared"]


def test_prompt_follows_forced_versions_to_their_dependencies() -> None:
    result = _resolve("basic", {"dependencies": {"app-kit": "1.2.0"}, "strategy": {"version": "prompt"}})
    assert isinstance(result, PromptResult)
    # app-kit is forced; its ranges leave ui and util open
    assert result.choices == {"ui": ["1.3.0", "1.1.0"], "util": ["2.0.4", "2.0.0"]}


@pytest.mark.parametrize("duplicate", ["plugins", "dedupe-all", "isolate"])
def test_errors_name_what_was_considered(duplicate: str) -> None:
    with pytest.raises(Unresolvable) as raised:
        _resolve("basic", {"dependencies": {"chart": "^2", "core": "^9"}, "strategy": {"duplicate": duplicate}})
    assert {"chart", "core"} <= set(raised.value.detail["considered"])


def test_npm_layouts_that_never_settle_are_cut_short() -> None:
    started = time.perf_counter()
    with pytest.raises(Unresolvable) as raised:
        _resolve("tangle", {"dependencies": {"p1": "3.x"}, "strategy": {"duplicate": "isolate"}})
    assert "does not settle" in raised.value.message
    assert time.perf_counter() - started < 5
    graph = _resolve("tangle", {"dependencies": {"p1": "3.x"}, "strategy": {"duplicate": "dedupe-all"}})  # no loop
    assert isinstance(graph, ResolvedGraph)
    check_invariants(graph, dedupe=True)


@pytest.mark.parametrize("duplicate", ["plugins", "dedupe-all", "isolate"])
def test_specs_a_registry_cannot_serve_are_ignored_with_a_warning(duplicate: str) -> None:
    provider = MemoryProvider({
        "host": {"versions": {"1.0.0": {"dependencies": {"leaf": "^1.0.0", "from-git": "github:acme/x"}}}},
        "leaf": {"versions": {"1.0.0": {}}},
    })
    graph = resolve(ResolveRequest.from_body({"dependencies": {"host": "^1"}, "strategy": {"duplicate": duplicate}}),
                    provider)
    assert isinstance(graph, ResolvedGraph)
    assert {n.name for n in graph.nodes.values()} == {"host", "leaf"}
    assert [w["code"] for w in graph.warnings] == ["unsupported_spec"]
    assert "from-git" not in provider.loads
