"""The registry's domain operations: what a publish, a deprecation, an unpublish or a read
means, independent of HTTP. Handlers translate requests into these calls.

Publish path (DESIGN §2): auth -> manifest validation (every problem at once) -> tarball
checks -> blob written durably -> one metadata transaction (version, dist-tags,
packuments, event, audit) -> the local caches of rendered bytes invalidated before the
201 goes out, so a client reads its own write from this node at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from eghact_common import integrity, names, semver, wire
from eghact_common.blocking import run_blocking
from eghact_common.errors import (
    BadRequest,
    EghactError,
    IntegrityMismatch,
    InvalidManifest,
    NotFound,
    PayloadTooLarge,
    Unpublished,
    UplinkedPackage,
    VersionExists,
)
from eghact_common.manifest import Manifest, NpmWarning

from . import packument
from .auth import AccessPolicy, Principal
from .storage import BlobStore, Lookup, MetadataStore, NewVersion, StoredDoc, TarballRecord
from .tarball import TarballLimits, inspect_tarball


@dataclass(frozen=True)
class Rendered:
    """Bytes ready to send, with their validator and the seq they reflect."""

    body: bytes
    etag: str
    seq: int
    public_seq: int  # the same moment in the public numbering (storage/public_feed.py)

    def seq_for(self, *, public_numbering: bool) -> int:
        return self.public_seq if public_numbering else self.seq


@dataclass(frozen=True)
class PublishOutcome:
    name: str
    version: str
    seq: int
    rev: str
    warnings: tuple[NpmWarning, ...] = ()


def _render(stored: StoredDoc, base_url: str, etag: bool = True) -> Rendered:
    body = packument.materialize(stored.body, base_url)
    return Rendered(body, packument.strong_etag(body) if etag else "", stored.seq, stored.public_seq)


def _finish_lookups(stored: list[StoredDoc | TarballRecord | EghactError],
                    base_url: str, etags: bool) -> list[Rendered | TarballRecord | EghactError]:
    done: list[Rendered | TarballRecord | EghactError] = []
    for found in stored:
        if isinstance(found, StoredDoc):
            done.append(_render(found, base_url, etags))
        elif isinstance(found, TarballRecord) and found.unpublished:
            done.append(Unpublished(f"{found.name}@{found.version} has been unpublished",
                                    detail={"name": found.name, "version": found.version}))
        else:
            done.append(found)
    return done


def _tag_name(tag: str) -> str:
    # npm refuses tags that parse as ranges: `npm install pkg@1.x` must mean a range.
    if not tag or not tag.replace("-", "").replace("_", "").replace(".", "").isalnum() or \
            semver.valid_range(tag) is not None:
        raise BadRequest(f"invalid dist-tag {tag!r}: a tag is a word like latest or next, never a range",
                         code="invalid_tag")
    return tag


class Registry:
    """Domain facade over a metadata store and a blob store."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        *,
        access: AccessPolicy,
        limits: TarballLimits,
        cache_bytes: int = 256 * 1024 * 1024,
        on_change: Callable[[list[wire.ChangeEvent]], Awaitable[None]] | None = None,
    ):
        self.store = store
        self.blobs = blobs
        self.access = access
        self.limits = limits
        self._rendered: LRUCache[tuple[str, bool, str], Rendered] = LRUCache(
            maxsize=cache_bytes, getsizeof=lambda r: len(r.body) + 200
        )
        self._variants: dict[str, set[tuple[str, bool, str]]] = {}
        self._generation: dict[str, int] = {}
        self._on_change = on_change

    # -- cache of rendered bytes ----------------------------------------------------

    def invalidate(self, events: list[wire.ChangeEvent]) -> None:
        """Drop what the events changed: a subscriber of the change dispatcher (feed.py)."""
        for event in events:
            name = event.name
            self._generation[name] = self._generation.get(name, 0) + 1
            for key in self._variants.pop(name, ()):
                self._rendered.pop(key, None)

    async def committed(self, events: list[wire.ChangeEvent]) -> None:
        """Events another part committed (a pull from an uplink): delivered before it answers."""
        await self._changed(events)

    async def _refuse_uplinked(self, name: str) -> None:
        # A pulled copy is the uplink's: a change here would be lost at the next refresh.
        source = await self.store.package_source(name)
        if source is not None and source != "local":
            raise UplinkedPackage.of(name, source)

    async def _changed(self, events: list[wire.ChangeEvent]) -> None:
        # Awaited before the response: the dispatcher has delivered our events (this cache
        # among its subscribers) when it returns. Without one (the CLI) we are the only cache.
        if self._on_change is not None:
            await self._on_change(events)
        else:
            self.invalidate(events)

    async def packument(self, name: str, *, abbreviated: bool, base_url: str) -> Rendered:
        key = (name, abbreviated, base_url)
        hit = self._rendered.get(key)
        if hit is not None:
            return hit
        generation = self._generation.get(name, 0)
        stored = await self.store.packument(name, abbreviated=abbreviated)
        if len(stored.body) > 512 * 1024:  # multi-MB packuments: splice and hash off the loop
            rendered = await run_blocking(_render, stored, base_url)
        else:
            rendered = _render(stored, base_url)
        # A write that committed while we read must not be shadowed by our older bytes.
        if self._generation.get(name, 0) == generation:
            self._rendered[key] = rendered
            self._variants.setdefault(name, set()).add(key)
        return rendered

    async def version(self, name: str, spec: str, *, base_url: str) -> Rendered:
        stored = await self.store.version_doc(name, spec)
        return _render(stored, base_url)

    async def tarball(self, name: str, filename: str) -> TarballRecord:
        record = await self.store.tarball(name, filename)
        if record.unpublished:
            raise Unpublished(f"{name}@{record.version} has been unpublished",
                              detail={"name": name, "version": record.version})
        return record

    async def lookup_many(self, lookups: list[Lookup], *, base_url: str,
                          etags: bool = True) -> list[Rendered | TarballRecord | EghactError]:
        """Many reads at once (the batch read): packuments and version documents rendered,
        tarball records (the caller reads their blobs), or the error each single read raises.
        One snapshot and two thread hops for them all, instead of a hop per read; the rendered
        cache is bypassed, as a bulk reader would only churn it. ``etags=False`` leaves
        ``Rendered.etag`` empty, for a reader that will not send it: hashing every document
        is a good part of the cost of a bulk read."""
        stored = await self.store.lookup_many(lookups)
        return await run_blocking(_finish_lookups, stored, base_url, etags)

    # -- writes ---------------------------------------------------------------------

    async def put_package(self, principal: Principal | None, name: str, body: dict[str, Any],
                          *, allow_unpublish: bool = False, takeover: bool = False) -> dict[str, Any]:
        """``PUT /{name}``: a publish when it carries ``_attachments``, else a metadata
        update (npm deprecate sends the whole packument back without attachments).
        ``takeover``: an admin publishes over a name pulled from an uplink, which becomes local
        for ever (its pulled versions are unpublished)."""
        if body.get("name", name) != name or body.get("_id", name) != name:
            raise BadRequest(f"the document names {body.get('name')!r} but the URL names {name!r}",
                             code="name_mismatch")
        if body.get("_attachments"):
            outcome = await self._publish(principal, name, body, takeover=takeover)
            answer: dict[str, Any] = {"ok": True, "id": outcome.name, "rev": outcome.rev, "seq": outcome.seq}
            if outcome.warnings:  # npm prints none of it; our own clients can
                answer["warnings"] = [warning.to_json() for warning in outcome.warnings]
            return answer
        return await self._update_metadata(principal, name, body, allow_unpublish=allow_unpublish)

    async def _publish(self, principal: Principal | None, name: str, body: dict[str, Any], *,
                       takeover: bool = False) -> PublishOutcome:
        actor = self.access.check_publish(principal, name)
        if takeover:
            self.access.check_admin(principal, "take over a name pulled from an uplink")
        else:
            await self._refuse_uplinked(name)
        # Names valid only for old packages (`events`, `JSONStream`) are accepted, as the npm
        # registry serves them; the manifest's warnings say so (DESIGN §2).
        names.validate_name(name, legacy=True)
        versions = body.get("versions")
        attachments = body.get("_attachments")
        if not isinstance(versions, dict) or len(versions) != 1:
            raise BadRequest("a publish carries exactly one version in 'versions'", code="bad_publish_body")
        if not isinstance(attachments, dict) or len(attachments) != 1:
            raise BadRequest("a publish carries exactly one tarball in '_attachments'", code="bad_publish_body")
        (version_key, doc), = versions.items()
        if not isinstance(doc, dict):
            raise BadRequest("the version document must be an object", code="bad_publish_body")
        manifest = Manifest.from_package_json(doc)
        if manifest.name != name or version_key != manifest.version:
            raise InvalidManifest([f"versions[{version_key!r}]: name/version {manifest.name}@{manifest.version} "
                                   f"do not match the publish of {name}@{version_key}"])
        version = manifest.version
        tarball = await self._decode_attachment(next(iter(attachments.values())))
        facts = await run_blocking(inspect_tarball, tarball, name=name, version=version, limits=self.limits)
        self._check_client_digests(doc.get("dist"), facts.integrity, facts.shasum)
        tags = [_tag_name(t) for t, v in (body.get("dist-tags") or {}).items() if v == version] or ["latest"]
        state = await self._state_or_none(name)
        if state is not None and version in state.versions:
            raise VersionExists(f"{name}@{version} already exists; versions are immutable",
                                detail={"name": name, "version": version})
        if takeover:  # only now: a publish refused above leaves the pulled copy as it was
            taken, unused = await self.store.uplink_takeover(name, actor=actor.name)
            for gone in unused:
                await self._drop_blob_if_unused(gone, name)
            await self._changed(taken)
        digest = await run_blocking(self.blobs.put, tarball)
        new = NewVersion(
            name=name, version=version, doc=doc, filename=names.tarball_filename(name, version),
            blob_digest=digest, integrity=facts.integrity, shasum=facts.shasum, size=facts.size,
            unpacked_size=facts.unpacked_size, file_count=facts.file_count, summary=manifest.to_summary(),
            tags=tuple(tags),
        )
        try:
            event = await self.store.publish(new, actor=actor.name)
        except BaseException:
            await self._drop_blob_if_unused(digest, name)
            raise
        await self._changed([event])
        return PublishOutcome(name, version, event.seq, packument.revision(name, event.seq), manifest.warnings)

    async def _decode_attachment(self, attachment: Any) -> bytes:
        if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
            raise BadRequest("the attachment must be {content_type, data: base64, length}",
                             code="invalid_attachment")
        encoded = attachment["data"]
        if len(encoded) * 3 // 4 > self.limits.max_bytes + 3:
            raise PayloadTooLarge(f"tarball over the {self.limits.max_bytes} byte limit",
                                  code="tarball_too_large", detail={"limit": self.limits.max_bytes})
        try:
            # A 50 MB tarball is ~67 MB of base64: decoding it would stall every other request.
            if len(encoded) > 256 * 1024:
                data = await run_blocking(base64.b64decode, encoded, validate=True)
            else:
                data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("the attachment data is not valid base64", code="invalid_attachment") from exc
        length = attachment.get("length")
        if length is not None and length != len(data):
            raise BadRequest(f"the attachment says {length} bytes but holds {len(data)}",
                             code="invalid_attachment")
        return data

    @staticmethod
    def _check_client_digests(dist: Any, server_integrity: str, server_shasum: str) -> None:
        if not isinstance(dist, dict):
            return
        claimed = dist.get("integrity")
        if claimed:
            try:
                algorithms = {algo for algo, _ in integrity.parse_sri(str(claimed))}
            except ValueError as exc:
                raise IntegrityMismatch(f"unreadable integrity {claimed!r}") from exc
            if "sha512" in algorithms and server_integrity not in str(claimed).split():
                raise IntegrityMismatch("the tarball does not match the integrity the client sent",
                                        detail={"client": claimed, "server": server_integrity})
        shasum = dist.get("shasum")
        if shasum and str(shasum).lower() != server_shasum:
            raise IntegrityMismatch("the tarball does not match the shasum the client sent",
                                    detail={"client": shasum, "server": server_shasum})

    async def _drop_blob_if_unused(self, digest: str, name: str) -> None:
        # A rejected publish must leave nothing behind; the same bytes may still back
        # another version (content addressing), in which case the blob stays.
        with contextlib.suppress(Exception):
            if not await self.store.digest_in_use(digest):
                await run_blocking(self.blobs.delete, digest)

    async def _state_or_none(self, name: str) -> Any:
        try:
            return await self.store.package_state(name)
        except NotFound:
            return None

    async def _update_metadata(self, principal: Principal | None, name: str, body: dict[str, Any],
                               *, allow_unpublish: bool) -> dict[str, Any]:
        actor = self.access.check_publish(principal, name)
        await self._refuse_uplinked(name)
        state = await self.store.package_state(name)
        versions = body.get("versions")
        if not isinstance(versions, dict):
            raise BadRequest("the document has no 'versions' object", code="bad_publish_body")
        messages: dict[str, str] = {}
        for version, doc in versions.items():
            current = state.versions.get(version)
            if current is None or current.unpublished:
                raise BadRequest(f"{name}@{version} is not published here; a publish must carry its tarball",
                                 code="missing_attachment")
            if isinstance(doc, dict) and "deprecated" in doc:
                message = doc["deprecated"] if isinstance(doc["deprecated"], str) else ""
                if message != (current.deprecated or ""):
                    messages[version] = message
        removed = [v for v, s in state.versions.items() if not s.unpublished and v not in versions]
        events: list[wire.ChangeEvent] = []
        if removed:
            if not allow_unpublish:
                raise BadRequest("versions missing from the document; unpublish goes through /-rev/",
                                 code="bad_publish_body")
            events += await self.unpublish(principal, name, removed, reason="unpublished by npm client")
        if messages:
            deprecations = await self.store.deprecate(name, messages, actor=actor.name)
            await self._changed(deprecations)
            events += deprecations
        seq = events[-1].seq if events else state.seq
        return {"ok": True, "id": name, "rev": packument.revision(name, seq)}

    async def unpublish(self, principal: Principal | None, name: str, versions: list[str] | None,
                        *, reason: str) -> list[wire.ChangeEvent]:
        """Tombstone versions (all when ``versions`` is None). Admin only."""
        actor = self.access.check_admin(principal, "unpublish")
        await self._refuse_uplinked(name)
        state = await self.store.package_state(name)
        targets = versions if versions is not None else [v for v, s in state.versions.items() if not s.unpublished]
        events, unused = await self.store.unpublish(name, targets, reason=reason, actor=actor.name)
        for digest in unused:
            await run_blocking(self.blobs.delete, digest)
        await self._changed(events)
        return events

    async def unpublish_tarball(self, principal: Principal | None, name: str, filename: str) -> None:
        record = await self.store.tarball(name, filename)
        if not record.unpublished:
            await self.unpublish(principal, name, [record.version], reason="tarball deleted by npm client")
        else:
            self.access.check_admin(principal, "unpublish")

    async def set_dist_tag(self, principal: Principal | None, name: str, tag: str,
                           version: str | None) -> wire.ChangeEvent:
        actor = self.access.check_publish(principal, name)
        await self._refuse_uplinked(name)
        if version is not None and semver.valid(version) is None:
            raise BadRequest(f"{version!r} is not a version", code="invalid_version")
        event = await self.store.set_dist_tag(name, _tag_name(tag), version, actor=actor.name)
        await self._changed([event])
        return event
