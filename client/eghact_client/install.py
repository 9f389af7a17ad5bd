"""Placing a lockfile's packages: each tarball from the cache or the nearest source, verified
against the lockfile's integrity, unpacked into a staged plugins folder, then committed with the
lockfile, the state and the project file as one transaction (``eghact_client.transaction``).
An install stages the whole new folder (the packages the load plan places now); an ``activate``
stages only the packages it adds and merges them in (``merge=True``), with the same commit.

Fetching and unpacking run as one pipeline per package, ``concurrency`` at a time (downloads
wait on the network, unpacking on a thread), so the first packages unpack while the last
download. A tarball whose bytes do not match its integrity is refused at once and the install
stops with nothing changed: a mismatch means a source serves other bytes than the registry
resolved (tampering, or a broken cache in between), which failing over would hide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from eghact_common.blocking import run_blocking

from .cache import TarballCache, verify
from .errors import IntegrityMismatch, from_answer
from .extract import extract
from .lockfile import Lock, LockedPackage
from .reporter import Reporter
from .sources import Sources
from .transaction import Stage

__all__ = ["Installed", "place"]

log = logging.getLogger("eghact.client")

TARBALL_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Installed:
    packages: int
    downloaded: int     # fetched from a source
    cached: int         # taken from the client cache
    seconds: float
    #: key -> the edge's X-Cache answer (HIT-MEM, MISS, ...) for each tarball a source sent with one
    x_cache: dict[str, str]
    #: with ``hold``: the committed stage, which the caller must ``release()`` or ``undo()``
    stage: Stage | None = None


async def place(lock: Lock, packages: list[LockedPackage], *, plugins: Path, state_dir: Path,
                files: dict[Path, bytes], cache: TarballCache, sources: Sources, reporter: Reporter,
                concurrency: int = 16, merge: bool = False,
                before_commit: Callable[[Path], Awaitable[None]] | None = None, hold: bool = False) -> Installed:
    """Make ``packages`` (of ``lock``) the plugins folder (``merge``: add them to it) and write
    ``files`` with it, all or nothing. ``before_commit`` is awaited with the staged folder once
    every package is in it (a failure there changes nothing); ``hold`` keeps the commit undoable
    (``Installed.stage``)."""
    started = time.monotonic()
    stage = Stage(state_dir, plugins)
    if merge:
        # parents first: a nested package moves into its parent's folder once that is in place
        stage.merge = sorted((p.folder for p in packages), key=lambda folder: (folder.count("/"), folder))
    counts = {"downloaded": 0, "cached": 0}
    x_cache: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    unpack = asyncio.Semaphore(4)   # threads unpacking at once: CPU work, a few cores at most

    async def one(package: LockedPackage) -> None:
        async with gate:
            data, source, hit = await _tarball(lock, package, cache, sources)
            counts["cached" if source is None else "downloaded"] += 1
            if hit is not None:
                x_cache[package.key] = hit
            reporter.fetched(package.key, source)
            async with unpack:
                await run_blocking(extract, data, stage.folder / package.folder, package=f"{package.name}@"
                                   f"{package.version}")
            reporter.placed(package.key)

    try:
        stage.folder.mkdir()
        reporter.phase("fetch", len(packages))
        tasks = [asyncio.ensure_future(one(p)) for p in packages]
        try:
            await asyncio.gather(*tasks)
        finally:
            # the first failure stops the rest; wait for them so no thread writes into the stage later
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if before_commit is not None:
            await before_commit(stage.folder)
        reporter.phase("commit", 1)
        stage.files.update(files)
        await run_blocking(lambda: stage.commit(hold=hold))
    except BaseException:
        await run_blocking(stage.discard)
        raise
    if not hold:
        await run_blocking(stage.discard)
    seconds = time.monotonic() - started
    log.info("placed %d packages (%d downloaded, %d from the cache) in %.2f s", len(packages),
             counts["downloaded"], counts["cached"], seconds)
    return Installed(len(packages), counts["downloaded"], counts["cached"], seconds, x_cache,
                     stage if hold else None)


async def _tarball(lock: Lock, package: LockedPackage, cache: TarballCache,
                   sources: Sources) -> tuple[bytes, str | None, str | None]:
    """The verified tarball, the source it came from (None: the cache) and its X-Cache."""
    data = await run_blocking(cache.get, package.integrity)
    if data is not None:
        log.debug("%s@%s from the cache", package.name, package.version)
        return data, None, None
    source, response = await sources.request("GET", lock.path_of(package), max_bytes=TARBALL_BYTES)
    if response.status != 200:
        raise from_answer(response.status, response.body, what=f"{package.name}@{package.version}")
    if not await run_blocking(verify, response.body, package.integrity):
        raise IntegrityMismatch(
            f"{package.name}@{package.version} from {source.url} does not match the lockfile's integrity: refused, "
            "nothing was changed", detail={"package": package.name, "version": package.version, "url": response.url,
                                           "integrity": package.integrity})
    await run_blocking(cache.put, package.integrity, response.body)
    hit = next((v for k, v in response.headers.items() if k.lower() == "x-cache"), None)
    if hit is not None:
        log.info("%s@%s from %s: X-Cache %s", package.name, package.version, source.url, hit)
    return response.body, source.url, hit
