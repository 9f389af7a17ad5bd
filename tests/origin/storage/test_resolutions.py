"""MetadataStore contract: built resolutions, co-usage, and the resolver workers' snapshot."""

from __future__ import annotations

import pickle

from eghact_common import wire
from eghact_origin.storage import StoredResolution

from .conftest import Backend, new_version, parse

HOUR = 3600.0


async def test_a_resolution_is_current_until_a_considered_name_changes(backend: Backend) -> None:
    store = backend.metadata
    for name in ("app", "lib", "other"):
        await store.publish(new_version(name, "1.0.0"), actor="a")
    built = StoredResolution("h1", 200, b'{"lockfileVersion": 1}', ("app", "lib"), await store.last_seq())
    assert await store.resolution_current("h1") is None and await store.resolution_request("h1") is None
    await store.resolution_save('{"dependencies":{"app":"*"}}', built)
    assert await store.resolution_current("h1") == built
    assert await store.resolution_request("h1") == '{"dependencies":{"app":"*"}}'
    await store.publish(new_version("other", "1.1.0"), actor="a")  # not considered
    assert await store.resolution_current("h1") == built
    await store.publish(new_version("lib", "1.1.0"), actor="a")
    assert await store.resolution_current("h1") is None  # the feed says lib changed after it was built
    rebuilt = StoredResolution("h1", 422, b"{}", ("lib",), await store.last_seq())
    await store.resolution_save('{"dependencies":{"app":"*"}}', rebuilt)
    assert await store.resolution_current("h1") == rebuilt


async def test_marking_stale_folds_hits_and_appends_resolution_events(backend: Backend) -> None:
    store = backend.metadata
    await store.publish(new_version("lib", "1.0.0"), actor="a")
    seq = await store.last_seq()
    for digest, names in (("h1", ("lib",)), ("h2", ("lib", "x")), ("h3", ("y",))):
        await store.resolution_save("{}", StoredResolution(digest, 200, b"{}", names, seq))
    await store.resolution_hits({"h1": 2, "h2": 1})
    stale = await store.resolutions_stale(["lib", "x"], {"h1": 3})
    assert sorted(stale) == [("h1", 5), ("h2", 1)]
    assert await store.resolution_current("h1") is None and await store.resolution_current("h3") is not None
    events = [e for e in await store.changes(seq, 10) if e.type == wire.RESOLUTION]
    assert sorted((e.data["hash"], e.keys) for e in events) == \
        [("h1", (wire.resolution_key("h1"),)), ("h2", (wire.resolution_key("h2"),))]
    assert await store.resolutions_stale(["lib"], {}) == []  # already stale
    # A resolution event is not a change to what it considered: a rebuild is current.
    await store.resolution_save("{}", StoredResolution("h1", 200, b"{}", ("lib",), seq))
    assert await store.resolution_current("h1") is not None


async def test_saving_with_keep_holds_the_most_fetched_then_the_newest(backend: Backend) -> None:
    store = backend.metadata
    seq = await store.last_seq()
    for digest in ("h1", "h2", "h3"):
        await store.resolution_save("{}", StoredResolution(digest, 200, b"{}", (f"n-{digest}",), seq))
    await store.resolution_hits({"h1": 4})
    await store.resolution_save("{}", StoredResolution("h4", 200, b"{}", ("n-h4",), seq), keep=2)
    # h1 was fetched; h4 was just saved; h2 and h3 (never fetched) go, with their names.
    assert [d for d in ("h1", "h2", "h3", "h4") if await store.resolution_request(d) is not None] == ["h1", "h4"]
    await store.publish(new_version("n-h2", "1.0.0"), actor="a")
    assert await store.resolutions_stale(["n-h2", "n-h3"], {}) == []
    # Saving again under the bound drops nothing.
    await store.resolution_save("{}", StoredResolution("h4", 422, b"{}", ("n-h4",), seq), keep=2)
    assert await store.resolution_request("h1") is not None


async def test_co_usage_keeps_the_top_names_and_forgets_what_decayed(backend: Backend) -> None:
    store = backend.metadata
    await store.co_usage_add({"a": {"b": 3.0, "c": 1.0, "d": 2.0}, "b": {"a": 3.0}}, now=0.0, half_life=HOUR,
                             top=2, floor=1 / 1024)
    assert await store.co_usage_top(["a", "b", "z"]) == {"a": ["b", "d"], "b": ["a"]}
    # Four half-lives later one unit weighs as 16 did: c (1 unit now) passes d (2 units then).
    await store.co_usage_add({"a": {"c": 1.0}}, now=4 * HOUR, half_life=HOUR, top=2, floor=1 / 1024)
    assert (await store.co_usage_top(["a"]))["a"] == ["c", "b"]
    await store.co_usage_add({"x": {"y": 1.0}}, now=40 * HOUR, half_life=HOUR, top=2, floor=1 / 1024)
    assert await store.co_usage_top(["a", "b", "x"]) == {"x": ["y"]}


async def test_a_worker_snapshot_reads_one_committed_state(backend: Backend) -> None:
    store = backend.metadata
    await store.publish(new_version("lib", "1.0.0"), actor="a")
    opener = pickle.loads(pickle.dumps(store.snapshot_opener()))  # it crosses into a spawned process
    snapshot = opener()
    try:
        seq, mark = snapshot.begin()
        assert seq == await store.last_seq()
        assert snapshot.package_seq("nope") is None and snapshot.package_seq("lib") == seq
        assert parse(snapshot.abbreviated("lib")) == parse((await store.packument("lib", abbreviated=True)).body)
        assert snapshot.advisories("lib") == []
        await store.publish(new_version("lib", "1.1.0"), actor="a")  # after the snapshot began
        assert snapshot.package_seq("lib") == seq and "1.1.0" not in parse(snapshot.abbreviated("lib"))["versions"]
        snapshot.end()
        store.add_advisory_sync({"name": "lib", "vulnerable_versions": "<1.1.0", "severity": "high",
                                 "title": "t", "url": "http://127.0.0.1/a"}, actor="a")
        seq2, mark2 = snapshot.begin()
        assert seq2 == seq + 2 and mark2 != mark
        assert [a["vulnerable_versions"] for a in snapshot.advisories("lib")] == ["<1.1.0"]
        assert set(snapshot.advisories("lib")[0]) == {"id", "vulnerable_versions", "severity", "title", "url"}
        snapshot.end()
    finally:
        getattr(snapshot, "close", lambda: None)()
