"""MetadataStore contract: registry writes and reads (publish, deprecate, unpublish,
dist-tags, advisories, look-ups, search, counts)."""

from __future__ import annotations

import pytest

from eghact_common import wire
from eghact_common.errors import BadRequest, NotFound, Unpublished, VersionExists
from eghact_origin.storage import NameFilter, SearchQuery, StoredDoc, TarballRecord

from .conftest import Backend, new_version, parse


async def test_publish_is_read_back_in_every_form(backend: Backend) -> None:
    store = backend.metadata
    event = await store.publish(new_version("alpha", "1.0.0", description="first"), actor="alice")
    assert (event.type, event.name, event.version) == (wire.PUBLISH, "alpha", "1.0.0")
    assert wire.package_key("alpha") in event.keys and event.seq == await store.last_seq()

    full = await store.packument("alpha", abbreviated=False)
    doc = parse(full.body)
    assert full.seq == event.seq and doc["dist-tags"] == {"latest": "1.0.0"}
    assert doc["versions"]["1.0.0"]["description"] == "first"
    assert doc["versions"]["1.0.0"]["dist"]["tarball"].endswith("/alpha/-/alpha-1.0.0.tgz")
    assert "1.0.0" in parse((await store.packument("alpha", abbreviated=True)).body)["versions"]
    assert parse((await store.version_doc("alpha", "latest")).body)["version"] == "1.0.0"
    assert parse((await store.version_doc("alpha", "1.0.0")).body)["_npmUser"] == {"name": "alice"}

    record = await store.tarball("alpha", "alpha-1.0.0.tgz")
    new = new_version("alpha", "1.0.0")
    assert (record.version, record.blob_digest, record.size, record.unpublished) == \
        ("1.0.0", new.blob_digest, new.size, False)
    assert await store.digest_in_use(new.blob_digest) and not await store.digest_in_use("0" * 128)
    state = await store.package_state("alpha")
    assert set(state.versions) == {"1.0.0"} and state.dist_tags == {"latest": "1.0.0"}
    assert await store.dist_tags("alpha") == {"latest": "1.0.0"}


async def test_a_version_is_used_once_and_a_package_always_has_latest(backend: Backend) -> None:
    store = backend.metadata
    await store.publish(new_version("beta", "1.0.0-rc.1", tags=("next",)), actor="a")
    assert await store.dist_tags("beta") == {"next": "1.0.0-rc.1", "latest": "1.0.0-rc.1"}
    await store.publish(new_version("beta", "1.0.0", tags=("latest",)), actor="a")
    await store.publish(new_version("beta", "2.0.0-rc.1", tags=("next",)), actor="a")
    assert await store.dist_tags("beta") == {"next": "2.0.0-rc.1", "latest": "1.0.0"}
    with pytest.raises(VersionExists):
        await store.publish(new_version("beta", "1.0.0"), actor="a")
    for missing in (store.packument("nope", abbreviated=False), store.version_doc("beta", "9.9.9"),
                    store.tarball("beta", "beta-9.9.9.tgz"), store.package_state("nope")):
        with pytest.raises(NotFound):
            await missing


async def test_deprecate_changes_only_what_differs(backend: Backend) -> None:
    store = backend.metadata
    for version in ("1.0.0", "1.1.0"):
        await store.publish(new_version("gamma", version), actor="a")
    events = await store.deprecate("gamma", {"1.0.0": "use 1.1", "1.1.0": ""}, actor="a")
    assert [(e.type, e.version) for e in events] == [(wire.DEPRECATE, "1.0.0")]
    assert parse((await store.version_doc("gamma", "1.0.0")).body)["deprecated"] == "use 1.1"
    assert parse((await store.packument("gamma", abbreviated=False)).body)["versions"]["1.0.0"]["deprecated"] == \
        "use 1.1"
    assert await store.deprecate("gamma", {"1.0.0": "use 1.1"}, actor="a") == []
    assert (await store.package_state("gamma")).versions["1.0.0"].deprecated == "use 1.1"
    with pytest.raises(NotFound):
        await store.deprecate("gamma", {"3.0.0": "x"}, actor="a")


async def test_unpublish_tombstones_moves_latest_and_frees_blobs(backend: Backend) -> None:
    store = backend.metadata
    for version in ("1.0.0", "1.1.0", "2.0.0-rc.1"):
        await store.publish(new_version("delta", version, tags=("latest",) if "rc" not in version else ("next",)),
                            actor="a")
    events, freed = await store.unpublish("delta", ["1.1.0"], reason="oops", actor="a")
    assert [(e.type, e.version) for e in events] == [(wire.UNPUBLISH, "1.1.0")]
    assert freed == [new_version("delta", "1.1.0").blob_digest]
    assert await store.dist_tags("delta") == {"latest": "1.0.0", "next": "2.0.0-rc.1"}  # highest live release
    with pytest.raises(Unpublished):
        await store.version_doc("delta", "1.1.0")
    assert (await store.tarball("delta", "delta-1.1.0.tgz")).unpublished
    assert await store.digest_in_use(freed[0])  # tombstoned versions still name their blob
    assert (await store.unpublish("delta", ["1.1.0"], reason="again", actor="a"))[0] == []
    with pytest.raises(VersionExists):
        await store.publish(new_version("delta", "1.1.0"), actor="a")
    await store.unpublish("delta", ["1.0.0", "2.0.0-rc.1"], reason="all", actor="a")
    with pytest.raises(Unpublished):
        await store.packument("delta", abbreviated=True)


