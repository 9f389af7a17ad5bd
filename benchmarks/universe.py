"""How long the seed universe takes to generate, and how big it is.

    .venv/bin/python benchmarks/universe.py                       # 1,000 and 10,000 plugins, 1 worker
    .venv/bin/python benchmarks/universe.py --sizes 10000 --workers 2

Generation only (plan + tarballs); storing is measured by the seed command itself. The budget: seeding
10,000 plugins (generate + store) in under two minutes on two cores, so generation should stay well under
a minute.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

from eghact_origin.seeding import universe


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped workers: unlike wall time, not inflated by a busy machine."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(plugins: int, seed: int, workers: int) -> dict[str, object]:
    cpu = _cpu_seconds()
    started = time.perf_counter()
    plan = universe.plan_universe(plugins, seed)
    planned = time.perf_counter() - started
    versions = tarball_bytes = 0
    sizes: list[int] = []
    for package in universe.iter_packages(plan, workers=workers):
        versions += len(package.versions)
        for version in package.versions:
            tarball_bytes += len(version.tarball)
            sizes.append(len(version.tarball))
    total = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    giant = max(plan.packages, key=lambda p: len(p.versions))
    return {
        "plugins": plugins,
        "workers": workers,
        "plan_s": round(planned, 2),
        "total_s": round(total, 2),
        "cpu_s": round(cpu, 2),
        "versions": versions,
        "tarball_bytes": tarball_bytes,
        "median_tarball_bytes": int(statistics.median(sizes)),
        "max_tarball_bytes": max(sizes),
        "biggest_package": giant.name,
        "biggest_package_versions": len(giant.versions),
        "biggest_manifests_bytes": sum(len(json.dumps(giant.manifest(v))) for v in giant.versions),
        "packages_over_2000_versions": sum(len(p.versions) >= 2000 for p in plan.packages),
        "cycles": len(plan.cycles),
        "advisories": len(plan.advisories),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    for plugins in args.sizes:
        print(json.dumps(measure(plugins, args.seed, args.workers)), flush=True)


if __name__ == "__main__":  # the worker pool uses "spawn", which re-imports this module
    main()
