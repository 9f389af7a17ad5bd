"""MetadataStore contract: the changes feed in the registry's and the public numbering."""

from __future__ import annotations

import json

from eghact_common import wire

from .conftest import Backend, new_version, parse


async def test_changes_page_in_seq_order_in_both_renderings(backend: Backend) -> None:
    store = backend.metadata
    assert await store.feed_extent() == {"registry_id": store.registry_id, "first_seq": 1, "last_seq": 0}
    for i in range(5):
        await store.publish(new_version(f"pkg-{i}", "1.0.0"), actor="a")
    await store.set_dist_tag("pkg-0", "beta", "1.0.0", actor="a")
    events = await store.changes(0, 100)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6] and events[-1].type == wire.DIST_TAG
    assert [e.seq for e in await store.changes(2, 3)] == [3, 4, 5]
    assert await store.changes(6, 10) == []
    rendered = await store.changes_json(0, 100)
    assert [(seq, name, json.loads(raw)) for seq, name, raw in rendered] == \
        [(e.seq, e.name, e.to_json()) for e in events]
    assert store.changes_sync(0, 100) == events
    assert await store.last_seq() == 6
    assert await store.feed_extent() == {"registry_id": store.registry_id, "first_seq": 1, "last_seq": 6}


async def test_public_numbering_is_gapless_and_hides_private_events(backend: Backend) -> None:
    store = backend.metadata
    await store.configure_public_view(("@acme",))
    assert await store.public_registry_id() == store.registry_id  # nothing was numbered before
    for name in ("one", "@acme/secret", "two", "@acme/other", "three"):
        await store.publish(new_version(name, "1.0.0"), actor="a")
    public = await store.changes(0, 100, public=True)
    assert [(e.seq, e.name) for e in public] == [(1, "one"), (2, "two"), (3, "three")]
    assert [json.loads(raw)["seq"] for _, _, raw in await store.changes_json(0, 100, public=True)] == [1, 2, 3]
    assert [e.name for e in await store.changes(1, 1, public=True)] == ["two"]
    assert (await store.last_seq(public=True), await store.last_seq()) == (3, 5)
    assert await store.feed_extent(public=True) == {"registry_id": store.registry_id, "first_seq": 1,
                                                    "last_seq": 3}
    assert [await store.public_seq_at(seq) for seq in range(6)] == [0, 1, 1, 2, 2, 3]
    assert await store.stats(public=True) == {"packages": 5, "versions": 5, "seq": 3}
    # A public document shows the public numbering in its _rev; its StoredDoc carries both.
    doc = await store.packument("two", abbreviated=False)
    assert (doc.seq, doc.public_seq) == (5, 3) and parse(doc.body)["_rev"].startswith("2-")


async def test_other_private_scopes_renumber_under_a_new_registry_id(backend: Backend) -> None:
    store = backend.metadata
    await store.configure_public_view(("@acme",))
    for name in ("one", "@acme/secret", "@beta/x"):
        await store.publish(new_version(name, "1.0.0"), actor="a")
    assert [e.name for e in await store.changes(0, 10, public=True)] == ["one", "@beta/x"]
    await store.configure_public_view(("@beta",))
    assert await store.public_registry_id() == f"{store.registry_id}.1"
    assert [(e.seq, e.name) for e in await store.changes(0, 10, public=True)] == [(1, "one"), (2, "@acme/secret")]
    await store.configure_public_view(("@beta",))  # the same scopes: no new epoch
    assert (await store.feed_extent(public=True))["registry_id"] == f"{store.registry_id}.1"


async def test_events_written_without_numbering_appear_once_numbered(backend: Backend) -> None:
    store = backend.metadata
    await store.configure_public_view(("@acme",))
    await store.publish(new_version("one", "1.0.0"), actor="a")
    foreign = [{"seq": 7, "time": "2026-12-01T00:00:00.000Z", "type": wire.PUBLISH, "name": "far",
                "version": "1.0.0", "keys": [wire.package_key("far")]}]
    store.mirror_apply_sync(lambda writer: writer.write_events(foreign, 9))
    assert await store.last_seq() == 9  # the position moved to the bundle's end
    assert [e.name for e in await store.changes(0, 10, public=True)] == ["one"]
    await store.number_public()
    assert [(e.seq, e.name) for e in await store.changes(0, 10, public=True)] == [(1, "one"), (2, "far")]
    await store.number_public()  # nothing more to number
    assert await store.last_seq(public=True) == 2
