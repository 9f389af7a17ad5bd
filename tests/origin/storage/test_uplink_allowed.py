"""MetadataStore contract: the admin's per-version overrides of the uplinks' pull policy."""

from __future__ import annotations

import json

from .conftest import Backend


async def test_allowed_versions_are_added_listed_and_withdrawn_each_change_audited(backend: Backend) -> None:
    store = backend.metadata
    assert await store.uplink_allowed("left-pad") == set()
    head = store.audit_head()
    assert await store.uplink_allow("left-pad", "1.3.1", actor="ops") is True
    assert await store.uplink_allow("left-pad", "1.3.1", actor="ops") is False  # already: nothing written
    assert await store.uplink_allow("left-pad", "2.0.0-rc.1", actor="ops") is True
    assert await store.uplink_allow("@types/node", "1.3.1", actor="ops") is True
    assert await store.uplink_allowed("left-pad") == {"1.3.1", "2.0.0-rc.1"}
    assert await store.uplink_allowed("@types/node") == {"1.3.1"}
    assert await store.uplink_allowed("left") == set()  # names match exactly
    assert store.audit_head() == head + 3

    assert await store.uplink_disallow("left-pad", "1.3.1", actor="root") is True
    assert await store.uplink_disallow("left-pad", "1.3.1", actor="root") is False
    assert await store.uplink_disallow("left-pad", "9.9.9", actor="root") is False
    assert await store.uplink_allowed("left-pad") == {"2.0.0-rc.1"}
    assert store.audit_head() == head + 4

    path = getattr(store, "audit_path", None)
    if path is not None:  # a backend that keeps the log in a file
        store.flush_audit()
        records = [json.loads(line) for line in path.read_text().splitlines()][-4:]
        assert [(r["action"], r["actor"], r["subject"], r["data"]) for r in records] == [
            ("uplink-allow", "ops", "left-pad", {"version": "1.3.1"}),
            ("uplink-allow", "ops", "left-pad", {"version": "2.0.0-rc.1"}),
            ("uplink-allow", "ops", "@types/node", {"version": "1.3.1"}),
            ("uplink-disallow", "root", "left-pad", {"version": "1.3.1"}),
        ]


async def test_an_override_is_no_feed_event(backend: Backend) -> None:
    store = backend.metadata
    seq = await store.last_seq()
    await store.uplink_allow("left-pad", "1.3.1", actor="ops")
    # An override is policy, not content: the view it changes is the uplink service's to
    # recompute, and that recomputation is the change the feed announces.
    assert await store.last_seq() == seq
