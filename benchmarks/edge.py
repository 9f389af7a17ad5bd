"""Edge benchmark, one run, side by side on one machine and one corpus.

    .venv/bin/python benchmarks/edge.py [--plugins 10000] [--seed 1] [--data DIR] [--duration 10]
                                        [--alpha 1.0] [--quick] [--only throughput|ratio|lag|warming ...]

1. Seeds a universe into DIR (once; reused afterwards) and starts the origin.
2. Warm-hit throughput and p50/p99 with wrk (installed with apt when missing, as is
   nginx), Zipf-distributed over the corpus (abbreviated packuments + latest tarballs),
   every target warmed first: the edge (1 and 2 workers), nginx ``proxy_cache`` in front
   of the same origin, and the origin alone.
3. Memory-tier hit ratio at 10% of the corpus bytes on a Zipf trace: TinyLFU (ours) vs
   plain LRU vs Belady's offline optimum (farthest next use), same trace and sizes.
4. Invalidation lag: publishes at the origin; lag as the edge's histogram records it
   (event time -> purged) and end to end (201 at the publisher -> visible at the edge).
5. Time for a fresh edge to reach a 90% hit ratio (in a 500-request window) under Zipf
   load, counted from the spawn of its process, with and without warming from the
   origin's popular list (its top 10,000 keys, trained by a first edge's stats).

Everything runs on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "common"), str(ROOT / "origin"), str(ROOT / "edge"), str(ROOT)]

from tests.edge.support import EdgeProcess  # noqa: E402
from tests.support import OriginProcess, cli, manifest, publish_body  # noqa: E402

from eghact_edge.entry import OVERHEAD  # noqa: E402
from eghact_edge.tiers.admission import AlwaysAdmit, TinyLfu  # noqa: E402

ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
MAX_PACKUMENT = 256 * 1024


def ensure_tools() -> None:
    if shutil.which("wrk") and shutil.which("nginx"):
        return
    print("installing wrk and nginx with apt ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk", "nginx"], check=True)


def corpus(data: Path) -> list[tuple[str, int]]:
    """(path, bytes) of every abbreviated packument (small enough) and every latest tarball."""
    conn = sqlite3.connect(f"file:{data / 'registry.sqlite3'}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT p.name, length(p.abbrev_doc), v.tarball_file, v.size FROM packages p "
        "JOIN versions v ON v.name = p.name AND v.version = p.latest").fetchall()
    conn.close()
    items = []
    for name, abbrev_size, tarball, size in rows:
        if abbrev_size and abbrev_size <= MAX_PACKUMENT:
            items.append(("/" + name.replace("/", "%2f"), abbrev_size))
            items.append((f"/{name}/-/{tarball}", size))
    return items


def zipf(n: int, length: int, alpha: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    weights = [1.0 / (rank ** alpha) for rank in range(1, n + 1)]
    order = list(range(n))
    rng.shuffle(order)   # popularity is not correlated with name or size
    return [order[i] for i in rng.choices(range(n), weights=weights, k=length)]


# -- 2. warm-hit throughput ---------------------------------------------------------------

LUA = """
paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Accept"] = "%s"})
end
"""


def wrk(url: str, script: Path, duration: int, connections: int = 64) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "non2xx": float(errors.group(1)) if errors else 0.0}


def nginx_conf(root: Path, origin: str, port: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(f"""
worker_processes auto;
user root;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  proxy_cache_path {root}/cache levels=1:2 keys_zone=edge:128m max_size=4g inactive=1h use_temp_path=off;
  client_body_temp_path {root}/t1; proxy_temp_path {root}/t2; fastcgi_temp_path {root}/t3;
  uwsgi_temp_path {root}/t4; scgi_temp_path {root}/t5;
  upstream origin {{ server {origin.removeprefix("http://")}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_key $request_uri$http_accept;
      proxy_cache_valid 200 10m;
      proxy_cache_lock on;
      proxy_cache_use_stale error timeout updating http_500 http_502 http_503;
      proxy_cache_background_update on;
    }}
  }}
}}
""")
    return conf


async def warm_all(url: str, paths: list[str]) -> int:
    ok = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
        sem = asyncio.Semaphore(16)

        async def one(path: str) -> None:
            nonlocal ok
            async with sem, session.get(url + path, headers={"Accept": ABBREVIATED}) as r:
                await r.read()
                ok += r.status == 200

        for _ in range(2):
            await asyncio.gather(*(one(p) for p in paths))
    return ok


# -- 3. hit ratios ------------------------------------------------------------------------

PARTS = ("throughput", "ratio", "lag", "warming")


def simulate(policy: str, trace: list[int], sizes: list[int], capacity: int) -> float:
    if policy == "belady":
        return belady(trace, sizes, capacity)
    from eghact_edge.entry import Entry
    from eghact_edge.freshness import Timing
    from eghact_edge.tiers.memory import MemoryTier

    timing = Timing(0.0, 0.0, 1e9, 0.0, 0.0, True)
    bodies = {}
    memory = MemoryTier(capacity, admission=TinyLfu.for_bytes(capacity) if policy == "tinylfu"
                        else AlwaysAdmit())
    hits = 0
    for k in trace:
        key = str(k)
        # What the edge does per request: one look-up (counted for admission), a store on a miss.
        if memory.lookup(key) is not None:
            hits += 1
            continue
        body = bodies.get(sizes[k])
        if body is None:
            body = bodies[sizes[k]] = b"\0" * sizes[k]
        memory.store(Entry(key, "x", {"identity": body}, "", None, (), None, timing))
    return hits / len(trace)


def belady(trace: list[int], sizes: list[int], capacity: int) -> float:
    """Offline: on a miss, admit, then evict the items used farthest in the future (or never)
    until it fits; an item never used again is not admitted at all."""
    nxt = [0] * len(trace)
    last: dict[int, int] = {}
    for i in range(len(trace) - 1, -1, -1):
        nxt[i] = last.get(trace[i], 1 << 60)
        last[trace[i]] = i
    held: dict[int, int] = {}          # key -> its next use
    heap: list[tuple[int, int]] = []   # (-next use, key), lazily invalidated
    used, hits = 0, 0
    for i, k in enumerate(trace):
        w = sizes[k] + OVERHEAD
        if k in held:
            hits += 1
            held[k] = nxt[i]
            heapq.heappush(heap, (-nxt[i], k))
            continue
        if nxt[i] >= 1 << 60 or w > capacity:
            continue
        held[k] = nxt[i]
        heapq.heappush(heap, (-nxt[i], k))
        used += w
        while used > capacity:
            neg, victim = heapq.heappop(heap)
            if held.get(victim) != -neg:
                continue
            del held[victim]
            used -= sizes[victim] + OVERHEAD
    return hits / len(trace)


# -- 4. invalidation lag ----------------------------------------------------------------------

def bucket_quantile(text: str, q: float) -> float:
    buckets = [(float(m.group(1)), float(m.group(2))) for m in re.finditer(
        r'eghact_edge_invalidation_lag_seconds_bucket\{le="([\d.e+]+)"\} ([\d.]+)', text)]
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound * 1000
    return float("inf")


async def lag(origin: OriginProcess, admin: str, edge_url: str, rounds: int) -> dict[str, float]:
    end_to_end = []
    run = int(time.time())   # the corpus is reused between runs; versions are immutable
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
        for i in range(rounds):
            name = f"bench-lag-{run}"
            version = f"1.0.{i}"
            body = json.dumps(publish_body(manifest(name, version)))
            async with session.get(f"{edge_url}/{name}") as r:   # cached at the edge
                await r.read()
            async with session.put(f"{origin.url}/{name}", data=body, headers=auth) as r:
                assert r.status == 201, await r.text()
            acked = time.perf_counter()
            for _ in range(2000):
                async with session.get(f"{edge_url}/{name}") as r:
                    doc = await r.read()
                if f'"{version}"'.encode() in doc:
                    end_to_end.append((time.perf_counter() - acked) * 1000)
                    break
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.02)
        async with session.get(f"{edge_url}/-/metrics") as r:
            text = await r.text()
    end_to_end.sort()
    return {"hist_p50": bucket_quantile(text, 0.5), "hist_p99": bucket_quantile(text, 0.99),
            "e2e_p50": end_to_end[len(end_to_end) // 2],
            "e2e_p99": end_to_end[min(len(end_to_end) - 1, int(len(end_to_end) * 0.99))]}


# -- 5. time to 90% hits --------------------------------------------------------------------

async def drive(url: str, paths: list[str], trace: list[int], *, seconds: float, window: int = 500,
                concurrency: int = 8, since: float | None = None) -> tuple[float | None, list[float]]:
    """Run the trace against ``url``; the time at which a window of requests first has >= 90% hits,
    counted from ``since`` (a ``perf_counter`` reading; default: now)."""
    results: list[tuple[float, bool]] = []
    started = time.perf_counter() if since is None else since
    position = 0
    reached: float | None = None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            nonlocal position
            while time.perf_counter() - started < seconds and position < len(trace):
                path = paths[trace[position]]
                position += 1
                async with session.get(url + path, headers={"Accept": ABBREVIATED}) as r:
                    await r.read()
                    results.append((time.perf_counter() - started, r.headers.get("X-Cache", "").startswith("HIT")))

        async def watch() -> None:
            nonlocal reached
            while time.perf_counter() - started < seconds and position < len(trace):
                await asyncio.sleep(0.25)
                recent = results[-window:]
                if len(recent) == window and sum(hit for _, hit in recent) >= 0.9 * window:
                    reached = recent[-1][0]
                    return

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        watcher.cancel()
    curve = []
    for start in range(0, len(results), max(1, len(results) // 10)):
        chunk = results[start:start + window]
        curve.append(round(sum(h for _, h in chunk) / max(1, len(chunk)), 2))
    return reached, curve


# -- main -----------------------------------------------------------------------------------

async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugins", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "eghact-bench-edge")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="small universe, short runs (a smoke test)")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts (repeatable)")
    args = parser.parse_args()
    parts = set(args.only or PARTS)
    if args.quick:
        args.plugins, args.duration = 500, 3
    if "throughput" in parts:
        ensure_tools()
    data = args.data / f"origin-{args.plugins}-{args.seed}"
    if not (data / "registry.sqlite3").exists():
        t = time.perf_counter()
        print(cli("seed", "--data", str(data), "--plugins", str(args.plugins), "--seed", str(args.seed),
                  timeout=1800).stdout.strip(), f"({time.perf_counter() - t:.0f}s)", flush=True)
    admin = cli("token", "create", "--data", str(data), "--name", "bench", "--scope", "admin").stdout.split()[-1]
    edge_token = cli("token", "create", "--data", str(data), "--name", "bench-edge",
                     "--scope", "edge").stdout.split()[-1]
    items = corpus(data)
    paths = [p for p, _ in items]
    sizes = [s for _, s in items]
    print(f"corpus: {len(items)} keys, {sum(sizes) / 1e6:.1f} MB (abbreviated packuments <= 256 KiB + latest "
          f"tarballs), Zipf alpha {args.alpha}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="eghact-bench-edge-"))
    origin = OriginProcess(data, ("--quiet",)).start()
    started: list[EdgeProcess] = []
    try:
        trace = zipf(len(paths), 20_000, args.alpha, args.seed)
        (work / "paths.txt").write_text("\n".join(paths[i] for i in trace) + "\n")
        script = work / "zipf.lua"
        script.write_text(LUA % (work / "paths.txt", ABBREVIATED))
        distinct = sorted({paths[i] for i in trace})

        # 2. warm-hit throughput
        if "throughput" in parts:
            await throughput(origin.url, work, script, distinct, args.duration, started)

        # 3. hit ratios at 10% of the corpus bytes
        if "ratio" in parts:
            hit_ratios(paths, sizes, args.alpha, args.seed)

        # 4. invalidation lag
        if "lag" in parts:
            edge = EdgeProcess(origin.url, work / "edge-lag", args=("--rate", "0")).start()
            started.append(edge)
            lags = await lag(origin, admin, edge.url, 40 if not args.quick else 10)
            edge.stop()
            print("\ninvalidation lag (40 publishes): histogram (event -> purged) p50 <= "
                  f"{lags['hist_p50']:.0f} ms, p99 <= {lags['hist_p99']:.0f} ms (bucket bounds); "
                  f"end to end (201 -> visible at the edge) p50 {lags['e2e_p50']:.1f} ms, p99 {lags['e2e_p99']:.1f} ms")

        # 5. time to 90% hits, with and without warming
        if "warming" in parts:
            await time_to_hits(origin.url, work, paths, args, edge_token, started)
    finally:
        for edge in started:
            if edge.proc and edge.proc.poll() is None:
                edge.stop()
        origin.stop()
        shutil.rmtree(work, ignore_errors=True)


async def throughput(origin_url: str, work: Path, script: Path, distinct: list[str], duration: int,
                     started: list[EdgeProcess]) -> None:
    rows = {}
    big = ("--memory-bytes", "2G", "--rate", "1e9", "--burst", "1e9", "--no-warm")
    for workers in (1, 2):
        edge = EdgeProcess(origin_url, work / f"edge-w{workers}", args=(*big, "--workers", str(workers))).start()
        started.append(edge)
        await warm_all(edge.url, distinct)
        rows[f"edge ({workers} worker{'s' if workers > 1 else ''})"] = wrk(edge.url, script, duration)
        edge.stop()
    conf = nginx_conf(work / "nginx", origin_url, 18_480)
    nginx = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        await warm_all("http://127.0.0.1:18480", distinct)
        rows["nginx proxy_cache"] = wrk("http://127.0.0.1:18480", script, duration)
    finally:
        nginx.terminate()
        nginx.wait(10)
    rows["origin alone"] = wrk(origin_url, script, duration)
    print(f"\nwarm-hit throughput, wrk -t1 -c64, {duration}s each, {len(distinct)} distinct Zipf targets:")
    print(f"  {'target':<22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, row in rows.items():
        print(f"  {name:<22}{row['rps']:>10.0f}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['non2xx']:>9.0f}")
    ng = rows["nginx proxy_cache"]["rps"]
    for name in ("edge (1 worker)", "edge (2 workers)", "origin alone"):
        print(f"  {name} / nginx = {rows[name]['rps'] / ng:.2f}x", flush=True)


def hit_ratios(paths: list[str], sizes: list[int], alpha: float, seed: int) -> None:
    sim = zipf(len(paths), 200_000, alpha, seed + 1)
    capacity = sum(s + OVERHEAD for s in sizes) // 10
    ratios = {p: simulate(p, sim, sizes, capacity) for p in ("lru", "tinylfu", "belady")}
    print(f"\nmemory-tier hit ratio at 10% of the corpus ({capacity / 1e6:.1f} MB), 200k Zipf requests:")
    print(f"  LRU {ratios['lru']:.3f}   TinyLFU (ours) {ratios['tinylfu']:.3f}   Belady (optimum) "
          f"{ratios['belady']:.3f}   -> ours - LRU = {100 * (ratios['tinylfu'] - ratios['lru']):+.1f} points, "
          f"ours - Belady = {100 * (ratios['tinylfu'] - ratios['belady']):+.1f} points", flush=True)


async def time_to_hits(origin_url: str, work: Path, paths: list[str], args: argparse.Namespace, edge_token: str,
                       started: list[EdgeProcess]) -> None:
    trainer = EdgeProcess(origin_url, work / "edge-train", args=("--rate", "0", "--token", edge_token,
                                                                 "--no-warm")).start()
    started.append(trainer)
    await drive(trainer.url, paths, zipf(len(paths), 40_000, args.alpha, args.seed + 2), seconds=30)
    trainer.stop()   # its last stats batch goes out on stop
    load = zipf(len(paths), 200_000, args.alpha, args.seed + 3)
    times = {}
    cap = 60.0 if not args.quick else 20.0
    print("\ntime to 90% hits in a 500-request window, from the edge's spawn (8 client connections):")
    for label, extra in (("without warming", ("--no-warm",)),
                         ("with warming", ("--warm-top", "10000"))):
        edge_args = ("--rate", "0", "--token", edge_token, *extra, "--memory-bytes", "1G")
        # The clock starts before the process does: start-up and warming count.
        spawned = time.perf_counter()
        edge = EdgeProcess(origin_url, work / f"edge-{label.replace(' ', '-')}", args=edge_args).start()
        started.append(edge)
        reached, curve = await drive(edge.url, paths, load, seconds=cap, since=spawned)
        edge.stop()
        times[label] = reached
        shown = f"{reached:.1f}s" if reached is not None else f"not within {cap:.0f}s"
        print(f"  {label:<16} 90% hits after {shown}; hit ratio per tenth of the run {curve}", flush=True)
    cold, warm = times["without warming"], times["with warming"]
    if warm:
        print(f"  warming reaches 90% {(cold or cap) / warm:.1f}x sooner"
              + (" (at least; cold never got there)" if cold is None else ""))


if __name__ == "__main__":
    asyncio.run(main())
