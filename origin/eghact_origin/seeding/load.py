"""Loading a generated universe into a registry (``eghact-origin seed``).

Generation lives in :mod:`universe`; this module only stores what it yields, in large
transactions, rendering each packument once per package (see
``SqliteMetadataStore.ingest_sync``) and writing blobs without a per-file fsync, then
syncing the file system once: seeding 10,000 plugins must take minutes, not hours.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future
from dataclasses import dataclass

from eghact_common import names
from eghact_common.wire import ChangeEvent

from ..registry import Registry
from ..storage import NewVersion
from ..tarball import inspect_tarball
from . import universe

SEED_ACTOR = "seed"
BATCH_VERSIONS = 2_000


@dataclass(frozen=True)
class SeedReport:
    packages: int
    versions: int
    bytes: int
    advisories: int
    seconds: float


def _summary(manifest: dict) -> dict:
    block = manifest.get("eghact") or {}
    return {"type": block.get("type", "library")}


def seed_registry(registry: Registry, *, plugins: int, seed: int, workers: int = 1) -> SeedReport:
    started = time.perf_counter()
    store = registry.store
    plan = universe.plan_universe(plugins, seed)
    batch: list[NewVersion] = []
    pending: Future[list[ChangeEvent]] | None = None
    packages = versions = total_bytes = 0
    for package in universe.iter_packages(plan, workers=workers):
        packages += 1
        for seeded in package.versions:
            version = seeded.manifest["version"]
            facts = inspect_tarball(seeded.tarball, name=package.name, version=version,
                                    limits=registry.limits)
            digest = registry.blobs.put(seeded.tarball, durable=False)
            tags = tuple(t for t, v in package.dist_tags.items() if v == version)
            batch.append(NewVersion(
                name=package.name, version=version, doc=seeded.manifest,
                filename=names.tarball_filename(package.name, version), blob_digest=digest,
                integrity=facts.integrity, shasum=facts.shasum, size=facts.size,
                unpacked_size=facts.unpacked_size, file_count=facts.file_count,
                summary=_summary(seeded.manifest), tags=tags, published=seeded.published,
                deprecated=seeded.deprecated,
            ))
            versions += 1
            total_bytes += facts.size
        if len(batch) >= BATCH_VERSIONS:
            # One batch commits on the writer thread while the next is prepared here.
            if pending is not None:
                pending.result()
            pending = store.ingest_submit(batch, actor=SEED_ACTOR)
            batch = []
    if pending is not None:
        pending.result()
    if batch:
        store.ingest_sync(batch, actor=SEED_ACTOR)
    store.flush_audit()
    advisories = universe.advisories(plan)
    for advisory in advisories:
        store.add_advisory_sync({
            "name": advisory.name, "vulnerable_versions": advisory.vulnerable_versions,
            "severity": advisory.severity, "title": advisory.title, "url": advisory.url,
            "cwe": list(advisory.cwe), "cvss": advisory.cvss,
        }, actor=SEED_ACTOR)
    os.sync()  # the blobs were written without per-file fsync
    return SeedReport(packages, versions, total_bytes, len(advisories), time.perf_counter() - started)
