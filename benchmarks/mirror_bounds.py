"""Two bounds the mirror benchmark prints beside its ratios: what the origin alone costs an
export (every read an export makes, the answers dropped unparsed) and the byte work a bundle
needs done in C with no per-file cost. ``benchmarks/mirror.py`` explains how to read them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.support import escaped


def http_ceiling(url: str, names: list[str], concurrency: int = 24) -> tuple[float, int]:
    """(seconds, bytes) to fetch ``names``' packuments (both forms) and every tarball over HTTP
    with nothing else done: the most an exporter can get from this origin on this machine."""
    import asyncio

    import aiohttp
    from yarl import URL

    async def run() -> tuple[float, int]:
        total = 0
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
            async def fetch(link: str, accept: str = "application/json") -> bytes:
                nonlocal total
                async with gate, session.get(URL(link, encoded=True), headers={"Accept": accept}) as response:
                    body = await response.read()
                total += len(body)
                return body

            async def package(name: str) -> None:
                full, _ = await asyncio.gather(fetch(f"{url}/{escaped(name)}"), fetch(
                    f"{url}/{escaped(name)}", "application/vnd.npm.install-v1+json"))
                links = [v["dist"]["tarball"] for v in json.loads(full)["versions"].values()]
                await asyncio.gather(*(fetch(link) for link in links))

            await asyncio.gather(*(package(n) for n in names))
        return time.perf_counter() - started, total

    return asyncio.run(run())


def batch_ceiling(url: str, names: list[str], per_request: int = 1000, in_flight: int = 2) -> tuple[float, int]:
    """(seconds, bytes) to read what a full export reads — each package's two packuments and
    tarball list, then every tarball — through the origin's batch read, with the answers
    dropped unparsed: the origin's own share of an export, so the fastest any exporter could
    be against it. (1000 items a request, 2 in flight: the fastest of the settings tried;
    more in flight only contend for the same two cores.) The tarball paths come from a first,
    untimed pass over the tarball lists."""
    import asyncio

    import aiohttp

    from eghact_mirror.client import ABBREVIATED, DISTS

    def path(name: str) -> str:
        return "/" + escaped(name)

    async def post(session: aiohttp.ClientSession, items: list[Any], keep: bool) -> tuple[int, bytes]:
        async with session.post(f"{url}/-/v1/batch?headers=Eghact-Seq,Content-Type", json=items) as response:
            if response.status != 200:
                raise RuntimeError(f"batch read answered {response.status}")
            if keep:
                body = await response.read()
                return len(body), body
            size = 0
            while chunk := await response.content.readany():
                size += len(chunk)
            return size, b""

    async def run() -> tuple[float, int]:
        async with aiohttp.ClientSession() as session:
            tarballs = []
            for start in range(0, len(names), per_request):
                _, body = await post(session, [{"path": path(n), "accept": DISTS}
                                               for n in names[start:start + per_request]], keep=True)
                for line in body.split(b"\n"):
                    if line.startswith(b'{"name"'):
                        doc = json.loads(line)
                        tarballs += [f"/{doc['name']}/-/{row[1]}" for row in doc["dists"]]
            items: list[Any] = [item for n in names for item in (
                path(n), {"path": path(n), "accept": ABBREVIATED}, {"path": path(n), "accept": DISTS})] + tarballs
            queue = [items[start:start + per_request] for start in range(0, len(items), per_request)][::-1]
            total = 0

            async def worker() -> None:
                nonlocal total
                while queue:
                    size, _ = await post(session, queue.pop(), keep=False)
                    total += size  # not `total += await ...`: that reads total before the await

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            return time.perf_counter() - started, total

    return asyncio.run(run())


def native_floor(bundle: Path) -> dict[str, float]:
    """CPU seconds of the byte work no implementation can skip, done by the same C libraries
    in big buffers (no per-file cost at all): for an export, sha512 and zstd level 1 of the
    content; for an import, zstd decompression and sha512. What the bundle tools spend beyond
    these is per-file work and moving bytes between processes."""
    import hashlib

    import zstandard

    spent = {"decompress": 0.0, "sha512": 0.0, "compress_level1": 0.0}
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    digest = hashlib.sha512()
    with open(bundle, "rb") as source:
        reader = zstandard.ZstdDecompressor().stream_reader(source)
        while True:
            started = time.process_time()
            chunk = reader.read(4 << 20)
            spent["decompress"] += time.process_time() - started
            if not chunk:
                break
            started = time.process_time()
            digest.update(chunk)
            spent["sha512"] += time.process_time() - started
            started = time.process_time()
            compressor.compress(chunk)
            spent["compress_level1"] += time.process_time() - started
    compressor.flush()
    return {"export_sha512_and_zstd1_cpu_s": round(spent["sha512"] + spent["compress_level1"], 2),
            "import_unzstd_and_sha512_cpu_s": round(spent["decompress"] + spent["sha512"], 2)}
