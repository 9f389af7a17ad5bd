"""Every way a bundle can be wrong is refused with its own error and exit code, and the
mirror's data dir is byte-identical afterwards. The mirror here is at b1; every tampered
bundle is made from b2, which would apply if it were accepted."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from eghact_mirror import index as fmt
from eghact_mirror.errors import EXIT_CODES

from ..support import tree_digest
from .conftest import Scenario
from .helpers import mirror, refused, repack


@pytest.fixture(scope="module")
def at_b1(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("refusals") / "mirror"
    scenario.import_("b0", into)
    scenario.import_("b1", into)
    return into


def _flip(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0x40
    dst.write_bytes(bytes(data))
    return dst


def _truncate(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) * 2 // 3])
    return dst


def _extra(src: Path, dst: Path) -> Path:
    junk = b"not in the index"
    extra = (fmt.tarball_path(hashlib.sha512(junk).hexdigest()), junk)
    return repack(src, dst, lambda members: [*members[:-2], extra, *members[-2:]])


def _altered_tarball(src: Path, dst: Path) -> Path:
    return repack(src, dst, lambda members: [(n, d + b"\0" if n.startswith("tarballs/") else d) for n, d in members])


def _altered_index(src: Path, dst: Path) -> Path:
    def edit(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(n, d.replace(b'"from_seq":', b'"from_seq": ') if n == "index.json" else d) for n, d in members]
    return repack(src, dst, edit)


def _dropped_file(src: Path, dst: Path) -> Path:
    return repack(src, dst, lambda members: [m for m in members if not m[0].startswith("tarballs/")])


def _unsafe_member(src: Path, dst: Path) -> Path:
    return repack(src, dst, lambda members: [("../escape", b"x"), *members])


TAMPERED = {
    "flipped byte": (_flip, "corrupt"),
    "truncated": (_truncate, "truncated"),
    "extra file": (_extra, "extra_file"),
    "altered tarball": (_altered_tarball, "digest_mismatch"),
    "altered index": (_altered_index, "bad_signature"),
    "missing file": (_dropped_file, "missing_file"),
    "unsafe member": (_unsafe_member, "not_a_bundle"),
}


@pytest.mark.parametrize("kind", list(TAMPERED))
def test_tampered_bundles_are_refused(kind: str, scenario: Scenario, at_b1: Path, tmp_path: Path) -> None:
    make, code = TAMPERED[kind]
    bundle = make(scenario.bundles["b2"], tmp_path / "tampered.bundle")
    before = tree_digest(at_b1)
    commands = [["import", str(bundle), "--into", str(at_b1)]]
    if kind in ("flipped byte", "altered index"):
        commands.append(["verify", str(bundle)])  # verify alone says the same (and it is the same code)
    for command in commands:
        result = mirror(*command, "--trust", str(scenario.trust), check=False)
        assert refused(result) == (EXIT_CODES[code][0], code), result.stderr
    assert tree_digest(at_b1) == before
    assert not list(at_b1.parent.glob(".mirror.staging-*"))  # the staging dir went too


def test_a_wrong_key_is_refused(scenario: Scenario, at_b1: Path) -> None:
    before = tree_digest(at_b1)
    result = mirror("import", str(scenario.bundles["b2"]), "--into", str(at_b1), "--trust",
                    str(scenario.other_trust), check=False)
    assert refused(result) == (20, "wrong_key")
    assert "signed by key SHA256:" in result.stderr
    assert tree_digest(at_b1) == before


@pytest.mark.parametrize(("bundle", "code"), [("b3", "out_of_order"), ("b0", "replay"), ("b0x", "downgrade")])
def test_bundles_out_of_the_chain_are_refused(bundle: str, code: str, scenario: Scenario, at_b1: Path) -> None:
    before = tree_digest(at_b1)
    result = scenario.import_(bundle, at_b1, check=False)
    assert refused(result) == (EXIT_CODES[code][0], code), result.stderr
    assert tree_digest(at_b1) == before


def test_a_split_bundle_missing_a_part_is_refused(scenario: Scenario, at_b1: Path, tmp_path: Path) -> None:
    source = scenario.bundles["b0"]
    parts = sorted(source.parent.glob(f"{source.name}.part[0-9]*"))
    assert len(parts) > 2
    for path in [*parts, *source.parent.glob(f"{source.name}.parts.*")]:
        if path != parts[1]:
            shutil.copy(path, tmp_path / path.name)
    before = tree_digest(at_b1)
    result = mirror("import", str(tmp_path / source.name), "--into", str(at_b1), "--trust", str(scenario.trust),
                    check=False)
    assert refused(result) == (26, "missing_part")
    assert parts[1].name in result.stderr
    shutil.copy(parts[1], tmp_path / parts[1].name)
    with open(tmp_path / parts[1].name, "r+b") as damaged:
        damaged.seek(100)
        damaged.write(b"\0\0\0\0")
    result = mirror("verify", str(tmp_path / source.name), "--trust", str(scenario.trust), check=False)
    assert refused(result) == (27, "bad_part")
    assert tree_digest(at_b1) == before


def test_the_refusing_mirror_still_takes_the_right_bundle(scenario: Scenario, at_b1: Path) -> None:
    # Last in this module: the refusals above left nothing behind that gets in the way.
    done = scenario.import_("b2", at_b1)
    assert "APPLIED" in done.stdout
    assert json.loads((at_b1 / "mirror.json").read_text())["applied_seq"] > 0
