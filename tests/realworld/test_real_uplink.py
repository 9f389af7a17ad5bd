"""The real uplink: an origin with nothing published and ``--uplink`` the registry npm is
configured with (read at run time, never written here), an edge in front, and npm installing a
few popular roots through the edge with a fresh cache: the same tree as npm gets from its own
registry. A second clean install (new cache, new project) is answered by the edge and the
origin alone: the origin asks the uplink for no tarball.

When that registry cannot be reached the test FAILS, loudly, as the corpus test does.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .corpus import install_project, tree_differences
from .metrics import metric_values, total
from .network import reaching, real_registry, uplinked_network

pytestmark = [pytest.mark.realworld, pytest.mark.npm, pytest.mark.slow]

#: A few popular roots: scoped names and eslint's peers (@eslint/*), esbuild's optional
#: platform packages (one per os/cpu: npm's lockfile lists them all, so every one is pulled),
#: axios's small tree, express's older shapes, rimraf 5's `npm:` aliases (@isaacs/cliui).
ROOTS: dict[str, str] = {
    "rimraf": "^5.0.0",
    "express": "^4.21.0",
    "axios": "^1.7.0",
    "eslint": "^9.12.0",
    "esbuild": "^0.24.0",
}


def test_npm_installs_popular_roots_through_an_edge_in_front_of_the_real_uplink(tmp_path: Path) -> None:
    registry = real_registry("REAL UPLINK")
    with reaching("REAL UPLINK", registry):
        # npm direct, fresh cache: the tree npm gets from its own registry, and its time.
        started = time.monotonic()
        direct = install_project(tmp_path / "direct", ROOTS, registry=registry, cache=tmp_path / "cache-direct")
        direct_seconds = time.monotonic() - started

    with uplinked_network(tmp_path, registry) as network:
        origin, edge, admin = network.origin, network.edge, network.admin
        started = time.monotonic()
        first = install_project(tmp_path / "first", ROOTS, registry=edge.url, cache=tmp_path / "cache-first")
        first_seconds = time.monotonic() - started
        differences = tree_differences(first, direct)
        assert not differences, f"{len(differences)} lockfile entries differ:\n" + "\n".join(differences)
        assert all(entry["resolved"].startswith(edge.url) for path, entry in first["packages"].items() if path)

        fetches = metric_values(origin.url, "eghact_origin_uplink_fetches", admin)
        pulled_bytes = total(metric_values(origin.url, "eghact_origin_uplink_bytes", admin))
        served = metric_values(edge.url, "eghact_edge_responses")

        started = time.monotonic()
        second = install_project(tmp_path / "second", ROOTS, registry=edge.url, cache=tmp_path / "cache-second")
        second_seconds = time.monotonic() - started
        assert not tree_differences(second, direct)

        after = metric_values(origin.url, "eghact_origin_uplink_fetches", admin)
        served_after = metric_values(edge.url, "eghact_edge_responses")
    tarballs_before, tarballs_after = total(fetches, what="tarball"), total(after, what="tarball")
    assert tarballs_after == tarballs_before, "the second install made the origin fetch tarballs upstream"
    by_result = {dict(k).get("result", "?"): served_after[k] - served.get(k, 0.0) for k in served_after}
    hits = sum(n for result, n in by_result.items() if result.startswith("HIT"))
    packages = len(first["packages"]) - 1
    print(f"\nreal uplink: {packages} packages; npm direct {direct_seconds:.1f} s, first install through "
          f"edge+uplink {first_seconds:.1f} s, second {second_seconds:.1f} s; pulled "
          f"{total(fetches, what='packument'):.0f} packuments and {tarballs_before:.0f} tarballs "
          f"({pulled_bytes / 1e6:.1f} MB); second install: edge responses {by_result} ({hits:.0f} hits), "
          f"origin uplink requests during it: {total(after) - total(fetches):.0f}")
    # Every request of the second install was answered from the edge's cache: the pulls of the
    # first stayed there (a pull's own change event used to purge them: 77 misses of 366).
    assert by_result.get("MISS", 0.0) == 0 and hits >= packages, by_result
