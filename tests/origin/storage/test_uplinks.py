"""MetadataStore contract: packages pulled from an uplink — stored as served with one event per
change, read-only to local writes, never over a local name, taken over only explicitly."""

from __future__ import annotations

import base64
import hashlib

import pytest

from eghact_common import wire
from eghact_common.errors import NotFound, UplinkedPackage, VersionExists
from eghact_origin import packument
from eghact_origin.storage import PulledPackage, VersionRow

from .conftest import Backend, new_version, parse


def row(name: str, version: str, *, deprecated: str | None = None, tarball: bytes | None = None) -> VersionRow:
    data = tarball or f"{name}@{version} upstream".encode()
    sri = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    rendered = packument.render_version({"name": name, "version": version}, name=name, version=version,
                                        filename=f"{name}-{version}.tgz", dist={"integrity": sri}, publisher="up")
    return VersionRow(name, version, f"{name}-{version}.tgz", "2026-01-01T00:00:00.000Z", rendered.full,
                      rendered.abbreviated, hashlib.sha512(data).hexdigest(), sri, hashlib.sha1(data).hexdigest(), 0,
                      deprecated)


def pulled(name: str, *versions: VersionRow, latest: str, fetched: float = 100.0, etag: str = '"e1"') -> PulledPackage:
    return PulledPackage(name, "npm", list(versions), [("latest", latest)], "2025-01-01T00:00:00.000Z",
                         {v.tarball_file: f"http://127.0.0.1:9/{name}/-/{v.tarball_file}" for v in versions},
                         b"raw", etag, "Mon, 01 Dec 2026 00:00:00 GMT", fetched, {"9.9.9": "too young"})


async def test_a_first_pull_is_stored_with_one_event_and_reads_like_a_package(backend: Backend) -> None:
    store = backend.metadata
    assert await store.package_source("lib") is None and await store.uplink_state("lib") is None
    events, freed = await store.uplink_save(pulled("lib", row("lib", "1.0.0"), row("lib", "1.1.0"), latest="1.1.0"),
                                            actor="uplink:npm")
    assert freed == [] and [(e.type, e.name, e.keys) for e in events] == [
        (wire.UPLINK, "lib", ("pkg:lib", "search"))]
    assert await store.package_source("lib") == "npm"
    state = await store.uplink_state("lib")
    assert state is not None and (state.uplink, state.etag, state.fetched, state.raw, state.hidden) == (
        "npm", '"e1"', 100.0, b"raw", {"9.9.9": "too young"})
    full = parse((await store.packument("lib", abbreviated=False)).body)
    assert sorted(full["versions"]) == ["1.0.0", "1.1.0"] and full["dist-tags"] == {"latest": "1.1.0"}
    assert full["time"]["1.0.0"] == "2026-01-01T00:00:00.000Z"
    assert await store.uplink_tarball_url("lib", "lib-1.0.0.tgz") == "http://127.0.0.1:9/lib/-/lib-1.0.0.tgz"
    assert await store.uplink_tarball_url("lib", "lib-2.0.0.tgz") is None
    record = await store.tarball("lib", "lib-1.0.0.tgz")
    assert record.size == 0  # not fetched yet
    await store.uplink_tarball_stored("lib", "1.0.0", digest=record.blob_digest, size=42, integrity=record.integrity)
    assert (await store.tarball("lib", "lib-1.0.0.tgz")).size == 42


