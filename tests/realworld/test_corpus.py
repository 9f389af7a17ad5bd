"""The real npm world: the complete trees of popular packages (``corpus.POPULAR_ROOTS``, ~370
real packages) published into a fresh origin exactly as npm publishes them, every one
accepted; then npm installs the roots through an edge and gets the tree npm gets from its own
registry.

The corpus comes from the registry npm is configured with and is cached outside the
repository (``$EGHACT_CORPUS_CACHE``, default ``~/.cache/eghact/corpus``). When that registry
cannot be reached these tests FAIL, loudly: a real-world check that quietly skips would let
a regression through exactly when nobody is looking.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eghact_common import semver

from ..edge.support import EdgeProcess
from ..support import OriginProcess, cli, escaped
from .corpus import (
    POPULAR_ROOTS,
    CorpusUnavailable,
    Package,
    cached_tarballs,
    check_registry,
    install_project,
    registry_shown,
    resolve_tree,
    tree_differences,
    tree_packages,
)
from .npm_publish import package_json, publish_body

pytestmark = [pytest.mark.realworld, pytest.mark.npm, pytest.mark.slow]


@dataclass
class Corpus:
    lock: dict[str, Any]  # what npm resolved against its own registry
    tarballs: dict[Package, Path]


@dataclass
class Published:
    origin: OriginProcess
    refusals: dict[str, str]  # "name@version" -> status and error body
    warnings: Counter[str]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    if shutil.which("npm") is None:
        pytest.fail("REAL-WORLD CORPUS: npm is not on PATH; these tests need node and npm", pytrace=False)
    started = time.monotonic()
    try:
        check_registry()
        lock = resolve_tree(POPULAR_ROOTS, tmp_path_factory.mktemp("upstream-tree"))
        tarballs = cached_tarballs(tree_packages(lock))
    except CorpusUnavailable as exc:
        pytest.fail(f"REAL-WORLD CORPUS UNAVAILABLE: npm could not fetch the corpus from its registry "
                    f"{registry_shown()!r}. This test fails rather than skips so that a broken network is seen.\n{exc}",
                    pytrace=False)
    print(f"\ncorpus: {len(tarballs)} packages ready in {time.monotonic() - started:.1f} s")
    return Corpus(lock, tarballs)


def _put(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _publish_all(origin: OriginProcess, token: str, corpus: Corpus) -> tuple[dict[str, str], Counter[str]]:
    # One name's versions in ascending order (the last publish takes `latest`, as the highest
    # version holds it upstream); names in parallel.
    by_name: dict[str, list[Package]] = defaultdict(list)
    for package in corpus.tarballs:
        by_name[package.name].append(package)
    refusals: dict[str, str] = {}
    warnings: Counter[str] = Counter()

    def publish_versions(packages: list[Package]) -> None:
        by_version = {p.version: p for p in packages}
        for version in semver.sort(list(by_version), loose=True):
            package = by_version[version]
            data = corpus.tarballs[package].read_bytes()
            body = publish_body(data, package_json(data), registry=origin.url)
            status, answer = _put(f"{origin.url}/{escaped(package.name)}", token, body)
            if status != 201 and status != 200:
                refusals[package.spec] = f"{status} {json.dumps(answer)[:600]}"
            for warning in answer.get("warnings", []):
                warnings[warning.get("code", "?")] += 1

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(publish_versions, by_name.values()))
    return refusals, warnings


@pytest.fixture(scope="module")
def published(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    data = tmp_path_factory.mktemp("origin") / "data"
    token = cli("token", "create", "--data", str(data), "--name", "corpus", "--scope", "admin").stdout.splitlines()[-1]
    origin = OriginProcess(data).start()
    try:
        started = time.monotonic()
        refusals, warnings = _publish_all(origin, token, corpus)
        print(f"\npublished {len(corpus.tarballs) - len(refusals)}/{len(corpus.tarballs)} in "
              f"{time.monotonic() - started:.1f} s; warnings by code: {dict(warnings.most_common())}")
        yield Published(origin, refusals, warnings)
    finally:
        assert origin.stop() == 0


def test_every_real_package_is_accepted(corpus: Corpus, published: Published) -> None:
    names = {p.name for p in corpus.tarballs}
    assert len(corpus.tarballs) >= 300 and any(n.startswith("@") for n in names)
    assert any(n.startswith("@esbuild/") for n in names)  # the optional platform packages
    listed = "\n".join(f"  {spec}: {why}" for spec, why in sorted(published.refusals.items()))
    assert not published.refusals, f"{len(published.refusals)} real packages refused:\n{listed}"


def test_npm_installs_the_same_tree_through_an_edge(corpus: Corpus, published: Published,
                                                     tmp_path: Path) -> None:
    edge = EdgeProcess(published.origin.url, tmp_path / "edge").start()
    try:
        started = time.monotonic()
        lock = install_project(tmp_path / "project", POPULAR_ROOTS, registry=edge.url, cache=tmp_path / "cache")
        print(f"\nnpm install through the edge: {time.monotonic() - started:.1f} s")
    finally:
        assert edge.stop() == 0
    differences = tree_differences(lock, corpus.lock)
    assert not differences, f"{len(differences)} lockfile entries differ:\n" + "\n".join(differences)
    # Every resolved URL names the edge: the install went through it, not around it.
    assert all(entry["resolved"].startswith(edge.url) for path, entry in lock["packages"].items() if path)
