"""Origin benchmark: packument throughput and latency from a warm origin over a seeded
universe (small and multi-megabyte packuments reported separately), and publish latency.

    .venv/bin/python benchmarks/origin.py [--plugins 10000] [--seed 1] [--data DIR]
                                          [--duration 8] [--concurrency 16]

Seeds DIR first when it is empty (the seed time is printed too). The origin runs as its
own process; the load comes from one client process on the same 2-core machine, so
figures are for comparison within one run, not absolute capacity. Every loop is bounded
by count and time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "common"), str(ROOT / "origin"), str(ROOT)]

from tests.support import OriginProcess, cli, manifest, publish_body  # noqa: E402

CORGI = {"Accept": "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"}


def pick_targets(data: Path, small: int, seed: int) -> tuple[list[str], list[str], dict[str, int]]:
    conn = sqlite3.connect(f"file:{data / 'registry.sqlite3'}?mode=ro", uri=True)
    rows = conn.execute("SELECT name, length(full_doc) FROM packages WHERE full_doc IS NOT NULL").fetchall()
    conn.close()
    sizes = dict(rows)
    by_size = sorted(rows, key=lambda r: r[1])
    big = [name for name, size in by_size[-3:] if size > 1_000_000]
    small_pool = [name for name, size in by_size if size < 64 * 1024]
    return random.Random(seed).sample(small_pool, min(small, len(small_pool))), big, sizes


async def load(url: str, names: list[str], *, headers: dict[str, str], duration: float, concurrency: int,
               max_requests: int) -> dict[str, float]:
    latencies: list[float] = []
    received = 0
    errors = 0
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker(offset: int) -> None:
            nonlocal received, errors
            i = offset
            while time.perf_counter() < deadline and len(latencies) < max_requests:
                name = names[i % len(names)]
                i += concurrency
                started = time.perf_counter()
                async with session.get(f"{url}/{name.replace('/', '%2f')}", headers=headers) as response:
                    body = await response.read()
                if response.status != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                received += len(body)

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "mb_s": received / elapsed / 1e6, "avg_kb": received / max(1, len(latencies)) / 1024,
    }


async def publish_latency(url: str, token: str, count: int, big_name: str | None) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    timings: list[float] = []
    big_timings: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            body = publish_body(manifest("bench-publish", f"1.0.{i}"))
            started = time.perf_counter()
            async with session.put(f"{url}/bench-publish", json=body, headers=headers) as response:
                assert response.status == 201, await response.text()
            timings.append((time.perf_counter() - started) * 1000)
        if big_name:
            # A publish to a package with thousands of versions re-renders a multi-MB packument.
            for i in range(min(20, count)):
                body = publish_body(manifest(big_name, f"999.0.{i}"))
                started = time.perf_counter()
                async with session.put(f"{url}/{big_name.replace('/', '%2f')}", json=body,
                                       headers=headers) as response:
                    assert response.status == 201, await response.text()
                big_timings.append((time.perf_counter() - started) * 1000)
    result = {"median_ms": statistics.median(timings), "p99_ms": sorted(timings)[int(len(timings) * 0.99)]}
    if big_timings:
        result["big_median_ms"] = statistics.median(big_timings)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugins", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--publishes", type=int, default=200)
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="eghact-bench-")) / "data"
    if not (data / "registry.sqlite3").exists():
        started = time.perf_counter()
        print(cli("seed", "--data", str(data), "--plugins", str(args.plugins), "--seed", str(args.seed),
                  timeout=1800).stdout.strip())
        print(f"seed wall time: {time.perf_counter() - started:.1f}s")
    token = cli("token", "create", "--data", str(data), "--name", f"bench-{os.getpid()}",
                "--scope", "publish:*").stdout.splitlines()[-1]
    small, big, sizes = pick_targets(data, 500, args.seed)
    print(f"targets: {len(small)} small packuments (median {statistics.median(sizes[n] for n in small) / 1024:.1f} KiB"
          f"), {len(big)} big: " + ", ".join(f"{n} {sizes[n] / 1e6:.1f} MB" for n in big))
    origin = OriginProcess(data).start()
    try:
        async def run() -> dict[str, dict[str, float]]:
            results = {}
            for label, names, headers in [("small full", small, {}), ("small abbreviated", small, CORGI),
                                          ("big full", big, {}), ("big abbreviated", big, CORGI)]:
                if not names:
                    continue
                # Warm: render and cache every target once, then measure.
                await load(origin.url, names, headers=headers, duration=60, concurrency=4, max_requests=len(names))
                results[label] = await load(origin.url, names, headers=headers, duration=args.duration,
                                            concurrency=args.concurrency, max_requests=2_000_000)
            results["publish"] = await publish_latency(origin.url, token, args.publishes, big[-1] if big else None)
            return results

        results = asyncio.run(run())
    finally:
        origin.stop()
    print(f"\n{'packuments':<20}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'MB/s':>10}{'avg KiB':>10}{'errors':>8}")
    for label, r in results.items():
        if label == "publish":
            continue
        print(f"{label:<20}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['mb_s']:>10.1f}"
              f"{r['avg_kb']:>10.1f}{r['errors']:>8.0f}")
    if "small full" in results and "big full" in results:
        ratio = results["big full"]["mb_s"] / results["small full"]["mb_s"]
        print(f"\nbytes/s big vs small (full packuments): {ratio:.2f}x")
    publish = results["publish"]
    print(f"publish latency: median {publish['median_ms']:.1f} ms, p99 {publish['p99_ms']:.1f} ms"
          + (f"; into a multi-MB packument: median {publish['big_median_ms']:.1f} ms" if "big_median_ms" in publish
             else ""))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
