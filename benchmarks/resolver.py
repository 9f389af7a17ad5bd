"""Resolver benchmark: the solvers alone, in process, on a deterministic synthetic universe.

    .venv/bin/python benchmarks/resolver.py [--packages 10000] [--versions 20] [--roots 20] [--seed 1]

The universe is generated lazily, package by package, from the seed (so 10,000 packages cost
nothing until the resolver asks for them): each package has ``--versions`` versions over a
few majors. Packages form ecosystems of 40: each version depends on 0-4 earlier packages of
its ecosystem or of a popular foundation (the first 30), with ``^`` ranges on what the target
had published at the time (a tenth of them a major behind) and rewritten mostly at major
bumps, now and then ``~`` or an exact version, a peer or an optional dependency; a few late
versions close cycles. Every fifth package is a plugin (an ``eghact`` block), which only
``duplicate=plugins`` treats differently. Root sets of 10-16 top packages of different
ecosystems give resolutions of roughly 100-270 packages (deduplicated; isolate nests 250-750
copies).

For each strategy (plugins, dedupe-all, isolate) and each root set it times a *cold* resolution (a fresh
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
    resolve_plugins,
)

CLUSTER = 40  # packages form ecosystems of this size, which depend within themselves ...
FOUNDATION = 30  # ... and on the first packages, a popular foundation
PLUGIN_EVERY = 5  # every fifth package is a plugin: one version per app under duplicate=plugins


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
        start = index - index % CLUSTER
        targets = []
        if index:
            for _ in range(rng.choice((0, 1, 2, 2, 3, 3, 4))):
                if index >= FOUNDATION and rng.random() < 0.2:
                    targets.append(rng.randrange(FOUNDATION))  # a popular foundation package
                else:
                    targets.append(max(start, index - 1 - int(rng.expovariate(1 / 8))))
        targets = [t for t in targets if t != index]
        roles = ("dependencies",) * 18 + ("peerDependencies", "optionalDependencies")
        plans = [(t, rng.choice(roles), int(rng.random() < 0.1)) for t in sorted(set(targets))]
        docs: dict[str, Any] = {}
        versions = self.version_list(index)
        current: dict[int, str] = {}
        for k, version in enumerate(versions):
            # like real manifests, a range is rewritten rarely: at majors, sometimes at minors
            bump = "major" if version.endswith(".0.0") else "minor" if version.endswith(".0") else "patch"
            for target, _, lag in plans:
                if target not in current or rng.random() < {"major": 0.7, "minor": 0.3}.get(bump, 0.03):
                    current[target] = self._range(rng, target, (k + 1) / len(versions), lag)
            doc: dict[str, Any] = {"name": name, "version": version, "license": "MIT",
                                   "dist": {"tarball": f"https://registry.invalid/{name}/-/{name}-{version}.tgz",
                                            "integrity": f"sha512-{name}-{version}", "unpackedSize": 4096}}
            for target, role, _ in plans:
                doc.setdefault(role, {})[self.name(target)] = current[target]
            if index % PLUGIN_EVERY == 0:
                doc["eghact"] = {"version": "^2.0.0", "type": "component"}
            if k == len(versions) - 1 and index % CLUSTER > 10 and rng.random() < 0.02:
                back = index + 1 + rng.randrange(5)
                if back < start + CLUSTER and back < self.packages:  # a late version closes a cycle
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
    tops = [i for i in range(FOUNDATION, args.packages) if i % CLUSTER >= CLUSTER - 4]
    return [{SyntheticProvider.name(i): "*" for i in rng.sample(tops, rng.randint(10, 16))} for _ in range(args.roots)]


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
    for label, solve in (("plugins", resolve_plugins), ("dedupe-all", resolve_dedupe), ("isolate", resolve_isolate)):
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
        print(f"{label:10s} {len(cold_times)} resolved, {failures} unresolvable; "
              f"nodes median {statistics.median(sizes):.0f} (min {min(sizes)}, max {max(sizes)}), "
              f"packages loaded median {statistics.median(loads):.0f}")
        for kind, times in (("cold", cold_times), ("warm", warm_times)):
            print(f"{'':10s} {kind}: median {1000 * statistics.median(times):7.1f} ms"
                  f"   max {1000 * max(times):7.1f} ms")


if __name__ == "__main__":
    main()