async def test_a_refresh_writes_only_what_changed_and_keeps_fetched_tarballs(backend: Backend) -> None:
    store = backend.metadata
    await store.uplink_save(pulled("lib", row("lib", "1.0.0"), latest="1.0.0"), actor="u")
    await store.uplink_tarball_stored("lib", "1.0.0", digest=row("lib", "1.0.0").blob_digest, size=7,
                                      integrity=row("lib", "1.0.0").integrity)
    events, _ = await store.uplink_save(pulled("lib", row("lib", "1.0.0"), latest="1.0.0", fetched=200.0), actor="u")
    assert events == []  # the same document: no event, only the fetch state
    assert (await store.uplink_state("lib")).fetched == 200.0  # type: ignore[union-attr]
    await store.uplink_touch("lib", fetched=300.0, etag='"e2"', last_modified=None)
    state = await store.uplink_state("lib")
    assert state is not None and (state.fetched, state.etag, state.last_modified) == (
        300.0, '"e2"', "Mon, 01 Dec 2026 00:00:00 GMT")
    events, freed = await store.uplink_save(
        pulled("lib", row("lib", "1.0.0", deprecated="old"), row("lib", "2.0.0"), latest="2.0.0"), actor="u")
    assert len(events) == 1 and events[0].type == wire.UPLINK and freed == []
    assert (await store.tarball("lib", "lib-1.0.0.tgz")).size == 7  # still fetched
    full = parse((await store.packument("lib", abbreviated=False)).body)
    assert full["versions"]["1.0.0"]["deprecated"] == "old" and full["dist-tags"]["latest"] == "2.0.0"
    events, freed = await store.uplink_save(pulled("lib", row("lib", "2.0.0"), latest="2.0.0"), actor="u")
    assert len(events) == 1 and freed == [row("lib", "1.0.0").blob_digest]  # gone upstream: unpublished here
    assert events[0].keys == ("pkg:lib", "search", wire.tarball_key("lib", "1.0.0"))  # caches drop its tarball
    assert sorted(parse((await store.packument("lib", abbreviated=False)).body)["versions"]) == ["2.0.0"]


async def test_local_and_pulled_names_never_mix(backend: Backend) -> None:
    store = backend.metadata
    await store.publish(new_version("mine", "1.0.0"), actor="a")
    assert await store.package_source("mine") == "local"
    with pytest.raises(UplinkedPackage) as refused:
        await store.uplink_save(pulled("mine", row("mine", "9.0.0"), latest="9.0.0"), actor="u")
    assert refused.value.code == "local_package"
    assert list(parse((await store.packument("mine", abbreviated=False)).body)["versions"]) == ["1.0.0"]
    await store.uplink_save(pulled("lib", row("lib", "1.0.0"), latest="1.0.0"), actor="u")
    with pytest.raises(UplinkedPackage):
        await store.publish(new_version("lib", "2.0.0"), actor="a")


async def test_a_takeover_makes_a_pulled_name_local_for_ever(backend: Backend) -> None:
    store = backend.metadata
    assert await store.uplink_takeover("nothing", actor="admin") == ([], [])
    await store.uplink_save(pulled("lib", row("lib", "1.0.0"), latest="1.0.0"), actor="u")
    events, unused = await store.uplink_takeover("lib", actor="admin")
    assert [(e.type, e.version) for e in events] == [(wire.UNPUBLISH, "1.0.0")]
    assert unused == [row("lib", "1.0.0").blob_digest]
    assert await store.package_source("lib") == "local" and await store.uplink_state("lib") is None
    with pytest.raises(VersionExists):  # the uplink's version numbers stay used
        await store.publish(new_version("lib", "1.0.0"), actor="a")
    await store.publish(new_version("lib", "2.0.0"), actor="a")
    assert list(parse((await store.packument("lib", abbreviated=False)).body)["versions"]) == ["2.0.0"]


