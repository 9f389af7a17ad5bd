"""The seed universe: deterministic, npm-valid, and shaped like a real plugin ecosystem."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import statistics
import tarfile
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eghact_common import semver
from eghact_common.capabilities import parse_capability
from eghact_common.manifest import Manifest
from eghact_common.names import check_name
from eghact_common.spdx import is_osi_approved
from eghact_origin.seeding import universe
from eghact_origin.seeding.universe import PlannedPackage, SeedPackage, UniversePlan
from eghact_origin.tarball import inspect_tarball

N = 300
SEED = 20240102
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z")
DEP_MAPS = ("dependencies", "optionalDependencies", "peerDependencies")


@pytest.fixture(scope="module")
def plan() -> UniversePlan:
    return universe.plan_universe(N, SEED)


@pytest.fixture(scope="module")
def built(plan: UniversePlan) -> list[SeedPackage]:
    return list(universe.iter_packages(plan))


def _digest(packages: list[SeedPackage]) -> str:
    h = hashlib.sha256()
    for p in packages:
        h.update(json.dumps([p.name, p.dist_tags], sort_keys=True).encode())
        for v in p.versions:
            h.update(json.dumps([v.manifest, v.published, v.deprecated], sort_keys=True).encode())
            h.update(hashlib.sha256(v.tarball).digest())
    return h.hexdigest()


def _highest_release(versions: list[str]) -> str:
    return semver.rsort([v for v in versions if "-" not in v])[0]


def _release_graph_latest(plan: UniversePlan) -> dict[str, set[str]]:
    """name -> names its latest version depends on (all three dependency maps)."""
    graph = {}
    for p in plan.packages:
        latest = next(v for v in p.versions if v.version == dict(p.dist_tags)["latest"])
        m = p.manifest(latest)
        graph[p.name] = {d for key in DEP_MAPS for d in m.get(key, {})}
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Components of size > 1 (iterative Tarjan, so a long chain cannot overflow the stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


# ---- determinism -------------------------------------------------------------------------------------
def test_same_inputs_give_identical_bytes() -> None:
    first = _digest(list(universe.iter_packages(universe.plan_universe(120, 7))))
    again = _digest(list(universe.iter_packages(universe.plan_universe(120, 7))))
    other = _digest(list(universe.iter_packages(universe.plan_universe(120, 8))))
    assert first == again
    assert first != other


def test_worker_pool_gives_the_same_output_in_the_same_order() -> None:
    plan = universe.plan_universe(60, 3)
    serial = list(universe.iter_packages(plan))
    pooled = list(universe.iter_packages(plan, workers=2))
    assert [p.name for p in pooled] == [p.name for p in plan.packages]
    assert _digest(pooled) == _digest(serial)


def test_plan_rejects_an_empty_universe() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        universe.plan_universe(0, 1)


def test_tiny_universes_are_well_formed() -> None:
    for n in (1, 2, 5):
        plan = universe.plan_universe(n, 1)
        assert len(plan.packages) == n
        assert all(p.versions for p in plan.packages)


# ---- names, kinds, licences, manifests ---------------------------------------------------------------
def test_names_are_unique_valid_and_mixed(plan: UniversePlan) -> None:
    names = [p.name for p in plan.packages]
    assert len(set(names)) == len(names)
    assert [n for n in names if check_name(n)] == []
    scoped = [n for n in names if n.startswith("@")]
    assert 0.15 * N < len(scoped) < 0.5 * N
    assert any(n.startswith("@eghact/") for n in scoped)
    assert len({n.split("/")[0] for n in scoped}) >= 4


def test_all_plugin_types_and_libraries_are_present(plan: UniversePlan) -> None:
    kinds = Counter(p.kind for p in plan.packages)
    assert set(kinds) == {"library", *universe.PLUGIN_KINDS}
    assert 0.2 < kinds["library"] / N < 0.3


def test_licences_mix_osi_and_non_osi(plan: UniversePlan) -> None:
    licences = Counter(p.versions[-1].license for p in plan.packages)
    osi = sum(count for licence, count in licences.items() if is_osi_approved(licence))
    assert osi / N > 0.8
    assert {"MIT", "ISC", "Apache-2.0", "BSD-3-Clause", "MIT OR Apache-2.0", "GPL-3.0-only"} <= set(licences)
    assert {"SSPL-1.0", "BUSL-1.1", "CC-BY-NC-4.0"} & set(licences)
    assert not any(is_osi_approved(licence) for licence in universe.NON_OSI)


def test_every_manifest_validates(plan: UniversePlan) -> None:
    for p in plan.packages:
        for v in p.versions:
            m = p.manifest(v)
            parsed = Manifest.from_package_json(m)
            assert parsed.type == p.kind
            assert ("eghact" in m) == (p.kind != "library")
            assert all(m[key] for key in DEP_MAPS if key in m), "empty dependency maps are omitted"


def test_capabilities_come_from_the_vocabulary_and_suit_the_type(plan: UniversePlan) -> None:
    seen = set()
    for p in plan.packages:
        if p.kind == "library":
            continue
        for v in p.versions:
            assert v.required, f"{p.name}@{v.version} requires nothing"
            assert not set(v.required) & set(v.optional)
            for cap in (*v.required, *v.optional):
                parse_capability(cap)
                seen.add((p.kind, cap))
    assert any(cap.startswith("network:fetch:") for _, cap in seen)
    assert any(cap.startswith("api:") for _, cap in seen)
    assert ("transformer", "filesystem:read") in seen
    assert not any(kind == "theme" and cap.startswith("filesystem") for kind, cap in seen)


def test_framework_ranges_are_semver_ranges(plan: UniversePlan) -> None:
    ranges = {v.framework for p in plan.packages for v in p.versions if v.framework is not None}
    assert all(v.framework is None for p in plan.packages for v in p.versions if p.kind == "library")
    assert all(semver.valid_range(r) for r in ranges)
    assert {"^1.0.0", "^2.0.0", ">=2.1.0 <4.0.0"} <= ranges


# ---- histories ---------------------------------------------------------------------------------------
def test_histories_are_semver_in_publish_order(plan: UniversePlan) -> None:
    tags: Counter[str] = Counter()
    for p in plan.packages:
        versions = [v.version for v in p.versions]
        assert len(set(versions)) == len(versions)
        assert all(semver.valid(v) == v for v in versions)
        times = [v.published for v in p.versions]
        assert all(ISO.fullmatch(t) for t in times)
        assert times == sorted(times) and len(set(times)) == len(times)
        for v in versions:
            tags.update(re.findall(r"-(alpha|beta|rc)\.\d+$", v))
        assert len({semver.Version(v).major for v in versions}) <= 12, "majors stay rare, even for giants"
    assert {"alpha", "beta", "rc"} <= set(tags)


def _assert_unique(plan: UniversePlan) -> None:
    """What seeding refuses: a name twice, or a version twice in one package."""
    names = [p.name for p in plan.packages]
    assert len(set(names)) == len(names)
    for p in plan.packages:
        versions = [v.version for v in p.versions]
        assert len(set(versions)) == len(versions), (p.name, versions)
        assert {v for _, v in p.dist_tags} <= set(versions)


@settings(max_examples=150, deadline=None)
@given(plugins=st.integers(1, 120), seed=st.integers(0, 2**32))
@example(plugins=48, seed=53567939)   # the cause of seed 7's failure at 10,000, found at small scale
def test_every_seed_plans_a_universe_that_seeds(plugins: int, seed: int) -> None:
    _assert_unique(universe.plan_universe(plugins, seed))


def test_seed_7_at_ten_thousand_plugins_plans_no_version_twice() -> None:
    """``eghact-origin seed --plugins 10000 --seed 7`` failed: solid-whiteboard's "next" tail
    (1.0.0-beta.1, 1.0.0-rc.1) was followed by a major whose series began at beta.1 again."""
    plan = universe.plan_universe(10_000, 7)
    _assert_unique(plan)
    whiteboard = next(p for p in plan.packages if p.name == "solid-whiteboard")
    assert [v.version for v in whiteboard.versions][3:] == ["1.0.0-beta.1", "1.0.0-rc.1", "1.0.0"]


def test_latest_is_the_highest_release_and_next_a_newer_prerelease(plan: UniversePlan) -> None:
    with_next = 0
    for p in plan.packages:
        tags = dict(p.dist_tags)
        versions = [v.version for v in p.versions]
        assert tags["latest"] == _highest_release(versions)
        if "next" in tags:
            with_next += 1
            assert "-" in tags["next"]
            assert semver.gt(tags["next"], tags["latest"])
    assert with_next > 0


def test_version_counts_follow_a_power_law(plan: UniversePlan) -> None:
    counts = sorted(len(p.versions) for p in plan.packages)
    assert counts[-1] >= 200
    assert counts[-1] >= 50 * statistics.median(counts)
    assert sum(c <= 10 for c in counts) / N > 0.8


@pytest.mark.slow
def test_ten_thousand_plugins_have_multi_thousand_version_giants() -> None:
    plan = universe.plan_universe(10_000, 1)
    counts = sorted((len(p.versions) for p in plan.packages), reverse=True)
    assert sum(c >= 2000 for c in counts) >= 3
    assert 20_000 < plan.version_count < 100_000
    assert 3 <= len(plan.cycles) <= 5
    giant = max(plan.packages, key=lambda p: len(p.versions))
    assert sum(len(json.dumps(giant.manifest(v))) for v in giant.versions) > 1_000_000


# ---- dependencies ------------------------------------------------------------------------------------
def test_every_range_is_satisfied_by_an_earlier_version_of_its_target(plan: UniversePlan) -> None:
    by_name = {p.name: p for p in plan.packages}
    forms: Counter[str] = Counter()
    for p in plan.packages:
        for v in p.versions:
            m = p.manifest(v)
            for key in DEP_MAPS:
                for target, spec in m.get(key, {}).items():
                    earlier = [u.version for u in by_name[target].versions if u.published < v.published]
                    assert semver.max_satisfying(earlier, spec), f"{p.name}@{v.version} -> {target}@{spec}"
                    forms[_form(spec)] += 1
    assert set(forms) == {"caret", "tilde", "x", "exact", "gte-lt"}


def _form(spec: str) -> str:
    if spec.startswith("^"):
        return "caret"
    if spec.startswith("~"):
        return "tilde"
    if spec.startswith(">="):
        return "gte-lt"
    return "x" if "x" in spec else "exact"


def test_dependency_kinds_are_all_used(plan: UniversePlan) -> None:
    used: Counter[str] = Counter()
    for p in plan.packages:
        m = p.manifest(p.versions[-1])
        used.update(key for key in (*DEP_MAPS, "peerDependenciesMeta") if key in m)
        for name, meta in m.get("peerDependenciesMeta", {}).items():
            assert meta == {"optional": True} and name in m["peerDependencies"]
    assert used["dependencies"] > N / 2
    assert used["optionalDependencies"] and used["peerDependencies"] and used["peerDependenciesMeta"]


def test_dependencies_point_back_in_time_except_in_the_planned_cycles(plan: UniversePlan) -> None:
    order = {p.name: i for i, p in enumerate(plan.packages)}
    ring_edges = {(ring[i], ring[(i + 1) % len(ring)]) for ring in plan.cycles for i in range(len(ring))}
    for p in plan.packages:
        for v in p.versions:
            for target, _ in (*v.dependencies, *v.optional_dependencies, *v.peer_dependencies):
                assert order[target] < order[p.name] or (p.name, target) in ring_edges


def test_planned_cycles_are_real_cycles_between_latest_versions(plan: UniversePlan) -> None:
    assert plan.cycles
    by_name = {p.name: p for p in plan.packages}
    graph = _release_graph_latest(plan)
    for ring in plan.cycles:
        for i, name in enumerate(ring):
            target = by_name[ring[(i + 1) % len(ring)]]
            assert target.name in graph[name]
            latest = next(v for v in by_name[name].versions if v.version == dict(by_name[name].dist_tags)["latest"])
            spec = dict(latest.dependencies)[target.name]
            assert semver.satisfies(dict(target.dist_tags)["latest"], spec)
    components = _strongly_connected(graph)
    assert all(any(set(ring) <= c for c in components) for ring in plan.cycles)
    assert len(components) == len(plan.cycles)


def test_popular_packages_attract_most_dependents(plan: UniversePlan) -> None:
    dependents: Counter[str] = Counter()
    for p in plan.packages:
        for target in {t for v in p.versions for t, _ in v.dependencies}:
            dependents[target] += 1
    top = sum(count for _, count in dependents.most_common(N // 20))
    assert top > 0.3 * sum(dependents.values())
    downloads = sorted((p.weekly_downloads for p in plan.packages), reverse=True)
    assert downloads[0] > 20 * statistics.median(downloads)


# ---- advisories and deprecations ---------------------------------------------------------------------
def test_advisories_are_well_formed_and_hit_real_versions(plan: UniversePlan) -> None:
    found = universe.advisories(plan)
    assert found
    by_name = {p.name: p for p in plan.packages}
    bands = {"low": (0.1, 3.9), "moderate": (4.0, 6.9), "high": (7.0, 8.9), "critical": (9.0, 10.0)}
    urls = [a.url for a in found]
    assert len(set(urls)) == len(urls)
    for a in found:
        assert re.fullmatch(r"https://advisories\.eghact\.dev/EGH-\d{4}-\d{4}", a.url)
        low, high = bands[a.severity]
        assert low <= a.cvss <= high
        assert a.cwe and all(re.fullmatch(r"CWE-\d+", c) for c in a.cwe)
        assert a.title and a.name in a.title
        assert any(semver.satisfies(v.version, a.vulnerable_versions) for v in by_name[a.name].versions)


def test_deprecations_cover_versions_and_whole_packages(plan: UniversePlan) -> None:
    some = [p for p in plan.packages if any(v.deprecated for v in p.versions)]
    whole = [p for p in some if all(v.deprecated for v in p.versions)]
    assert whole and len(some) > len(whole)
    assert all(isinstance(v.deprecated, str) and v.deprecated for p in some for v in p.versions if v.deprecated)


# ---- tarballs ----------------------------------------------------------------------------------------
def _members(tarball: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tarball))) as tar:
        return {m.name: (m, tar.extractfile(m).read()) for m in tar.getmembers()}  # type: ignore[union-attr]


def test_tarballs_are_npm_style_and_hold_the_manifest(plan: UniversePlan, built: list[SeedPackage]) -> None:
    assert [p.name for p in built] == [p.name for p in plan.packages]
    readmes = 0
    for planned, package in zip(plan.packages, built, strict=True):
        assert package.dist_tags == dict(planned.dist_tags)
        assert [v.manifest["version"] for v in package.versions] == [v.version for v in planned.versions]
        for version in package.versions[:3]:
            assert version.tarball[:2] == b"\x1f\x8b" and version.tarball[4:8] == b"\0\0\0\0"  # gzip mtime 0
            members = _members(version.tarball)
            assert json.loads(members["package/package.json"][1]) == version.manifest
            assert "package/dist/index.js" in members
            for path in version.manifest.get("eghact", {}).get("exports", {}).values():
                assert f"package/{path}" in members
            readmes += "package/README.md" in members
            for info, _ in members.values():
                assert (info.mode, info.uid, info.gid, info.uname, info.mtime) == (0o644, 0, 0, "", 499162500)
            facts = inspect_tarball(version.tarball, name=package.name, version=version.manifest["version"])
            assert facts.package_json == version.manifest
    assert readmes > 0


def test_code_sizes_are_log_normal_and_compress_like_javascript(built: list[SeedPackage]) -> None:
    sizes, raw, packed = [], 0, 0
    for package in built:
        for version in package.versions[:2]:
            code = _members(version.tarball)["package/dist/index.js"][1]
            sizes.append(len(code))
            raw += len(code)
            packed += len(gzip.compress(code))
            assert b"function " in code or b"class " in code or b"const " in code
    assert 4 * 1024 < statistics.median(sizes) < 16 * 1024
    assert max(sizes) > 8 * statistics.median(sizes)
    assert max(sizes) <= 512 * 1024 + 4096
    assert 2.5 < raw / packed < 5.5


def test_planned_package_is_cheap_and_picklable(plan: UniversePlan) -> None:
    import pickle

    package: PlannedPackage = max(plan.packages, key=lambda p: len(p.versions))
    assert pickle.loads(pickle.dumps(package)) == package
