"""Throughput of eghact_common.semver on the resolver's hot path.

    .venv/bin/python benchmarks/semver.py [--seconds 0.4]

Prints operations per second for ``satisfies`` (parse caches warm, and with every version
and range text never seen before) and ``max_satisfying`` over a 3000-version list, both the
plain scan over strings and the bisecting path over a presorted ``sorted_versions`` list.
Each figure is measured for a bounded time, so the whole run takes a few seconds.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Callable

from eghact_common import semver

RANGES = [
    "^3.4.0",
    "~5.2.1",
    ">=1.2.3 <4.0.0 || 7.x",
    "1.2.3 - 6.7.8",
    "^0.5.0",
    "*",
    ">=9.19.0-rc.0",
    "^12.0.0",  # matches nothing: the worst case of a scan
]


def versions_3000(seed: int = 7) -> list[str]:
    """3000 distinct versions the shape of a busy packument: mostly releases, some prereleases."""
    rng = random.Random(seed)
    releases = [f"{major}.{minor}.{patch}" for major in range(10) for minor in range(20) for patch in range(14)]
    prereleases = [
        f"{major}.{minor}.{patch}-{tag}.{n}"
        for major, minor, patch, tag, n in (
            (rng.randrange(10), rng.randrange(20), rng.randrange(14), rng.choice(["alpha", "beta", "rc"]), i)
            for i in range(200)
        )
    ]
    versions = releases + prereleases
    rng.shuffle(versions)
    return sorted(set(versions), key=versions.index)[:3000]


def rate(work: Callable[[], int], seconds: float) -> float:
    """Operations per second of ``work`` (which returns how many operations it did)."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += work()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="time per measurement")
    seconds = parser.parse_args().seconds

    versions = versions_3000()
    presorted = semver.sorted_versions(versions)
    assert len(versions) == 3000 and len(presorted) == 3000
    pairs = [(v, r) for r in RANGES for v in versions[:250]]

    def satisfies_warm() -> int:
        for v, r in pairs:
            semver.satisfies(v, r)
        return len(pairs)

    fresh = itertools.count()

    def satisfies_uncached() -> int:
        # build metadata and padding make texts the caches have never seen, so every call
        # parses both its version and its range
        n = next(fresh)
        for i, (v, r) in enumerate(pairs[:500]):
            semver.satisfies(f"{v}+b{n}", f"{r} || <0.{i}.{n}")
        return 500

    def max_scan() -> int:
        for r in RANGES:
            semver.max_satisfying(versions, r)
        return len(RANGES)

    def max_presorted() -> int:
        for r in RANGES:
            semver.max_satisfying(presorted, r)
        return len(RANGES)

    def build_presorted() -> int:
        semver.sorted_versions(versions)
        return 1

    # the two paths agree (and so does the linear definition)
    for r in RANGES:
        scanned = semver.max_satisfying(versions, r)
        assert semver.max_satisfying(presorted, r) == (None if scanned is None else semver.Version(scanned)), r

    print(f"eghact_common.semver, {len(versions)} versions, {len(RANGES)} ranges, {seconds:.2f}s per figure")
    for label, work in (
        ("satisfies (warm caches)", satisfies_warm),
        ("satisfies (uncached: parses both)", satisfies_uncached),
        ("max_satisfying, scan of 3000 strings", max_scan),
        ("max_satisfying, presorted 3000 (bisect)", max_presorted),
        ("sorted_versions(3000) build", build_presorted),
    ):
        print(f"  {label:<42} {rate(work, seconds):>12,.0f} ops/s")


if __name__ == "__main__":
    main()