async def test_due_packages_come_oldest_first_per_uplink_and_move_back_when_fetched(backend: Backend) -> None:
    store = backend.metadata
    assert await store.uplink_due("npm", 1e12, 10) == []
    for name, fetched in (("c", 300.0), ("a", 100.0), ("b", 100.0), ("d", 400.0)):
        await store.uplink_save(pulled(name, row(name, "1.0.0"), latest="1.0.0", fetched=fetched), actor="u")
    other = pulled("e", row("e", "1.0.0"), latest="1.0.0", fetched=50.0)
    await store.uplink_save(PulledPackage(**{**vars(other), "uplink": "mirror"}), actor="u")
    await store.publish(new_version("mine", "1.0.0"), actor="a")  # local: never due
    assert await store.uplink_due("npm", 350.0, 10) == [("a", 100.0), ("b", 100.0), ("c", 300.0)]
    assert await store.uplink_due("npm", 350.0, 2) == [("a", 100.0), ("b", 100.0)]
    assert await store.uplink_due("npm", 100.0, 10) == []  # strictly before
    assert await store.uplink_due("npm", 350.0, 0) == []
    assert await store.uplink_due("mirror", 350.0, 10) == [("e", 50.0)]
    await store.uplink_touch("a", fetched=500.0, etag=None, last_modified=None)  # a 304
    await store.uplink_save(pulled("b", row("b", "1.0.0"), latest="1.0.0", fetched=450.0), actor="u")
    assert await store.uplink_due("npm", 1000.0, 10) == [("c", 300.0), ("d", 400.0), ("b", 450.0), ("a", 500.0)]
    await store.uplink_takeover("c", actor="admin")  # local now: no longer due
    assert [n for n, _ in await store.uplink_due("npm", 1000.0, 10)] == ["d", "b", "a"]


async def test_reveals_are_kept_with_the_state_and_come_earliest_first(backend: Backend) -> None:
    store = backend.metadata
    assert await store.uplink_reveals(1e12, 10) == []
    for name, reveal in (("late", 900.0), ("soon", 200.0), ("never", None), ("also", 200.0)):
        base = pulled(name, row(name, "1.0.0"), latest="1.0.0")
        await store.uplink_save(PulledPackage(**{**vars(base), "reveal_at": reveal}), actor="u")
    assert (await store.uplink_state("soon")).reveal_at == 200.0  # type: ignore[union-attr]
    assert (await store.uplink_state("never")).reveal_at is None  # type: ignore[union-attr]
    assert await store.uplink_reveals(1000.0, 10) == [("also", 200.0), ("soon", 200.0), ("late", 900.0)]
    assert await store.uplink_reveals(900.0, 10) == [("also", 200.0), ("soon", 200.0)]
    assert await store.uplink_reveals(1000.0, 1) == [("also", 200.0)]
    await store.uplink_touch("soon", fetched=999.0, etag=None, last_modified=None)  # a 304 keeps it
    assert (await store.uplink_state("soon")).reveal_at == 200.0  # type: ignore[union-attr]
    # The policy applied again at that moment: saved without a reveal, it is due no more.
    await store.uplink_save(pulled("soon", row("soon", "1.0.0"), row("soon", "1.1.0"), latest="1.1.0"), actor="u")
    assert await store.uplink_reveals(1000.0, 10) == [("also", 200.0), ("late", 900.0)]


async def test_a_package_with_every_version_held_back_is_pulled_but_has_nothing_to_read(backend: Backend) -> None:
    store = backend.metadata
    held = PulledPackage("young", "npm", [], [], "2026-01-01T00:00:00.000Z", {}, b"raw", '"e"', None, 100.0,
                         {"1.0.0": "cooldown"}, 500.0)
    events, freed = await store.uplink_save(held, actor="u")
    assert [e.type for e in events] == [wire.UPLINK] and freed == []
    assert await store.package_source("young") == "npm"
    state = await store.uplink_state("young")
    assert state is not None and (state.hidden, state.reveal_at) == ({"1.0.0": "cooldown"}, 500.0)
    with pytest.raises(NotFound):
        await store.packument("young", abbreviated=False)
    with pytest.raises(NotFound):
        await store.version_doc("young", "latest")
    # Its versions come out of hiding: the same name now reads like any pulled package.
    events, _ = await store.uplink_save(pulled("young", row("young", "1.0.0"), latest="1.0.0"), actor="u")
    assert len(events) == 1
    assert list(parse((await store.packument("young", abbreviated=False)).body)["versions"]) == ["1.0.0"]
