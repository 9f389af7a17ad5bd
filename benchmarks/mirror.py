"""Mirror benchmark: export and import throughput beside ``tar --zstd`` of the same files,
peak RSS of a full export at two bundle sizes, and an incremental bundle's size against what
changed — on a seeded universe served by a real origin process.

    .venv/bin/python benchmarks/mirror.py [--data DIR] [--plugins 10000] [--seed 1]
                                          [--changes 100] [--work DIR] [--keep] [--repeat 3]

``--data`` reuses a seeded data dir (seeding 10,000 plugins takes a minute or two); an empty or
missing one is seeded first. The run publishes, deprecates and unpublishes a few versions in
it (for the incremental bundle), so a reused dir grows a little each run.

Throughput is the bundle's content bytes (packuments as served, tarballs, events) divided by
wall time: ``eghact-mirror export`` from start to exit against ``tar --zstd -cf`` of the same
files extracted to disk, and ``eghact-mirror import`` (verify + stage + mirror-apply) against
``tar --zstd -xf``. Everything runs on this machine at once (origin, exporter, tar), so the
figures compare within one run; the load average is printed beside them. The comparison is
made ``--repeat`` times in rounds (a full export, then tar's extraction and creation of its
files, then an import), each of ours set against tar's of the same round, and the ratios'
median is reported: a shared machine drifts within minutes, so only side-by-side pairs are
comparable. (The origin stays up through the rounds, idle while tar and the import run.)
Each step's CPU seconds (user + system; for the export the origin's too) are printed beside
its wall time, as the steadier figure on a shared machine. tar's own CPU seconds also show how
the machine's file operations are doing: when they are several times their quiet value, tar
(mostly system calls) slows far more than the bundle tools (mostly user code), and the
ratios read high. Compare runs whose tar CPU seconds agree, and take the quiet ones for the
target (on this project's 2-core VM, tar's create took 3.9 CPU-s quiet and up to 15 slowed).

Each timed step starts after a ``sync``, and the big trees (tar's extractions, the mirrors,
the staged copy) are removed only after the last one: on a file system that discards freed
blocks, deleting ~100,000 files slows the file creation that follows for a while, which
penalised whichever step came next (measured: staging took 3x as long in a directory where
such a tree had just been removed).

Two figures bound what any exporter or importer could reach here, and are printed beside the
ratios: the origin's own share of a full export (every read the export makes, through the
batch read, the answers dropped unparsed: ``origin_serve_only_full``), and the byte work a
bundle needs done in C in big buffers with no per-file cost (``native_floor``: sha512 and
zstd level 1 for an export, zstd decompression and sha512 for an import).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / p) for p in ("common", "origin", "mirror-sync")] + [str(ROOT)]

from tests.support import PYTHONPATH, OriginProcess, cli, escaped, manifest, publish_body, tarball_for  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": PYTHONPATH}
MB = 1e6


def ensure_zstd() -> None:
    """``tar --zstd`` runs the zstd program; install it (Debian/Ubuntu) when it is missing."""
    if shutil.which("zstd"):
        return
    print("zstd is missing: apt-get install zstd", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "zstd"], check=True)


CPU = {"last": 0.0}  # CPU seconds (user + system) of the last timed command, beside its wall time


def process_cpu(pid: int) -> float:
    """CPU seconds a running process has used so far (Linux: /proc/PID/stat, utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, the process's own peak RSS in MB, its stdout); raises when it fails.
    ``wait4`` reports the one child's figures (RUSAGE_CHILDREN would keep the maximum of all);
    its CPU seconds are left in ``CPU["last"]``: on a shared machine, CPU time is the steadier
    figure when wall times drift."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        CPU["last"] = usage.ru_utime + usage.ru_stime
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def mirror(*args: str) -> list[str]:
    return [sys.executable, "-m", "eghact_mirror.cli", *args]


def content_bytes(bundle: Path, trust: Path) -> tuple[int, int]:
    """(content bytes, files) from the bundle's verified record."""
    record = json.loads(subprocess.run(mirror("verify", str(bundle), "--trust", str(trust), "--json"),
                                       capture_output=True, text=True, env=ENV, check=True).stdout)
    return record["counts"]["content_bytes"], record["counts"]["files_checked"]


def tar_baseline(bundle: Path, work: Path, run: int) -> tuple[float, float, int, float, float]:
    """(tar --zstd -xf seconds, tar --zstd -cf seconds, bytes on disk, and the CPU seconds of
    each, zstd's included) for the bundle's files, which stay in ``work/tar-files-RUN`` until
    the end (see the module docstring)."""
    files = work / f"tar-files-{run}"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir()
    subprocess.run(["sync"], check=True)
    extract, _, _ = timed(["tar", "--zstd", "-xf", str(bundle), "-C", str(files)])
    extract_cpu = CPU["last"]
    size = sum(p.stat().st_size for p in files.rglob("*") if p.is_file())
    subprocess.run(["sync"], check=True)
    create, _, _ = timed(["tar", "--zstd", "-cf", str(work / "baseline.tar.zst"), "-C", str(files), "."])
    (work / "baseline.tar.zst").unlink()
    return extract, create, size, extract_cpu, CPU["last"]


def make_changes(url: str, admin: str, names: list[str], count: int) -> int:
    """Publish ``count`` new versions of existing packages (5 KB tarballs, like the seeded ones),
    deprecate a tenth of them and unpublish a twentieth; returns the new tarball bytes."""
    stamp = int(time.time())
    new_bytes = 0
    touched = names[:: max(1, len(names) // count)][:count]
    for i, name in enumerate(touched):
        version = f"{stamp}.0.{i}"
        doc = manifest(name, version)
        payload = base64.b64encode(os.urandom(3600))  # incompressible, like a minified bundle in a .tgz
        tarball = tarball_for(doc, {"lib.js": b"module.exports = '" + payload + b"';\n"})
        new_bytes += len(tarball)
        _send("PUT", f"{url}/{escaped(name)}", publish_body(doc, tarball), admin)
    for name in touched[: count // 10]:
        doc = json.loads(_get(f"{url}/{escaped(name)}"))
        version = doc["dist-tags"]["latest"]
        doc["versions"][version]["deprecated"] = "benchmark deprecation"
        _send("PUT", f"{url}/{escaped(name)}", doc, admin)
    for name in touched[count // 10: count // 10 + count // 20]:
        doc = json.loads(_get(f"{url}/{escaped(name)}"))
        versions = list(doc["versions"])
        if len(versions) > 2:
            del doc["versions"][versions[0]]
            _send("PUT", f"{url}/{escaped(name)}/-rev/1", doc, admin)
    return new_bytes


def _get(url: str, accept: str | None = None) -> bytes:
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def _send(method: str, url: str, body: Any, token: str) -> None:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60):
        pass


def feed_names(url: str) -> list[str]:
    names: set[str] = set()
    since = 0
    while True:
        page = json.loads(_get(f"{url}/-/v1/changes?since={since}&limit=10000"))
        names.update(e["name"] for e in page["results"] if e["type"] != "advisory")
        if page["last_seq"] <= since:
            return sorted(names)
        since = page["last_seq"]


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


def changed_packuments(url: str, names: list[str]) -> int:
    return sum(len(_get(f"{url}/{escaped(n)}")) + len(_get(f"{url}/{escaped(n)}",
                                                           "application/vnd.npm.install-v1+json")) for n in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--plugins", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (bundles, mirror)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed full export, tar and import "
                        "(their medians are reported)")
    args = parser.parse_args()
    ensure_zstd()
    work = args.work or Path(tempfile.mkdtemp(prefix="eghact-bench-mirror-"))
    made_work = args.work is None
    work.mkdir(parents=True, exist_ok=True)
    # A kept work dir's trees go before anything is timed (see above on deleting big trees).
    for tree in ["staged", *(f"{kind}-{k}" for kind in ("tar-files", "mirror") for k in range(args.repeat))]:
        shutil.rmtree(work / tree, ignore_errors=True)
    data = args.data or work / "origin"
    if not (data / "registry.sqlite3").exists():
        seconds, _, out = timed([sys.executable, "-m", "eghact_origin.cli", "seed", "--data", str(data),
                                 "--plugins", str(args.plugins), "--seed", str(args.seed), "--workers", "2"])
        print(f"seeded in {seconds:.0f}s: {out.strip()}", flush=True)
    admin = cli("token", "create", "--data", str(data), "--name", f"bench-{time.time():.0f}",
                "--scope", "admin").stdout.splitlines()[-1]
    key = work / "key"
    if not key.exists():
        subprocess.run(mirror("keygen", "-o", str(key)), check=True, env=ENV, capture_output=True)
    trust = work / "key.pub"
    results: dict[str, Any] = {"load_average_at_start": os.getloadavg()}
    origin = OriginProcess(data).start()
    try:
        url = origin.url
        full, part = work / "full.bundle", work / "quarter.bundle"
        seconds, rss, _ = timed(mirror("export", "--origin", url, "--key", str(key), "-o", str(part),
                                           "--filter", "[a-e]*"))
        part_bytes, part_files = content_bytes(part, trust)
        results["export_quarter"] = {"seconds": round(seconds, 1), "content_MB": round(part_bytes / MB, 1),
                                     "files": part_files, "bundle_MB": round(part.stat().st_size / MB, 1),
                                     "MB_per_s": round(part_bytes / MB / seconds, 1), "peak_rss_MB": round(rss)}
        print("export (filter [a-e]*):", results["export_quarter"], flush=True)
        names = feed_names(url)
        seconds, fetched = http_ceiling(url, [n for n in names if n[:1] in "abcde"])
        results["http_fetch_only_quarter"] = {"seconds": round(seconds, 1), "MB": round(fetched / MB, 1),
                                              "MB_per_s": round(fetched / MB / seconds, 1)}
        print("the same packuments and tarballs fetched and dropped:", results["http_fetch_only_quarter"], flush=True)
        assert origin.proc is not None
        # Rounds of export, tar -x and tar -c of its files, and import, so that each of ours
        # is compared with tar's in the same minute: a shared machine drifts over a run (tar's
        # own CPU seconds have been seen to vary 4x between runs), and a ratio of medians
        # taken minutes apart would compare two different machines.
        rounds = []
        for k in range(args.repeat):
            target = full if k == 0 else work / f"full-{k + 1}.bundle"
            subprocess.run(["sync"], check=True)
            origin_cpu = process_cpu(origin.proc.pid)
            seconds, rss, _ = timed(mirror("export", "--origin", url, "--key", str(key), "-o", str(target)))
            export = (seconds, CPU["last"], process_cpu(origin.proc.pid) - origin_cpu, rss)
            if target != full:
                target.unlink()
            tar = tar_baseline(full, work, k)
            subprocess.run(["sync"], check=True)
            seconds, rss, _ = timed(mirror("import", str(full), "--into", str(work / f"mirror-{k}"),
                                           "--trust", str(trust)))
            rounds.append((export, tar, (seconds, CPU["last"], rss)))
            print(f"round {k + 1}: export {export[0]:.2f} s, tar --zstd -c {tar[1]:.2f} s; "
                  f"import {seconds:.2f} s, tar --zstd -x {tar[0]:.2f} s", flush=True)
        exports, tars, imports = ([r[i] for r in rounds] for i in range(3))
        full_bytes, full_files = content_bytes(full, trust)
        seconds = median(r[0] for r in exports)
        results["export_full"] = {"seconds": round(seconds, 2), "runs_s": [round(r[0], 2) for r in exports],
                                  "content_MB": round(full_bytes / MB, 1),
                                  "files": full_files, "bundle_MB": round(full.stat().st_size / MB, 1),
                                  "MB_per_s": round(full_bytes / MB / seconds, 1),
                                  "peak_rss_MB": round(max(r[3] for r in exports)),
                                  "exporter_cpu_s": round(median(r[1] for r in exports), 2),
                                  "origin_cpu_s": round(median(r[2] for r in exports), 2)}
        print("export (full):", results["export_full"], flush=True)
        extract, create = median(t[0] for t in tars), median(t[1] for t in tars)
        results["tar_zstd"] = {"create_s": round(create, 2), "create_runs_s": [round(t[1], 2) for t in tars],
                               "create_MB_per_s": round(full_bytes / MB / create, 1),
                               "create_cpu_s": round(median(t[4] for t in tars), 2),
                               "extract_s": round(extract, 2), "extract_runs_s": [round(t[0], 2) for t in tars],
                               "extract_MB_per_s": round(full_bytes / MB / extract, 1),
                               "extract_cpu_s": round(median(t[3] for t in tars), 2),
                               "files_MB": round(tars[0][2] / MB, 1)}
        print("tar --zstd of the same files:", results["tar_zstd"], flush=True)
        seconds = median(i[0] for i in imports)
        results["import_full"] = {"seconds": round(seconds, 2), "runs_s": [round(i[0], 2) for i in imports],
                                  "MB_per_s": round(full_bytes / MB / seconds, 1),
                                  "cpu_s_with_mirror_apply_child": round(median(i[1] for i in imports), 2),
                                  "peak_rss_MB_with_mirror_apply_child": round(max(i[2] for i in imports))}
        print("import (full):", results["import_full"], flush=True)
        origin_cpu = process_cpu(origin.proc.pid)
        seconds, fetched = batch_ceiling(url, names)
        results["origin_serve_only_full"] = {"seconds": round(seconds, 2), "MB": round(fetched / MB, 1),
                                             "origin_cpu_s": round(process_cpu(origin.proc.pid) - origin_cpu, 2)}
        print("the same reads through the batch read, answers dropped (the origin's share):",
              results["origin_serve_only_full"], flush=True)

        new_tarball_bytes = make_changes(url, admin, names, args.changes)
        touched = names[:: max(1, len(names) // args.changes)][: args.changes]
        incremental = work / "incremental.bundle"
        seconds, _, _ = timed(mirror("export", "--origin", url, "--key", str(key), "-o", str(incremental),
                                     "--after", str(full)))
        inc_bytes, _ = content_bytes(incremental, trust)
        packument_bytes = changed_packuments(url, touched)
        results["incremental"] = {
            "new_versions": len(touched), "new_tarball_KB": round(new_tarball_bytes / 1e3, 1),
            "changed_packuments_KB": round(packument_bytes / 1e3, 1),
            "changed_total_KB": round((new_tarball_bytes + packument_bytes) / 1e3, 1),
            "bundle_content_KB": round(inc_bytes / 1e3, 1), "bundle_KB": round(incremental.stat().st_size / 1e3, 1),
            "bundle_over_changed": round(incremental.stat().st_size / (new_tarball_bytes + packument_bytes), 3),
            "seconds": round(seconds, 1)}
        print("incremental:", results["incremental"], flush=True)
    finally:
        origin.stop()

    results["native_floor"] = native_floor(full)
    print("byte work in C, no per-file cost:", results["native_floor"], flush=True)
    subprocess.run(["sync"], check=True)
    seconds, _, _ = timed(mirror("verify", str(full), "--trust", str(trust)))
    results["verify_full"] = {"seconds": round(seconds, 1), "MB_per_s": round(full_bytes / MB / seconds, 1)}
    print("verify (full):", results["verify_full"], flush=True)
    staged = work / "staged"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    subprocess.run(["sync"], check=True)
    seconds, _, _ = timed([sys.executable, "-c", "import sys; from pathlib import Path; "
                           "from eghact_mirror import signing, stage, verify; "
                           "sink = stage.StageSink(Path(sys.argv[3])); "
                           "h = verify.read_signed(Path(sys.argv[1]), signing.load_trusted_key(Path(sys.argv[2]))); "
                           "v = verify.verify_into(h, sink); sink.finish(v.index, v.digest)",
                           str(full), str(trust), str(staged)])
    results["verify_and_stage_full"] = {"seconds": round(seconds, 1), "MB_per_s": round(full_bytes / MB / seconds, 1)}
    print("verify + stage, the mirror tool's part of an import:", results["verify_and_stage_full"], flush=True)
    results["import_full"]["of_which_mirror_apply_s"] = round(
        results["import_full"]["seconds"] - results["verify_and_stage_full"]["seconds"], 1)
    export_ratios = [t[1] / e[0] for e, t in zip(exports, tars, strict=True)]
    import_ratios = [t[0] / i[0] for i, t in zip(imports, tars, strict=True)]
    results["ratios"] = {
        # Throughput ratios (same bytes, so tar's seconds over ours), each of a round's pair.
        "export_vs_tar_create": round(median(export_ratios), 3),
        "export_vs_tar_create_runs": [round(r, 3) for r in export_ratios],
        "import_vs_tar_extract": round(median(import_ratios), 3),
        "import_vs_tar_extract_runs": [round(r, 3) for r in import_ratios],
        "origin_serve_only_vs_tar_create": round(create / results["origin_serve_only_full"]["seconds"], 3),
        "verify_vs_tar_extract": round(extract / results["verify_full"]["seconds"], 3),
        "verify_and_stage_vs_tar_extract": round(extract / results["verify_and_stage_full"]["seconds"], 3),
    }
    results["load_average_at_end"] = os.getloadavg()
    for k in range(args.repeat):
        shutil.rmtree(work / f"tar-files-{k}", ignore_errors=True)
        shutil.rmtree(work / f"mirror-{k}", ignore_errors=True)
    shutil.rmtree(staged, ignore_errors=True)
    print(json.dumps(results, indent=1))
    if made_work and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
