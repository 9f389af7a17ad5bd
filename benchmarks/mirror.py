"""Mirror benchmark: export and import against standard tools doing the same work, peak RSS
of both at two bundle sizes, and an incremental bundle's size against what changed — on a
seeded universe served by a real origin process.

    .venv/bin/python benchmarks/mirror.py [--data DIR] [--plugins 10000] [--seed 1]
                                          [--changes 100] [--work DIR] [--keep] [--repeat 3]

``--data`` reuses a seeded data dir (seeding 10,000 plugins takes a minute or two); an empty or
missing one is seeded first. The run publishes, deprecates and unpublishes a few versions in
it (for the incremental bundle), so a reused dir grows a little each run. The import baseline
uses the ``sqlite3`` command-line tool when it is installed (Debian: ``apt-get install sqlite3``).

The baseline (``mirror_baseline``): ``tar --zstd`` alone packs bytes, while a bundle also
hashes every file into a signed index, and an import checks every digest and loads the rows
the origin serves from. So ``eghact-mirror export`` (start to exit, the origin's reads
included) is set against ``sha512sum`` of every file of the same data plus ``tar --zstd -cf``,
and ``eghact-mirror import`` (verify + stage + mirror-apply) against ``tar --zstd -xf`` plus
``sha512sum -c`` plus a bulk load of the same rows. The ratio is baseline seconds over ours
(target: at least 1.0x for both); ``tar --zstd`` alone over ours is printed beside it as
information. Everything runs on this machine at once (origin, exporter, tools), so the figures
compare within one run; the load average is printed beside them. The comparison is made
``--repeat`` times in rounds (our export, the baseline's export of its files, our import, the
baseline's import), each of ours set against the baseline's of the same round; times are
reported as min and median, and the ratio as the median of the rounds': a shared machine
drifts within minutes, so only side-by-side pairs are comparable. (The origin stays up through
the rounds, idle while the rest run.) CPU seconds (user + system; for the export the origin's
too) are printed beside wall times, as the steadier figure on a shared machine: the file
operations of tar and of staging (mostly system calls) slow several times over when the
machine's disk is busy, the rest far less.

What each side runs, and what the figures mean. Ours: ``eghact-mirror export`` (one process:
the event loop reading the origin's batch answers, a thread hashing and framing members, a
thread running zstd level 1 on one core) with the origin serving it (a second process, its CPU
printed as ``origin_cpu_s``); ``eghact-mirror import`` (one process reading the bundle twice, a
child creating the staged files, then the ``mirror-apply`` child). Baseline: see
``mirror_baseline`` (two processes at most per step; ``tar --zstd`` compresses on one thread,
so the ``zstd -T0`` figure is information). A ratio under 1.0x means ours took longer than the
same work done by those tools in the same round; on this shared 2-core machine the rounds swing
with the other load (tar's extraction of ~60,000 one-file directories is the most sensitive
step, its system time rising several times over when the disk is busy), so whole-process pairs
run alternately (A B A B, after a warm-up) are the figure to set beside them.

Peak RSS is measured for a quarter export (``--filter '[a-e]*'``) and its import, and for the
full ones: the target is under 300 MB at both sizes, and not growing with the bundle.

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

from benchmarks import mirror_baseline as baseline  # noqa: E402
from benchmarks import mirror_bounds as bounds  # noqa: E402
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


def changed_packuments(url: str, names: list[str]) -> int:
    return sum(len(_get(f"{url}/{escaped(n)}")) + len(_get(f"{url}/{escaped(n)}",
                                                           "application/vnd.npm.install-v1+json")) for n in names)


def tool(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one step of the baseline."""
    seconds, _, _ = timed(command)
    return seconds, CPU["last"]


def total(steps: list[baseline.Step]) -> float:
    """The baseline's seconds: its steps but those timed beside it as information."""
    return sum(step.seconds for step in steps if step.name != baseline.INFO_T0)


def one_round(k: int, url: str, origin_pid: int, key: Path, trust: Path, full: Path, work: Path,
              rows: list[baseline.Rows]) -> dict[str, Any]:
    """Our export, the baseline's export of the same files, our import of the bundle, the
    baseline's import of its archive: each pair back to back, each step after a ``sync``."""
    target = full if k == 0 else work / f"full-{k + 1}.bundle"
    subprocess.run(["sync"], check=True)
    origin_cpu = process_cpu(origin_pid)
    seconds, rss, _ = timed(mirror("export", "--origin", url, "--key", str(key), "-o", str(target)))
    export = {"s": seconds, "cpu_s": CPU["last"], "origin_cpu_s": process_cpu(origin_pid) - origin_cpu, "rss": rss}
    if target != full:
        target.unlink()
    # The bundle's files on disk (not timed): what the baseline hashes and packs.
    files = work / f"tar-files-{k}"
    files.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(full), "-C", str(files)], check=True)
    archive = work / f"baseline-{k}.tar.zst"
    subprocess.run(["sync"], check=True)
    base_export = baseline.export(files, archive, tool)
    subprocess.run(["sync"], check=True)
    seconds, rss, _ = timed(mirror("import", str(full), "--into", str(work / f"mirror-{k}"), "--trust", str(trust)))
    imported = {"s": seconds, "cpu_s": CPU["last"], "rss": rss}
    if not rows:  # the rows our import wrote, for the baseline to load (not timed)
        rows.append(baseline.dump_rows(work / "mirror-0" / "registry.sqlite3", work / "rows"))
    subprocess.run(["sync"], check=True)
    base_import = baseline.import_(archive, work / f"baseline-files-{k}", rows[0], tool)
    archive.unlink()
    return {"export": export, "baseline_export": base_export, "import": imported, "baseline_import": base_import}


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 2), "median": round(median(values), 2)}


