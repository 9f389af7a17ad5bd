"""The mirror's own JSON inputs — a lockfile (``export --lockfile``), an index file or a mirror
data dir (``export --after``), the follower's ``mirror.json`` and journal — are read within a
size bound and parsed with ``parse_json``: a file too big, or nested too deep, is ``bad_input``
(exit 4) naming the file, where it used to be read whole, or crash the run with a
RecursionError (exit 1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from eghact_mirror import inputs, signing
from eghact_mirror.errors import EXIT_CODES

from ..support import tree_digest
from .conftest import Live
from .helpers import mirror, refused

DEEP = b"[" * 100_000  # past json's recursion limit: a RecursionError before the fix


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    signing.generate(root / "key")
    return root / "key"


def a_mirror(root: Path, *, journal: bytes | None = None, position: bytes | None = None) -> Path:
    """A mirror dir whose mirror.json is ``position``, or names a journaled index ``journal``."""
    into = root / "mirror"
    (into / "sync").mkdir(parents=True)
    if journal is not None:
        digest = hashlib.sha512(journal).hexdigest()
        (into / "sync" / f"{digest}.json").write_bytes(journal)
        position = json.dumps({"applied_seq": 1, "last_bundle": digest, "source_origin_id": None}).encode()
    assert position is not None
    (into / "mirror.json").write_bytes(position)
    return into


@pytest.mark.parametrize("case", ["lockfile", "after-index", "after-mirror-dir", "sync-position", "sync-journal"])
def test_json_nested_too_deep_is_bad_input(case: str, live: Live, key: Path, tmp_path: Path) -> None:
    export = ["export", "--origin", live.url, "--key", str(key), "-o", str(tmp_path / "out.bundle")]
    sync = ["sync", "--origin", live.url, "--once"]
    if case == "lockfile":
        (tmp_path / "eghact-lock.json").write_bytes(DEEP)
        named, args = tmp_path / "eghact-lock.json", [*export, "--lockfile", str(tmp_path / "eghact-lock.json")]
    elif case == "after-index":
        (tmp_path / "last.json").write_bytes(DEEP)
        named, args = tmp_path / "last.json", [*export, "--after", str(tmp_path / "last.json")]
    elif case == "after-mirror-dir":
        into = a_mirror(tmp_path, position=DEEP)
        named, args = into / "mirror.json", [*export, "--after", str(into)]
    elif case == "sync-position":
        into = a_mirror(tmp_path, position=DEEP)
        named, args = into / "mirror.json", [*sync, "--into", str(into)]
    else:
        into = a_mirror(tmp_path, journal=DEEP)
        named, args = next((into / "sync").iterdir()), [*sync, "--into", str(into)]
    before = tree_digest(tmp_path)
    result = mirror(*args, check=False)
    assert refused(result) == (EXIT_CODES["bad_input"][0], "bad_input"), result.stderr[-2000:]
    assert "json_too_deep" in result.stderr and str(named) in result.stderr, result.stderr[-2000:]
    assert tree_digest(tmp_path) == before


def test_a_lockfile_over_the_bound_is_refused_before_it_is_read(live: Live, key: Path, tmp_path: Path) -> None:
    lockfile = tmp_path / "eghact-lock.json"
    with open(lockfile, "wb") as file:
        file.truncate(inputs.MAX_BYTES + 1)  # sparse: no disk, but read whole it was 256 MiB of memory
    result = mirror("export", "--origin", live.url, "--key", str(key), "-o", str(tmp_path / "out.bundle"),
                    "--lockfile", str(lockfile), check=False)
    assert refused(result) == (EXIT_CODES["bad_input"][0], "bad_input"), result.stderr[-2000:]
    assert f"is over {inputs.MAX_BYTES} bytes" in result.stderr
    assert not list(tmp_path.glob("*.bundle*"))
