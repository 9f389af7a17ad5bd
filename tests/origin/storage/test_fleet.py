"""MetadataStore contract: edge registrations and forward-decayed popularity."""

from __future__ import annotations

import pytest

from eghact_origin.storage import EdgeRecord, NameFilter

from .conftest import Backend, new_version

DAY = 86_400.0


def edge(id_: str, now: float, status: str = "ok") -> EdgeRecord:
    return EdgeRecord(id_, "eu-west", "http://127.0.0.1:9", {"status": status, "upstream": "x"}, "then", now)


async def test_an_edge_belongs_to_the_token_that_registered_it(backend: Backend) -> None:
    store = backend.metadata
    owner = store.create_token_sync("edge-a", "a" * 64, ["edge"], actor="t")
    other = store.create_token_sync("edge-b", "b" * 64, ["edge"], actor="t")
    assert await store.edge_register(edge("e1", 10.0), owner, admin=False)
    assert not await store.edge_register(edge("e1", 11.0), other, admin=False)
    assert await store.edge_register(edge("e1", 12.0, "degraded"), owner, admin=False)
    listed = await store.edge_list()
    assert [(e.id, e.last_seen, e.health["status"]) for e in listed] == [("e1", 12.0, "degraded")]
    store.revoke_token_sync(owner, None, actor="t")
    assert await store.edge_register(edge("e1", 13.0), other, admin=False)  # the owner's token is gone
    assert await store.edge_register(edge("e1", 14.0), None, admin=True)


async def test_popularity_counts_caps_decays_and_filters(backend: Backend) -> None:
    store = backend.metadata
    for name in ("alpha", "beta", "@acme/secret"):
        await store.publish(new_version(name, "1.0.0"), actor="a")
    token = store.create_token_sync("edge", "e" * 64, ["edge"], actor="t")
    assert await store.edge_register(edge("e1", 0.0), token, admin=False)
    assert await store.popularity_add(token + 1, "e1", {"/alpha": ("alpha", 1)}, now=0.0, half_life=DAY,
                                      share_cap=100.0) is None  # not the registering token
    added = await store.popularity_add(token, "e1", {"/alpha": ("alpha", 10), "/beta": ("beta", 500),
                                                     "/@acme%2fsecret": ("@acme/secret", 50),
                                                     "/gone": ("gone", 99)},
                                       now=0.0, half_life=DAY, share_cap=100.0)
    assert added == (4, 1)  # beta capped at 100
    keys, packages = await store.popularity_top(10, NameFilter(hidden=("@acme/",)), now=0.0, half_life=DAY)
    assert keys == [("/beta", 100.0), ("/alpha", 10.0)]  # no private package, none that does not exist
    assert packages == [("beta", 100.0), ("alpha", 10.0)]
    assert await store.popularity_add(token, "e1", {"/beta": ("beta", 5)}, now=0.0, half_life=DAY,
                                      share_cap=100.0) == (0, 1)  # the share is full
    keys, _ = await store.popularity_top(1, NameFilter(), now=DAY, half_life=DAY)
    assert keys == [("/beta", pytest.approx(50.0))]  # one half-life later
    await store.popularity_add(token, "e1", {"/alpha": ("alpha", 100)}, now=DAY, half_life=DAY, share_cap=1000.0)
    keys, _ = await store.popularity_top(2, NameFilter(), now=DAY, half_life=DAY)
    assert keys == [("/alpha", pytest.approx(105.0)), ("/beta", pytest.approx(50.0))]
    # Far in the future (the forward-decay exponent is rebased): the order and the ratios hold.
    far = 400 * DAY
    await store.popularity_add(token, "e1", {"/alpha": ("alpha", 1)}, now=far, half_life=DAY, share_cap=1e9)
    keys, _ = await store.popularity_top(2, NameFilter(), now=far, half_life=DAY)
    assert keys[0] == ("/alpha", pytest.approx(1.0)) and keys[1][0] == "/beta"
