"""Policy verdicts with their reasons, and how explanations are worded."""

from __future__ import annotations

from eghact_origin.resolver import ResolveRequest, package_info_from_packument
from eghact_origin.resolver.explain import ROOT, Fact, Requirement, Step, from_facts, label, unresolvable
from eghact_origin.resolver.policy import Exclusion, Policy


def _package(**versions: dict) -> object:
    return package_info_from_packument(
        {"name": "pkg", "versions": {v: {"name": "pkg", "version": v, **body} for v, body in versions.items()}},
        [{"id": "GHSA-x", "vulnerable_versions": "<1.0.0", "severity": "low", "title": "old", "url": "u"}],
    )


def _policy(**body: object) -> Policy:
    return Policy(ResolveRequest.from_body({"dependencies": {}, **body}))


def test_each_rule_gives_a_reason() -> None:
    package = _package(**{
        "0.9.0-rc.1": {"license": "MIT"},
        "1.0.0": {"license": "GPL-3.0-only"},
        "1.1.0": {"license": "MIT", "eghact": {"version": "^3.0.0", "type": "theme"}},
        "1.2.0": {"license": "MIT", "eghact": {"version": "^2.0.0", "type": "component",
                                               "capabilities": {"required": ["process:spawn"]}}},
        "1.3.0": {"license": "not a licence"},
        "1.4.0": {},
        "1.5.0": {"license": "MIT"},
    })
    policy = _policy(strategy={"security": "strict"}, framework="2.1.0",
                     policy={"capabilities": {"deny": ["process:*"]}, "licenses": {"allow": ["MIT"]}})
    allowed = policy.allowed(package)
    assert [v.version for i, v in enumerate(package.ordered) if allowed >> i & 1] == ["1.5.0"]
    reasons = {e.version: e.reason for e in policy.excluded("pkg")}
    assert reasons == {
        "0.9.0-rc.1": "vulnerable: GHSA-x (low) old",
        "1.0.0": "licence GPL-3.0-only is not in the allow-list",
        "1.1.0": "needs Eghact ^3.0.0, the target is 2.1.0",
        "1.2.0": "requires capability process:spawn (denied)",
        "1.3.0": "licence 'not a licence' is not a valid SPDX expression",
        "1.4.0": "no licence (a licence allow-list is in force)",
    }
    assert str(policy.excluded("pkg")[1]) == "pkg 1.0.0 excluded: licence GPL-3.0-only is not in the allow-list"


def test_optional_capabilities_are_switched_off_not_excluded() -> None:
    package = _package(**{"1.0.0": {"eghact": {"version": "^2.0.0", "type": "component", "capabilities": {
        "required": ["dom:read"], "optional": ["network:fetch", "network:fetch:cdn.example.com", "gpu:compute"]}}}})
    policy = _policy(policy={"capabilities": {"deny": ["network:fetch:*.example.com"],
                                              "allow": ["dom:*", "network:*"]}})
    assert policy.allowed(package) == 1
    enabled, disabled = policy.capabilities(package.ordered[0])
    # the unrestricted fetch reaches the denied hosts too: a deny-list uses overlap
    assert disabled == ("network:fetch", "network:fetch:cdn.example.com", "gpu:compute")
    assert enabled == ("dom:read",)


def test_audit_reports_and_permissive_ignores() -> None:
    package = _package(**{"0.5.0": {}})
    assert _policy().advisories(package, package.ordered[0])[0]["id"] == "GHSA-x"
    assert _policy(strategy={"security": "permissive"}).advisories(package, package.ordered[0]) == ()


def test_labels_stay_short() -> None:
    assert label("core", ["1.0.0"]) == "core@1.0.0"
    assert label("core", ["1.0.0", "1.1.0"]) == "core@1.0.0 || 1.1.0"
    assert label("core", [f"1.{i}.0" for i in range(9)]) == "core@1.0.0 - 1.8.0 (9 versions)"


def test_three_way_conflicts_and_exclusions_are_named() -> None:
    requirements = [Requirement((Step(ROOT, "core", "^1"),)),
                    Requirement((Step(ROOT, "ui", "^2"), Step("ui@2.0.0", "core", "^2"))),
                    Requirement((Step(ROOT, "chart", "^3"), Step("chart@3.0.0", "core", "^3", "peer")))]
    excluded = [Exclusion("core", "2.0.0", "requires capability gpu:compute (denied)")]
    error = unresolvable("core", requirements, excluded=excluded)
    assert error.message == (
        "app needs core ^1, app needs ui ^2, ui@2.0.0 needs core ^2, app needs chart ^3, "
        "chart@3.0.0 needs peer core ^3 — no version of core satisfies all of ^1, ^2 and ^3 "
        "(core 2.0.0 excluded: requires capability gpu:compute (denied))")
    assert error.detail["conflict"]["requirements"][2] == {"path": ["app", "chart@3.0.0"], "range": "^3",
                                                           "kind": "peer"}


def test_facts_are_chained_from_the_request() -> None:
    facts = [Fact(None, (), "app-kit", "^1"), Fact("app-kit", ("1.0.0",), "ui", "^1"),
             Fact("ui", ("1.0.0", "1.1.0"), "core", "^9", empty=True), Fact(None, (), "core", "^2")]
    error = from_facts(facts, {})
    assert error.detail["conflict"]["package"] == "core"
    assert error.detail["conflict"]["requirements"] == [
        {"path": ["app", "app-kit@1.0.0", "ui@1.0.0 || 1.1.0"], "range": "^9", "kind": "prod"}]
    assert error.message.startswith("app needs app-kit ^1, app-kit@1.0.0 needs ui ^1, ui@1.0.0 || 1.1.0 need core ^9")
    assert error.message.endswith("— no version of core satisfies ^9")
