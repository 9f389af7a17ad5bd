"""Resolver benchmark: the two solvers alone, in process, on a deterministic synthetic universe.

    .venv/bin/python benchmarks/resolver.py [--packages 10000] [--versions 20] [--roots 20] [--seed 1]

The universe is generated lazily, package by package, from the seed (so 10,000 packages cost
nothing until the resolver asks for them): each package has ``--versions`` versions over a
few majors; each version depends on 0-4 earlier packages (mostly nearby, sometimes a popular
one) with ``^`` ranges, now and then ``~`` or an exact version, a peer or an optional
dependency, and a few late versions close cycles. Root sets of 3-6 late packages give
resolutions of roughly 150-250 packages.

For each strategy (dedupe, isolate) and each root set it times a *cold* resolution (a fresh
provider: packuments parsed, ranges evaluated) and a *warm* one (the provider's parsed
packages and cached range masks reused, as the origin's long-lived worker does), and prints
the median and the slowest.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "common"), str(ROOT / "origin")]

from eghact_common.errors import NotFound, Unresolvable  # noqa: E402
from eghact_origin.resolver import (  # noqa: E402
    PackageInfo,
    ResolveRequest,
    package_info_from_packument,
    resolve_dedupe,
    resolve_isolate,
)


class SyntheticProvider:
    """A deterministic universe of ``packages`` packages, built on demand and cached."""

    def __init__(self, packages: int, versions: int, seed: int):
        self.packages, self.versions, self.seed = packages, versions, seed
        self._cache: dict[str, PackageInfo] = {}
        self.loads = 0

    @staticmethod
    def name(index: int) -> str:
        return f"pkg-{index:05d}"

    def version_list(self, index: int) -> list[str]:
        rng = random.Random(f"{self.seed}/versions/{index}")
        out, major, minor, patch = [], 1, 0, 0
        for _ in range(self.versions):
            out.append(f"{major}.{minor}.{patch}")
            roll = rng.random()
            if roll < 0.12:
                major, minor, patch = major + 1, 0, 0
            elif roll < 0.5:
                minor, patch = minor + 1, 0
            else:
                patch += 1
        return out

    def _range(self, rng: random.Random, target: int, fraction: float, lag: int) -> str:
        """A range on what ``target`` had published when the dependent's version did
        (``fraction`` of the way through its history), ``lag`` majors behind now and then."""
        versions = self.version_list(target)
        base = versions[max(0, round(fraction * len(versions)) - 1 - 7 * lag)]
        roll = rng.random()
        if roll < 0.8:
            return f"^{base}"
        return f"~{base}" if roll < 0.95 else base

    def packument(self, index: int) -> dict[str, Any]:
        name = self.name(index)
        rng = random.Random(f"{self.seed}/deps/{index}")
        targets = []
        if index:
            for _ in range(rng.choice((0, 1, 2, 2, 3, 3, 4))):
                if rng.random() < 0.15:
                    targets.append(int(index * rng.random() ** 3))  # popular: low indices
                else:
                    targets.append(max(0, index - 1 - int(rng.expovariate(1 / 40))))
        roles = ("dependencies",) * 18 + ("peerDependencies", "optionalDependencies")
        plans = [(t, rng.choice(roles), int(rng.random() < 0.1)) for t in sorted(set(targets))]
        docs: dict[str, Any] = {}
        versions = self.version_list(index)
        for k, version in enumerate(versions):
            doc: dict[str, Any] = {"name": name, "version": version, "license": "MIT",
                                   "dist": {"tarball": f"https://registry.invalid/{name}/-/{name}-{version}.tgz",
                                            "integrity": f"sha512-{name}-{version}", "unpackedSize": 4096}}
            for target, role, lag in plans:
                doc.setdefault(role, {})[self.name(target)] = self._range(rng, target, (k + 1) / len(versions), lag)
            if k == len(versions) - 1 and index > 50 and rng.random() < 0.01:
                back = index + 1 + rng.randrange(20)
                if back < self.packages:  # a late version closes a cycle
                    doc.setdefault("dependencies", {})[self.name(back)] = "*"
            docs[version] = doc
        return {"name": name, "dist-tags": {"latest": versions[-1]}, "versions": docs}

    def package(self, name: str) -> PackageInfo:
        self.loads += 1
        cached = self._cache.get(name)
        if cached is None:
            index = int(name.removeprefix("pkg-")) if name.startswith("pkg-") else -1
            if not 0 <= index < self.packages:
                raise NotFound(f"package {name!r} not found")
            cached = self._cache[name] = package_info_from_packument(self.packument(index), [])
        return cached


def root_sets(args: argparse.Namespace) -> list[dict[str, str]]:
    rng = random.Random(f"{args.seed}/roots")
    top = range(args.packages * 3 // 4, args.packages)
    return [{SyntheticProvider.name(i): "*" for i in rng.sample(top, rng.randint(3, 6))} for _ in range(args.roots)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--roots", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sets = root_sets(args)
    print(f"universe: {args.packages} packages x {args.versions} versions (seed {args.seed}); {len(sets)} root sets")
    warm = SyntheticProvider(args.packages, args.versions, args.seed)
    for label, solve in (("dedupe", resolve_dedupe), ("isolate", resolve_isolate)):
        cold_times, warm_times, sizes, loads = [], [], [], []
        failures = 0
        for deps in sets:
            request = ResolveRequest.from_body({"dependencies": deps, "strategy": {"duplicate": label}})
            fresh = SyntheticProvider(args.packages, args.versions, args.seed)
            started = time.perf_counter()
            try:
                graph = solve(request, fresh)
            except Unresolvable:
                failures += 1
                continue
            cold_times.append(time.perf_counter() - started)
            solve(request, warm)  # fill the long-lived provider's caches
            started = time.perf_counter()
            solve(request, warm)
            warm_times.append(time.perf_counter() - started)
            sizes.append(len(graph.nodes))
            loads.append(fresh.loads)
        print(f"{label:8s} {len(cold_times)} resolved, {failures} unresolvable; "
              f"nodes median {statistics.median(sizes):.0f} (min {min(sizes)}, max {max(sizes)}), "
              f"packages loaded median {statistics.median(loads):.0f}")
        print(f"{'':8s} cold: median {1000 * statistics.median(cold_times):7.1f} ms   max {1000 * max(cold_times):7.1f} ms")
        print(f"{'':8s} warm: median {1000 * statistics.median(warm_times):7.1f} ms   max {1000 * max(warm_times):7.1f} ms")


if __name__ == "__main__":
    main()
