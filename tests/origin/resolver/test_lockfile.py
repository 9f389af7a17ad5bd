"""eghact-lock.json: its content, its exact bytes, and reading it back."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings

from eghact_common.errors import BadRequest
from eghact_origin.resolver.graph import Edge, ResolvedGraph
from eghact_origin.resolver.loadplan import build_load_plan
from eghact_origin.resolver.lockfile import InvalidLockfile, build_lockfile, lockfile_bytes, read_lockfile
from eghact_origin.resolver.tarjan import cycles

from .test_loadplan import graph_of, key, node, plan_inputs

REQUEST = {"strategy": {"version": "highest", "duplicate": "dedupe"}, "dependencies": {"shop": "^1", "blog": "^2"},
           "eager": ["shop"]}


def sample_graph() -> ResolvedGraph:
    nodes = {
        key("shop"): node("shop", "component", dependencies={"zod": "^3", "cart": "~1.2"},
                          capabilities=("storage:local", "network:fetch"), disabled_capabilities=("camera",)),
        key("cart"): node("cart", "component", dependencies={"shop": "^1"}, license=None, peer=True,
                          deprecated="use basket", advisories=({"title": "XSS", "id": 7, "severity": "high"},)),
        key("zod"): node("zod", optional=True),
        key("blog"): node("blog", "component", dependencies={"zod": "^3"}),
    }
    edges = (Edge("", key("shop"), "prod", "^1"), Edge("", key("blog"), "prod", "^2"),
             Edge(key("shop"), key("zod"), "prod", "^3"), Edge(key("shop"), key("cart"), "prod", "~1.2"),
             Edge(key("cart"), key("shop"), "peer", "^1"), Edge(key("blog"), key("zod"), "optional", "^3"))
    return ResolvedGraph(roots={"shop": key("shop"), "blog": key("blog")}, nodes=nodes, edges=edges,
                         warnings=({"message": "zod is optional", "code": "optional_missing"},))


def lock_of(graph: ResolvedGraph, request: dict[str, Any] = REQUEST) -> dict[str, Any]:
    plan = build_load_plan(graph, eager=request.get("eager", []))
    return build_lockfile(graph, request=request, request_hash="f" * 64, registry="https://registry.test",
                          load_plan=plan, cycles=cycles(graph))


def test_the_lockfile_content() -> None:
    graph = sample_graph()
    lock = lock_of(graph)
    assert list(lock) == ["lockfileVersion", "request", "hash", "registry", "packages", "cycles", "warnings",
                          "loadPlan"]
    assert lock["lockfileVersion"] == 1 and lock["hash"] == "f" * 64 and lock["registry"] == "https://registry.test"
    assert json.dumps(lock["request"]) == json.dumps(REQUEST, sort_keys=True)
    assert list(lock["packages"]) == [key("blog"), key("cart"), key("shop"), key("zod")]
    assert lock["packages"][key("shop")] == {
        "name": "shop", "version": "1.0.0", "resolved": "https://registry.test/shop/-/shop-1.0.0.tgz",
        "integrity": graph.nodes[key("shop")].integrity, "dependencies": {"cart": "~1.2", "zod": "^3"},
        "capabilities": ["network:fetch", "storage:local"], "disabledCapabilities": ["camera"],
        "license": "MIT", "type": "component", "advisories": [],
    }
    assert list(lock["packages"][key("shop")]["dependencies"]) == ["cart", "zod"]
    cart = lock["packages"][key("cart")]
    assert list(cart) == ["name", "version", "resolved", "integrity", "dependencies", "capabilities", "license",
                          "type", "peer", "deprecated", "advisories"]
    assert cart["license"] is None and cart["peer"] is True and cart["deprecated"] == "use basket"
    assert list(cart["advisories"][0]) == ["id", "severity", "title"]
    assert lock["packages"][key("zod")]["optional"] is True
    assert "optional" not in cart and "peer" not in lock["packages"][key("zod")]
    assert lock["cycles"] == [[key("cart"), key("shop")]]
    assert lock["warnings"] == [{"code": "optional_missing", "message": "zod is optional"}]
    assert [c["id"] for c in lock["loadPlan"]["chunks"]] == ["eager", "lazy:blog"]


def test_the_lockfile_shares_nothing_with_its_inputs() -> None:
    request: dict[str, Any] = {"dependencies": {"shop": "^1"}, "eager": []}
    lock = lock_of(sample_graph(), request)
    request["dependencies"]["shop"] = "^9"
    assert lock["request"]["dependencies"] == {"shop": "^1"}


def test_values_json_cannot_carry_fail_when_building() -> None:
    with pytest.raises(ValueError):
        lock_of(sample_graph(), {"dependencies": {}, "weight": float("nan")})
    with pytest.raises(TypeError):
        lock_of(sample_graph(), {"dependencies": {}, "names": {"a", "b"}})


def test_the_bytes() -> None:
    data = lockfile_bytes(lock_of(sample_graph()))
    assert data.endswith(b"}\n") and not data.endswith(b"\n\n")
    assert data.startswith(b'{\n  "lockfileVersion": 1,\n  "request": {\n    "dependencies": {')
    assert b"\t" not in data
    assert lockfile_bytes(read_lockfile(data)) == data


def test_non_ascii_text_is_written_as_utf8() -> None:
    graph = sample_graph()
    shop = graph.nodes[key("shop")]
    nodes = {**graph.nodes, key("shop"): node("shop", "component", deprecated="ersetzt durch Warenkorb ☂",
                                                dependencies=shop.dependencies)}
    data = lockfile_bytes(lock_of(ResolvedGraph(roots=graph.roots, nodes=nodes, edges=graph.edges)))
    assert "Warenkorb ☂".encode() in data
    assert read_lockfile(data)["packages"][key("shop")]["deprecated"] == "ersetzt durch Warenkorb ☂"


def test_equal_resolutions_give_equal_bytes_whatever_the_input_order() -> None:
    graph = sample_graph()
    rnd = random.Random(7)
    for _ in range(20):
        nodes = list(graph.nodes.items())
        edges = list(graph.edges)
        rnd.shuffle(nodes)
        rnd.shuffle(edges)
        swapped = {k: node(n.name, n.type, n.size, dependencies=dict(reversed(n.dependencies.items())),
                           capabilities=tuple(reversed(n.capabilities)), license=n.license,
                           disabled_capabilities=n.disabled_capabilities, optional=n.optional, peer=n.peer,
                           deprecated=n.deprecated, advisories=n.advisories) for k, n in nodes}
        again = ResolvedGraph(roots=dict(reversed(graph.roots.items())), nodes=swapped, edges=tuple(edges),
                              warnings=graph.warnings)
        request = {"eager": ["shop"], "dependencies": {"blog": "^2", "shop": "^1"},
                   "strategy": {"duplicate": "dedupe", "version": "highest"}}
        assert lockfile_bytes(lock_of(again, request)) == lockfile_bytes(lock_of(graph))


@settings(max_examples=150, deadline=None)
@given(plan_inputs())
def test_random_resolutions_round_trip(case: tuple[ResolvedGraph, list[str]]) -> None:
    graph, eager = case
    lock = lock_of(graph, {"dependencies": {name: "^1.0.0" for name in graph.roots}, "eager": eager})
    data = lockfile_bytes(lock)
    assert read_lockfile(data) == lock
    assert lockfile_bytes(read_lockfile(data)) == data
    assert lockfile_bytes(json.loads(json.dumps(lock))) == data


# ---- reading ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "problem"), [
    (b"\xff\xfe{}", "not UTF-8 JSON"),
    (b'{"lockfileVersion": 1,', "not UTF-8 JSON"),
    (b"[]", "expected a JSON object, got an array"),
])
def test_unreadable_bytes(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidLockfile) as caught:
        read_lockfile(data)
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(problem)


def test_every_problem_is_reported_at_once() -> None:
    lock = lock_of(sample_graph())
    shop = lock["packages"][key("shop")]
    del shop["version"]
    shop["dependencies"]["zod"] = 3
    shop["capabilities"] = ["ok", 1]
    lock["packages"][key("zod")]["optional"] = False
    lock["lockfileVersion"] = True
    lock["hash"] = None
    lock["cycles"].append([key("ghost")])
    lock["cycles"].append("x")
    lock["warnings"] = [1]
    eager, blog = lock["loadPlan"]["chunks"]
    eager["plugins"].append(key("blog"))          # blog is also in lazy:blog
    blog["requires"] = ["lazy:nowhere"]
    blog["mode"] = "sometimes"
    blog["bytes"] = -1
    lock["loadPlan"]["prefetch"] = {"lazy:blog": ["lazy:gone"]}
    with pytest.raises(InvalidLockfile) as caught:
        read_lockfile(lockfile_bytes(lock))
    error = caught.value
    assert error.problems == [
        "lockfileVersion: expected 1, got True",
        "hash: expected a string, got null",
        "packages[\"node_modules/shop\"].version: missing",
        "packages[\"node_modules/shop\"].dependencies['zod']: expected a string, got an integer",
        "packages[\"node_modules/shop\"].capabilities[1]: expected a string, got an integer",
        "packages[\"node_modules/zod\"]: optional and peer appear only when true",
        "cycles[1]: 'node_modules/ghost' is not in packages",
        "cycles[2]: expected an array, got a string",
        "warnings[0]: expected an object, got an integer",
        "loadPlan.chunks['lazy:blog'].mode: expected 'eager' or 'lazy', got 'sometimes'",
        "loadPlan.chunks['lazy:blog'].bytes: negative",
        "loadPlan.chunks['lazy:blog'].plugins: 'node_modules/blog' is already in chunk 'eager'",
        "loadPlan.chunks['lazy:blog'].requires: 'lazy:nowhere' is not a chunk listed before it",
        "loadPlan.prefetch['lazy:blog']: 'lazy:gone' is not a chunk of the plan",
    ]
    assert isinstance(error, ValueError) and isinstance(error, BadRequest)
    assert error.status == 400 and error.to_body()["detail"]["problems"] == error.problems


def test_missing_sections_and_wrong_types() -> None:
    with pytest.raises(InvalidLockfile) as caught:
        read_lockfile(b'{"lockfileVersion": 1, "packages": {"a": 3}, "loadPlan": {"chunks": [{"id": 1}, "x"]}}')
    assert caught.value.problems == [
        "request: missing",
        "hash: missing",
        "registry: missing",
        'packages["a"]: expected an object, got an integer',
        "cycles: missing",
        "warnings: missing",
        "loadPlan.prefetch: missing",
        "loadPlan.chunks[0].id: expected a string, got an integer",
        "loadPlan.chunks[0].plugins: missing",
        "loadPlan.chunks[0].mode: missing",
        "loadPlan.chunks[0].requires: missing",
        "loadPlan.chunks[0].bytes: missing",
        "loadPlan.chunks[1]: expected an object, got a string",
    ]


def test_a_chunk_listed_twice_and_values_of_the_wrong_type() -> None:
    lock = lock_of(sample_graph())
    lock["loadPlan"]["chunks"][1]["id"] = "eager"
    lock["loadPlan"]["chunks"][1]["bytes"] = 1.5
    lock["loadPlan"]["chunks"][0]["bytes"] = True
    lock["loadPlan"]["prefetch"] = {"lazy:blog": "eager"}
    with pytest.raises(InvalidLockfile) as caught:
        read_lockfile(lockfile_bytes(lock))
    assert caught.value.problems == [
        "loadPlan.chunks[0].bytes: expected an integer, got a boolean",
        "loadPlan.chunks[1].bytes: expected an integer, got a number",
        "loadPlan.chunks['eager']: listed twice",
        "loadPlan.prefetch['lazy:blog']: expected an array, got a string",
    ]


def test_unknown_fields_are_allowed() -> None:
    lock = lock_of(graph_of("app>lib", ["app"]), {"dependencies": {"app": "^1"}})
    lock["generator"] = "eghact-cdn 9"
    lock["packages"][key("lib")]["funding"] = "https://example.test"
    assert read_lockfile(lockfile_bytes(lock)) == lock
