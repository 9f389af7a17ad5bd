"""MetadataStore contract: a mirror's apply (one transaction through ``MirrorWriter``), and the
one row writer: what a mirror stores from served packuments reads back as the origin's rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from eghact_common import wire
from eghact_common.errors import Unpublished
from eghact_origin import packument
from eghact_origin.mirror.pulled import pulled_rows
from eghact_origin.mirror.rows import package_rows
from eghact_origin.storage import MirrorState, MirrorWriter, SearchQuery

from .conftest import Backend, new_version, parse

BASE = "http://127.0.0.1:4873"


async def served(store: Backend, name: str) -> tuple[bytes, bytes]:
    full = await store.metadata.packument(name, abbreviated=False)
    short = await store.metadata.packument(name, abbreviated=True)
    return packument.materialize(full.body, BASE), packument.materialize(short.body, BASE)


async def test_a_mirror_reads_back_what_the_origin_served(backend: Backend, second: Backend) -> None:
    origin, mirror = backend.metadata, second.metadata
    await origin.publish(new_version("lib", "1.0.0", description="d"), actor="a")
    await origin.publish(new_version("lib", "1.1.0", tags=("next",), deprecated="old"), actor="a")
    assert mirror.mirror_state_sync() == MirrorState()
    full, short = await served(backend, "lib")
    sizes = {new_version("lib", v).blob_digest: new_version("lib", v).size for v in ("1.0.0", "1.1.0")}
    rows = package_rows("lib", full, short, BASE, 2, sizes)
    events = [e.to_json() for e in await origin.changes(0, 10)]

    def apply(writer: MirrorWriter) -> list[str]:
        assert writer.state() == MirrorState() and writer.package_names() == set()
        freed = writer.write_package(rows, existed=False)
        writer.write_events(events, 2)
        writer.set_state(MirrorState(origin.registry_id, 2, "b1", ("b1",)))
        writer.audit("mirror-apply", "mirror", "b1", {"to_seq": 2})
        return freed

    assert mirror.mirror_apply_sync(apply) == []
    assert mirror.mirror_state_sync() == MirrorState(origin.registry_id, 2, "b1", ("b1",))
    # The packuments are stored as served, byte for byte; the rows agree with the origin's.
    assert (await served(second, "lib")) == (full, short)
    for spec in ("1.0.0", "1.1.0", "next"):
        mirrored, original = await mirror.version_doc("lib", spec), await origin.version_doc("lib", spec)
        assert parse(mirrored.body) == parse(original.body)
    assert await mirror.tarball("lib", "lib-1.1.0.tgz") == await origin.tarball("lib", "lib-1.1.0.tgz")
    assert await mirror.dist_tags("lib") == await origin.dist_tags("lib")
    assert [e.to_json() for e in await mirror.changes(0, 10)] == events
    assert (await mirror.search(SearchQuery(text="lib")))[0] == 1


async def test_a_mirror_apply_is_all_or_nothing(backend: Backend, second: Backend) -> None:
    origin, mirror = backend.metadata, second.metadata
    await origin.publish(new_version("lib", "1.0.0"), actor="a")
    full, short = await served(backend, "lib")
    digest, size = new_version("lib", "1.0.0").blob_digest, new_version("lib", "1.0.0").size
    rows = package_rows("lib", full, short, BASE, 1, {digest: size})

    def fails(writer: MirrorWriter) -> None:
        writer.write_package(rows, existed=False)
        writer.set_state(MirrorState("o", 1, "b1", ("b1",)))
        raise RuntimeError("the blobs did not become durable")

    with pytest.raises(RuntimeError):
        mirror.mirror_apply_sync(fails)
    assert mirror.mirror_state_sync() == MirrorState()
    assert mirror.mirror_apply_sync(lambda writer: writer.package_names()) == set()


async def test_later_bundles_replace_versions_and_remove_packages(backend: Backend, second: Backend) -> None:
    origin, mirror = backend.metadata, second.metadata
    for version in ("1.0.0", "1.1.0"):
        await origin.publish(new_version("lib", version), actor="a")
    await origin.publish(new_version("gone", "1.0.0"), actor="a")
    sizes = {new_version(n, v).blob_digest: new_version(n, v).size
             for n, v in (("lib", "1.0.0"), ("lib", "1.1.0"), ("gone", "1.0.0"))}
    first = [package_rows(n, *(await served(backend, n)), BASE, 3, sizes) for n in ("lib", "gone")]
    mirror.mirror_apply_sync(lambda w: [w.write_package(r, existed=False) for r in first])
    assert mirror.mirror_apply_sync(lambda w: w.blob_sizes()) == sizes

    await origin.unpublish("lib", ["1.0.0"], reason="x", actor="a")
    later = package_rows("lib", *(await served(backend, "lib")), BASE, 5, sizes)

    def apply(writer: MirrorWriter) -> tuple[list[str], list[str], set[str]]:
        assert writer.package_names() == {"lib", "gone"}
        freed = writer.write_package(later, existed=True)
        removed = writer.remove_package("gone")
        return freed, removed, writer.live_digests(freed + removed + [new_version("lib", "1.1.0").blob_digest])

    freed, removed, live = mirror.mirror_apply_sync(apply)
    assert freed == [new_version("lib", "1.0.0").blob_digest]
    assert removed == [new_version("gone", "1.0.0").blob_digest]
    assert live == {new_version("lib", "1.1.0").blob_digest}
    with pytest.raises(Unpublished):
        await mirror.version_doc("lib", "1.0.0")
    with pytest.raises(Unpublished):
        await mirror.packument("gone", abbreviated=False)
    assert await mirror.dist_tags("lib") == {"latest": "1.1.0"}


async def test_advisories_ride_in_with_their_events(backend: Backend, second: Backend) -> None:
    event = backend.metadata.add_advisory_sync({"name": "lib", "vulnerable_versions": "<2", "severity": "high",
                                                "title": "t", "cwe": ["CWE-1"], "cvss": 5.0}, actor="a")
    second.metadata.mirror_apply_sync(lambda w: w.write_events([event.to_json()], event.seq))
    assert await second.metadata.advisories_for(["lib"]) == await backend.metadata.advisories_for(["lib"])
    assert event.type == wire.ADVISORY


async def test_a_pulled_package_keeps_the_union_of_the_versions_bundles_brought(backend: Backend,
                                                                              second: Backend) -> None:
    origin, mirror = backend.metadata, second.metadata
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        await origin.publish(new_version("lib", version), actor="a")
    full, short = await served(backend, "lib")
    sizes = {new_version("lib", v).blob_digest: new_version("lib", v).size for v in ("1.0.0", "1.1.0", "2.0.0")}
    assert mirror.mirror_apply_sync(lambda w: w.live_versions("lib")) == []

    def bring(carried: set[str], seq: int) -> Callable[[MirrorWriter], list[str]]:
        def apply(writer: MirrorWriter) -> list[str]:
            existed = "lib" in writer.package_names()
            rows = pulled_rows("lib", full, short, BASE, seq, sizes, carried,
                               writer.live_versions("lib") if existed else [])
            assert rows is not None
            return writer.write_package(rows, existed)
        return apply

    assert mirror.mirror_apply_sync(bring({"1.0.0"}, 3)) == []
    shown = parse((await mirror.packument("lib", abbreviated=False)).body)
    assert list(shown["versions"]) == ["1.0.0"] and shown["dist-tags"] == {"latest": "1.0.0"}  # moved off 2.0.0
    held = mirror.mirror_apply_sync(lambda w: w.live_versions("lib"))
    assert [(r.version, r.blob_digest, r.size) for r in held] == [
        ("1.0.0", new_version("lib", "1.0.0").blob_digest, new_version("lib", "1.0.0").size)]
    # A later bundle adds versions; it never unpublishes those an earlier one brought.
    assert mirror.mirror_apply_sync(bring({"1.1.0"}, 4)) == []
    shown = parse((await mirror.packument("lib", abbreviated=True)).body)
    assert list(shown["versions"]) == ["1.0.0", "1.1.0"] and shown["dist-tags"] == {"latest": "1.1.0"}
    assert [r.version for r in mirror.mirror_apply_sync(lambda w: w.live_versions("lib"))] == ["1.0.0", "1.1.0"]
    assert (await mirror.tarball("lib", "lib-1.1.0.tgz")).size == new_version("lib", "1.1.0").size
    mirror.mirror_apply_sync(bring({"2.0.0"}, 5))
    assert await mirror.dist_tags("lib") == {"latest": "2.0.0"}  # the origin's tag, once its target is held


async def test_events_are_read_once_as_they_come(backend: Backend, second: Backend) -> None:
    # mirror-apply hands over a staged file's lines as they are read, never a list: a one-shot
    # iterator must bring every event in, and the advisories among them.
    await backend.metadata.publish(new_version("lib", "1.0.0"), actor="a")
    advisory = backend.metadata.add_advisory_sync({"name": "lib", "vulnerable_versions": "<2", "severity": "high",
                                                   "title": "t", "cwe": [], "cvss": None}, actor="a")
    events = [e.to_json() for e in await backend.metadata.changes(0, 10)]
    second.metadata.mirror_apply_sync(lambda w: w.write_events(iter(events), advisory.seq))
    assert [e.to_json() for e in await second.metadata.changes(0, 10)] == events
    assert await second.metadata.advisories_for(["lib"]) == await backend.metadata.advisories_for(["lib"])
