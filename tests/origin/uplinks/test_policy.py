"""The pull policy (uplinks/policy.py): data cases on a real packument, then properties on
random ones (hypothesis), then the policy's own checks."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eghact_common import semver
from eghact_common.durations import parse_duration
from eghact_origin.settings import OriginSettings
from eghact_origin.storage import SEVERITIES
from eghact_origin.uplinks.policy import ADVISORY, COOLDOWN, PullDecision, PullPolicy, published_at

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "policy_cases.json").read_text())


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def upstream(case: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads((DATA / CASES["packument"]).read_text())
    if "tags" in case:
        doc["dist-tags"] = case["tags"]
    for version in case.get("delete_times", ()):
        del doc["time"][version]
    if case.get("drop_time"):
        del doc["time"]
    return doc


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_real_packument_case(case: dict[str, Any]) -> None:
    policy = PullPolicy(min_age=parse_duration(case.get("min_age", "0")),
                        min_age_exempt=tuple(case.get("exempt", ())), block_severity=case.get("block"))
    doc = upstream(case)
    before = copy.deepcopy(doc)
    decision = policy.apply("uuid", doc, now=epoch(case["now"]), allowed=case.get("allowed", ()),
                            advisories=case.get("advisories", ()))
    assert doc == before, "the upstream document is not modified"
    assert decision.hidden == case["hidden"]
    assert decision.doc["dist-tags"] == case["dist-tags"]
    assert decision.reveal_at == (None if case["reveal_at"] is None else pytest.approx(epoch(case["reveal_at"])))
    assert set(decision.doc["versions"]) == set(doc["versions"]) - set(case["hidden"])
    if "time" in doc:
        assert set(decision.doc["time"]) == set(doc["time"]) - set(case["hidden"])
    # everything else of the packument is the upstream's, untouched
    assert {k: v for k, v in decision.doc.items() if k not in ("versions", "time", "dist-tags")} == \
        {k: v for k, v in doc.items() if k not in ("versions", "time", "dist-tags")}


def test_created_and_modified_stay_in_time() -> None:
    doc = upstream({})
    doc["time"].update(created="2019-01-01T00:00:00.000Z", modified="2026-10-10T00:30:19.000Z")
    decision = PullPolicy(min_age=86_400).apply("uuid", doc, now=epoch("2026-10-10T06:00:00Z"))
    assert decision.hidden == {"14.0.3": COOLDOWN}
    assert decision.doc["time"]["created"] == "2019-01-01T00:00:00.000Z"
    assert decision.doc["time"]["modified"] == "2026-10-10T00:30:19.000Z"


def test_everything_hidden_is_a_held_back_404_that_says_when() -> None:
    doc = upstream({})
    decision = PullPolicy(min_age=parse_duration("10000d")).apply("uuid", doc, now=epoch("2026-10-10T06:00:00Z"))
    assert decision.empty and decision.doc["versions"] == {}
    error = decision.held_back_error("uuid")
    assert (error.status, error.code) == (404, "versions_held_back")
    assert error.detail == {"name": "uuid", "hidden": {"cooldown": 8}, "visible_after": "2051-07-11T22:24:20.496Z"}
    some = PullPolicy(min_age=86_400).apply("uuid", doc, now=epoch("2026-10-10T06:00:00Z"))
    assert not some.empty and not PullPolicy().apply("uuid", {"name": "uuid", "versions": {}}, now=0).empty


def test_times_npm_writes_and_times_it_does_not() -> None:
    times = {"a": "2026-10-10T00:30:19.000Z", "b": "2026-10-10T00:30:19", "c": "yesterday", "d": 5}
    assert published_at(times, "a") == published_at(times, "b") == epoch("2026-10-10T00:30:19+00:00")
    assert published_at(times, "c") is None and published_at(times, "d") is None
    assert published_at(times, "e") is None and published_at(None, "a") is None


def test_the_policy_refuses_what_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="finite"):
        PullPolicy(min_age=-1)
    with pytest.raises(ValueError, match="finite"):
        PullPolicy(min_age=float("nan"))
    with pytest.raises(ValueError, match="severity"):
        PullPolicy(block_severity="severe")
    assert not PullPolicy().active and PullPolicy(block_severity="low").active and PullPolicy(min_age=1).active


def test_from_settings_takes_the_serve_flags(tmp_path: Path) -> None:
    settings = OriginSettings(data_dir=tmp_path, uplink_min_age=3600.0, uplink_min_age_exempt=("@types/*",),
                              uplink_block_severity="high")
    policy = PullPolicy.from_settings(settings)
    assert policy == PullPolicy(min_age=3600.0, min_age_exempt=("@types/*",), block_severity="high")
    assert policy.cools("left-pad") and not policy.cools("@types/node")
    assert PullPolicy.from_settings(OriginSettings(data_dir=tmp_path)) == PullPolicy()


def test_an_advisory_without_a_range_or_with_an_unknown_severity_blocks_nothing() -> None:
    doc = upstream({})
    advisories = [{"id": 1, "vulnerable_versions": "", "severity": "critical"},
                   {"id": 2, "vulnerable_versions": "*", "severity": "info"},
                   {"id": 3, "severity": "critical"}]
    assert PullPolicy(block_severity="low").apply("uuid", doc, now=0, advisories=advisories).hidden == {}


# -- properties ----------------------------------------------------------------------------

VERSIONS = ["0.9.0", "1.0.0-beta.1", "1.0.0-rc.1", "1.0.0", "1.1.0", "1.2.0-canary-ab12", "1.2.0-canary-0f9e",
            "1.2.0", "2.0.0-beta.0", "2.0.0", "2.0.1", "2.1.0-0", "3.0.0-alpha.1", "3.0.0"]
EPOCH = epoch("2026-01-01T00:00:00Z")
RANGES = ["*", "<1.1.0", ">=2.0.0", "1.2.0", "^1.0.0-0", ">=2.0.0-0 <3.0.0", "3.x", "not a range"]


@st.composite
def packuments(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(VERSIONS), unique=True, max_size=len(VERSIONS)))
    versions = {v: {"name": "p", "version": v, **({"deprecated": "no"} if draw(st.booleans()) and
                                                    draw(st.booleans()) else {})} for v in chosen}
    doc: dict[str, Any] = {"name": "p", "versions": versions}
    if draw(st.integers(0, 9)):  # now and then, no time at all
        offsets = st.one_of(st.none(), st.floats(min_value=0, max_value=400 * 86_400, allow_nan=False))
        time: dict[str, Any] = {"created": "2025-01-01T00:00:00.000Z", "modified": "2026-12-01T00:00:00.000Z"}
        for v in chosen:
            offset = draw(offsets)
            if offset is not None:
                time[v] = datetime.fromtimestamp(EPOCH + offset, UTC).isoformat()
        doc["time"] = time
    names = ["latest", "next", "beta", "lts", "canary"]
    targets = st.sampled_from(chosen) if chosen else st.sampled_from(["1.0.0"])
    doc["dist-tags"] = draw(st.dictionaries(st.sampled_from(names), targets, max_size=len(names)))
    return doc


policies = st.builds(
    PullPolicy,
    min_age=st.sampled_from([0.0, 60.0, 86_400.0, 30 * 86_400.0, 365 * 86_400.0]),
    min_age_exempt=st.sampled_from([(), ("q*",), ("p",)]),
    block_severity=st.sampled_from([None, *SEVERITIES]),
)
advisory_lists = st.lists(st.fixed_dictionaries({
    "id": st.integers(1, 99), "vulnerable_versions": st.sampled_from(RANGES),
    "severity": st.sampled_from([*SEVERITIES, "info"]), "title": st.just("t"), "url": st.just(""),
}), max_size=3)
moments = st.floats(min_value=EPOCH, max_value=EPOCH + 500 * 86_400, allow_nan=False)


def run(policy: PullPolicy, doc: dict[str, Any], now: float, allowed: list[str],
        advisories: list[dict[str, Any]]) -> PullDecision:
    before = copy.deepcopy(doc)
    decision = policy.apply("p", doc, now=now, allowed=allowed, advisories=advisories)
    assert doc == before
    return decision


@settings(max_examples=300, deadline=None)
@given(policies, packuments(), moments, st.lists(st.sampled_from(VERSIONS)), advisory_lists)
def test_views_partition_versions_and_tags_never_name_a_hidden_one(
        policy: PullPolicy, doc: dict[str, Any], now: float, allowed: list[str],
        advisories: list[dict[str, Any]]) -> None:
    decision = run(policy, doc, now, allowed, advisories)
    visible, hidden = set(decision.doc["versions"]), set(decision.hidden)
    assert visible | hidden == set(doc["versions"]) and not visible & hidden
    assert set(decision.hidden.values()) <= {COOLDOWN, ADVISORY}
    assert not hidden & set(allowed), "an allowed version is never hidden"
    tags = decision.doc["dist-tags"]
    assert not set(tags.values()) & hidden
    for tag, target in doc["dist-tags"].items():
        if target not in hidden:
            assert tags[tag] == target, "a tag on a visible version stays"
        elif tag in tags:
            moved = semver.parse(tags[tag])
            assert moved is not None and tags[tag] in visible
            if tag != "latest":  # the same line: release to release, prerelease to prerelease
                assert bool(moved.prerelease) == bool(semver.parse(target).prerelease)  # type: ignore[union-attr]
    assert set(tags) <= set(doc["dist-tags"]), "no tag is invented"
    if "latest" in doc["dist-tags"] and visible:
        assert "latest" in tags, "latest stays while anything is visible"
    if "time" in doc:
        assert set(decision.doc["time"]) == set(doc["time"]) - hidden
    if not policy.active:
        assert decision == PullDecision(doc)


@settings(max_examples=200, deadline=None)
@given(packuments(), moments, st.sampled_from([60.0, 86_400.0, 30 * 86_400.0]), st.floats(0, 400 * 86_400))
def test_a_longer_cooldown_hides_more_and_time_only_reveals(doc: dict[str, Any], now: float, age: float,
                                                              later: float) -> None:
    short, long = PullPolicy(min_age=age), PullPolicy(min_age=age * 2)
    assert set(run(short, doc, now, [], []).hidden) <= set(run(long, doc, now, [], []).hidden)
    assert set(run(short, doc, now + later, [], []).hidden) <= set(run(short, doc, now, [], []).hidden)
    assert run(PullPolicy(min_age=0), doc, now, [], []).hidden == {}


@settings(max_examples=200, deadline=None)
@given(packuments(), moments, st.sampled_from([60.0, 86_400.0, 30 * 86_400.0]))
def test_at_reveal_at_a_hidden_version_appears(doc: dict[str, Any], now: float, age: float) -> None:
    decision = run(PullPolicy(min_age=age), doc, now, [], [])
    if decision.reveal_at is None:
        # nothing hidden that time will reveal: every hidden version has no readable time
        assert all(published_at(doc.get("time"), v) is None for v in decision.hidden)
        return
    assert decision.reveal_at > now
    after = run(PullPolicy(min_age=age), doc, decision.reveal_at, [], [])
    assert set(after.hidden) < set(decision.hidden)