async def test_dist_tags_set_move_delete_and_refuse(backend: Backend) -> None:
    store = backend.metadata
    for version in ("1.0.0", "2.0.0"):
        await store.publish(new_version("eps", version), actor="a")
    event = await store.set_dist_tag("eps", "stable", "1.0.0", actor="a")
    assert (event.type, event.version, event.data["tag"]) == (wire.DIST_TAG, "1.0.0", "stable")
    await store.set_dist_tag("eps", "latest", "1.0.0", actor="a")
    assert parse((await store.packument("eps", abbreviated=False)).body)["dist-tags"] == \
        {"latest": "1.0.0", "stable": "1.0.0"}
    await store.set_dist_tag("eps", "stable", None, actor="a")
    assert await store.dist_tags("eps") == {"latest": "1.0.0"}
    with pytest.raises(BadRequest) as refused:
        await store.set_dist_tag("eps", "latest", None, actor="a")
    assert refused.value.code == "latest_tag_required"
    refusals: list[tuple[str, str, str | None]] = [("nope", "x", "1.0.0"), ("eps", "x", "9.0.0"),
                                                  ("eps", "never", None)]
    for name, tag, target in refusals:
        with pytest.raises(NotFound):
            await store.set_dist_tag(name, tag, target, actor="a")


async def test_lookup_many_answers_in_order_in_one_snapshot(backend: Backend) -> None:
    store = backend.metadata
    await store.publish(new_version("zeta", "1.0.0"), actor="a")
    found = await store.lookup_many([("packument", "zeta", "full"), ("packument", "zeta", "dists"),
                                     ("version", "zeta", "latest"), ("tarball", "zeta", "zeta-1.0.0.tgz"),
                                     ("packument", "missing", "abbreviated")])
    full, dists, version, tarball, missing = found
    assert isinstance(full, StoredDoc) and isinstance(dists, StoredDoc) and isinstance(version, StoredDoc)
    assert full.seq == dists.seq == version.seq
    assert parse(dists.body) == {"name": "zeta", "dists": [["1.0.0", "zeta-1.0.0.tgz",
                                                            new_version("zeta", "1.0.0").blob_digest,
                                                            new_version("zeta", "1.0.0").size]]}
    assert isinstance(tarball, TarballRecord) and tarball.version == "1.0.0"
    assert isinstance(missing, NotFound)


def test_ingest_commits_a_batch_with_one_event_per_version(backend: Backend) -> None:
    store = backend.metadata
    batch = [new_version("eta", v) for v in ("1.0.0", "1.1.0")] + [new_version("theta", "0.1.0")]
    events = store.ingest_sync(batch, actor="seed")
    assert [e.seq for e in events] == [1, 2, 3]
    more = store.ingest_submit([new_version("eta", "1.2.0")], actor="seed").result()
    store.flush_audit()
    assert more[0].seq == 4
    assert [e.version for e in store.changes_sync(0, 10)] == ["1.0.0", "1.1.0", "0.1.0", "1.2.0"]


async def test_advisories_are_stored_and_carried_by_their_event(backend: Backend) -> None:
    store = backend.metadata
    event = store.add_advisory_sync({"name": "iota", "vulnerable_versions": "<1.4.2", "severity": "high",
                                     "title": "XSS", "url": "http://127.0.0.1/a", "cwe": ["CWE-79"],
                                     "cvss": 7.5}, actor="cli")
    store.add_advisory_sync({"name": "kappa", "vulnerable_versions": "*", "severity": "low", "title": "t"},
                            actor="cli")
    assert event.type == wire.ADVISORY and event.keys == (wire.advisory_key("iota"),)
    found = await store.advisories_for(["iota", "nobody"])
    assert len(found) == 1 and found[0].id == event.data["advisory"]["id"]
    assert (found[0].cwe, found[0].cvss, found[0].to_npm()["vulnerable_versions"]) == (("CWE-79",), 7.5, "<1.4.2")
    assert [a.name for a in await store.advisories_for(["kappa", "iota"])] == ["iota", "kappa"]


async def test_search_and_counts_show_only_what_the_filter_lets_through(backend: Backend) -> None:
    store = backend.metadata
    await store.publish(new_version("chart-kit", "1.0.0", description="draws charts", keywords=("chart",)),
                        actor="a")
    await store.publish(new_version("@acme/chart-secret", "1.0.0", description="secret charts"), actor="a")
    await store.publish(new_version("table-kit", "1.0.0", description="tables"), actor="a")
    total, hits = await store.search(SearchQuery(text="charts"))
    assert total == 2 and {h.name for h in hits} == {"chart-kit", "@acme/chart-secret"}
    public = NameFilter(hidden=("@acme/",))
    total, hits = await store.search(SearchQuery(text="charts", names=public))
    assert (total, [h.name for h in hits]) == (1, ["chart-kit"])
    assert hits[0].version == "1.0.0" and hits[0].description == "draws charts"
    assert (await store.search(SearchQuery(text="chart", size=1)))[1][0].name == "chart-kit"  # exact name first
    assert await store.stats() == {"packages": 3, "versions": 3, "seq": 3}
    assert (await store.stats(public))["packages"] == 2