def compare(ours: list[float], base: list[list[baseline.Step]], tar_step: str) -> dict[str, Any]:
    """Ours against the baseline, round by round: times (min and median), the ratio baseline /
    ours of each round and their median, and tar's own step over ours beside it."""
    ratios = [total(b) / o for o, b in zip(ours, base, strict=True)]
    tar = [next(s.seconds for s in b if s.name == tar_step) for b in base]
    steps = {name: spread([next(s.seconds for s in b if s.name == name) for b in base]) for name in
             [s.name for s in base[0]]}
    info = {}
    if any(s.name == baseline.INFO_T0 for s in base[0]):
        t0 = [next(s.seconds for s in b if s.name == baseline.INFO_T0) for b in base]
        hashed = [next(s.seconds for s in b if s.name == "sha512sum") for b in base]
        info = {"baseline_with_zstd_T0_ratio": round(median((h + t) / o for h, t, o in zip(hashed, t0, ours,
                                                                                              strict=True)), 3)}
    return {"ours_s": spread(ours), "baseline_s": spread([total(b) for b in base]), "baseline_steps_s": steps,
            "baseline_cpu_s": round(median(sum(s.cpu_seconds for s in b if s.name != baseline.INFO_T0)
                                           for b in base), 2),
            "ratio": round(median(ratios), 3), "ratio_runs": [round(r, 3) for r in ratios],
            f"plain_{tar_step}_ratio": round(median(t / o for t, o in zip(tar, ours, strict=True)), 3), **info}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--plugins", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (bundles, mirror)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of export, import and the baseline's "
                        "(min and median reported)")
    args = parser.parse_args()
    ensure_zstd()
    work = args.work or Path(tempfile.mkdtemp(prefix="eghact-bench-mirror-"))
    made_work = args.work is None
    work.mkdir(parents=True, exist_ok=True)
    trees = ["staged", "rows", "mirror-quarter", *(f"{kind}-{k}" for kind in ("tar-files", "mirror", "baseline-files")
                                                    for k in range(args.repeat))]
    # A kept work dir's trees go before anything is timed (see above on deleting big trees).
    for tree in trees:
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
    results: dict[str, Any] = {"load_average_at_start": os.getloadavg(), "baseline_loader": baseline.loader()}
    origin = OriginProcess(data).start()
    try:
        url = origin.url
        full, part = work / "full.bundle", work / "quarter.bundle"
        subprocess.run(["sync"], check=True)
        seconds, rss, _ = timed(mirror("export", "--origin", url, "--key", str(key), "-o", str(part),
                                       "--filter", "[a-e]*"))
        part_bytes, part_files = content_bytes(part, trust)
        results["export_quarter"] = {"seconds": round(seconds, 1), "content_MB": round(part_bytes / MB, 1),
                                     "files": part_files, "bundle_MB": round(part.stat().st_size / MB, 1),
                                     "MB_per_s": round(part_bytes / MB / seconds, 1), "peak_rss_MB": round(rss)}
        print("export (filter [a-e]*):", results["export_quarter"], flush=True)
        subprocess.run(["sync"], check=True)
        seconds, rss, _ = timed(mirror("import", str(part), "--into", str(work / "mirror-quarter"),
                                       "--trust", str(trust)))
        results["import_quarter"] = {"seconds": round(seconds, 1), "peak_rss_MB_with_mirror_apply_child": round(rss)}
        print("import (filter [a-e]*):", results["import_quarter"], flush=True)
        names = feed_names(url)
        seconds, fetched = bounds.http_ceiling(url, [n for n in names if n[:1] in "abcde"])
        results["http_fetch_only_quarter"] = {"seconds": round(seconds, 1), "MB": round(fetched / MB, 1),
                                              "MB_per_s": round(fetched / MB / seconds, 1)}
        print("the same packuments and tarballs fetched and dropped:", results["http_fetch_only_quarter"], flush=True)
        assert origin.proc is not None
        # Rounds, so that each of ours is compared with the baseline's of the same minute: a
        # shared machine drifts over a run (tar's own CPU seconds have been seen to vary 4x
        # between runs), and a ratio of medians taken minutes apart would compare two machines.
        rounds: list[dict[str, Any]] = []
        rows: list[baseline.Rows] = []
        for k in range(args.repeat):
            r = one_round(k, url, origin.proc.pid, key, trust, full, work, rows)
            rounds.append(r)
            print(f"round {k + 1}: export {r['export']['s']:.2f} s, baseline {total(r['baseline_export']):.2f} s "
                  f"({', '.join(f'{s.name} {s.seconds:.2f}' for s in r['baseline_export'])}); "
                  f"import {r['import']['s']:.2f} s, baseline {total(r['baseline_import']):.2f} s "
                  f"({', '.join(f'{s.name} {s.seconds:.2f}' for s in r['baseline_import'])})", flush=True)
        full_bytes, full_files = content_bytes(full, trust)
        results["export_full"] = {"content_MB": round(full_bytes / MB, 1), "files": full_files,
                                  "bundle_MB": round(full.stat().st_size / MB, 1),
                                  "MB_per_s": round(full_bytes / MB / median(r["export"]["s"] for r in rounds), 1),
                                  "peak_rss_MB": round(max(r["export"]["rss"] for r in rounds)),
                                  "exporter_cpu_s": round(median(r["export"]["cpu_s"] for r in rounds), 2),
                                  "origin_cpu_s": round(median(r["export"]["origin_cpu_s"] for r in rounds), 2),
                                  **compare([r["export"]["s"] for r in rounds], [r["baseline_export"] for r in rounds],
                                            "tar_c")}
        print("export (full) against sha512sum + tar --zstd -c:", results["export_full"], flush=True)
        results["import_full"] = {"MB_per_s": round(full_bytes / MB / median(r["import"]["s"] for r in rounds), 1),
                                  "cpu_s_with_mirror_apply_child":
                                      round(median(r["import"]["cpu_s"] for r in rounds), 2),
                                  "peak_rss_MB_with_mirror_apply_child": round(max(r["import"]["rss"] for r in rounds)),
                                  "rows_loaded_by_baseline": rows[0].count,
                                  "rows_csv_MB": round(rows[0].bytes / MB, 1),
                                  **compare([r["import"]["s"] for r in rounds], [r["baseline_import"] for r in rounds],
                                            "tar_x")}
        print(f"import (full) against tar --zstd -x + sha512sum -c + {baseline.loader()}:", results["import_full"],
              flush=True)
        origin_cpu = process_cpu(origin.proc.pid)
        seconds, fetched = bounds.batch_ceiling(url, names)
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

    results["native_floor"] = bounds.native_floor(full)
    print("byte work in C, no per-file cost:", results["native_floor"], flush=True)
    subprocess.run(["sync"], check=True)
    seconds, _, _ = timed(mirror("verify", str(full), "--trust", str(trust)))
    results["verify_full"] = {"seconds": round(seconds, 1), "MB_per_s": round(full_bytes / MB / seconds, 1)}
    print("verify (full):", results["verify_full"], flush=True)
    staged = work / "staged"
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
        results["import_full"]["ours_s"]["median"] - results["verify_and_stage_full"]["seconds"], 1)
    results["load_average_at_end"] = os.getloadavg()
    for tree in trees:
        shutil.rmtree(work / tree, ignore_errors=True)
    print(json.dumps(results, indent=1))
    print(summary(results))
    if made_work and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def summary(results: dict[str, Any]) -> str:
    """The figures the targets are about, in a few lines."""
    lines = []
    for step, tar in (("export", "tar_c"), ("import", "tar_x")):
        r = results[f"{step}_full"]
        met = "met" if r["ratio"] >= 1.0 else "MISSED"
        t0 = r.get("baseline_with_zstd_T0_ratio")
        lines.append(f"{step}: ours {r['ours_s']['min']:.2f}/{r['ours_s']['median']:.2f} s (min/median), baseline "
                     f"{r['baseline_s']['min']:.2f}/{r['baseline_s']['median']:.2f} s; baseline/ours "
                     f"{r['ratio']:.2f}x (target >= 1.0x: {met}); plain tar --zstd alone "
                     f"{r[f'plain_{tar}_ratio']:.2f}x (information)"
                     + (f"; the baseline with zstd -T0 {t0:.2f}x (information)" if t0 is not None else ""))
    rss = {f"{step} {size}": results[f"{step}_{size}"].get("peak_rss_MB",
                                                           results[f"{step}_{size}"].get(
                                                               "peak_rss_MB_with_mirror_apply_child"))
           for step in ("export", "import") for size in ("quarter", "full")}
    bound = "met" if max(rss.values()) < 300 else "MISSED"
    bigger = results["export_full"]["bundle_MB"] / results["export_quarter"]["bundle_MB"]
    # "Flat": the bigger bundle costs at most 15% more memory (an allowance for noise).
    growth = {step: rss[f"{step} full"] / rss[f"{step} quarter"] for step in ("export", "import")}
    flat = ", ".join(f"{step} x{g:.2f} ({'flat' if g <= 1.15 else 'GROWS'})" for step, g in growth.items())
    lines.append(f"peak RSS (MB), bundles of {results['export_quarter']['bundle_MB']} and "
                 f"{results['export_full']['bundle_MB']} MB: " + ", ".join(f"{k} {v}" for k, v in rss.items())
                 + f" (target < 300 MB: {bound}; for x{bigger:.1f} the bundle: {flat})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
