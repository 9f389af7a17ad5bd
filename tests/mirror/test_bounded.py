"""An import writes nothing before the bundle's signed index is verified, and then only what
that index vouches for; every size a hostile bundle declares is bounded before it costs disk,
memory or time (issue 11, item 5).

The imports run as real ``eghact-mirror`` processes with RLIMIT_FSIZE set to 1 MiB: a process
that writes a file past it gets EFBIG (Python ignores SIGXFSZ), so an import that stages a
hostile member fails with an I/O error instead of its refusal. The hostile bundles are made by
hand as an attacker would: zstd frames of RLE blocks, which turn 4 bytes into 128 KiB of
zeros (the 4 GiB member below is a 128 KiB file), and tar headers that lie."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
from pathlib import Path

import pytest

from eghact_mirror import index as fmt
from eghact_mirror import signing
from eghact_mirror.errors import EXIT_CODES, MirrorError
from eghact_mirror.stage import StageSink
from eghact_mirror.ustar import BLOCK, UstarWriter
from eghact_mirror.verify import read_signed, verify_bundle, verify_into
from eghact_mirror.writer import BundleWriter

from ..support import tree_digest
from .helpers import ENV, mirror_cmd, refused

GIB = 1 << 30
FILE_LIMIT = 1 << 20  # no file an import writes for these bundles may grow past this
_RLE = 128 * 1024  # zstd's largest block


def _block(kind: int, size: int, last: bool) -> bytes:
    return ((size << 3) | (kind << 1) | last).to_bytes(3, "little")


def zeros_frame(head: bytes, zeros: int, tail: bytes = b"") -> bytes:
    """One zstd frame: ``head`` stored raw, ``zeros`` zero bytes as RLE blocks (4 bytes per
    128 KiB), then ``tail`` raw — a valid frame, whatever the tar inside says."""
    out = bytearray(b"\x28\xb5\x2f\xfd\x00\x38")  # magic; no checksum, no size; 128 KiB window
    chunks = [(0, head[i:i + _RLE]) for i in range(0, len(head), _RLE)]
    chunks += [(1, min(_RLE, zeros - i)) for i in range(0, zeros, _RLE)]
    chunks += [(0, tail[i:i + _RLE]) for i in range(0, len(tail), _RLE)] or [(0, b"")]
    for n, (kind, what) in enumerate(chunks):
        last = n == len(chunks) - 1
        if kind == 0:
            out += _block(0, len(what), last) + what  # type: ignore[arg-type]
        else:
            out += _block(1, what, last) + b"\0"  # type: ignore[arg-type]
    return bytes(out)


def header(path: str, size: int, kind: bytes = b"0", size_field: bytes | None = None) -> bytes:
    """A ustar header as our writer makes it, with another type flag or size field if asked
    (the checksum redone: a lie must pass it to be read at all)."""
    block = bytearray(UstarWriter(bytearray()).header(path, size))
    block[156:157] = kind
    if size_field is not None:
        block[124:136] = size_field
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pax(records: dict[str, str], name: str = "x", declared: int = 0) -> bytes:
    """A pax extended header (what tar and tarfile write) followed by a member's header."""
    body = b""
    for key, value in records.items():
        record = f" {key}={value}\n".encode()
        length = len(record) + len(str(len(record)))
        length += len(str(length)) - len(str(len(record)))
        body += str(length).encode() + record
    return (header("././@PaxHeader", len(body), b"x") + body + bytes(-len(body) % BLOCK)
            + header(name, declared))


def tarball_name(seed: bytes) -> str:
    return fmt.tarball_path(hashlib.sha512(seed).hexdigest())


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, signing.SigningKey]:
    root = tmp_path_factory.mktemp("bounded")
    return root / "trusted.pub", signing.generate(root / "trusted")


def run_import(bundle: Path, into: Path, trust: Path) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    return subprocess.run(mirror_cmd("import", str(bundle), "--into", str(into), "--trust", str(trust)),
                          capture_output=True, text=True, env=ENV, timeout=120, preexec_fn=limit)


def assert_refused_untouched(result: subprocess.CompletedProcess[str], code: str, into: Path, before: str) -> None:
    assert refused(result) == (EXIT_CODES[code][0], code), result.stderr[-2000:]
    assert tree_digest(into) == before
    assert not list(into.parent.glob(f".{into.name}.staging-*"))


def signed_bundle(target: Path, key: signing.SigningKey, members: list[tuple[str, bytes]],
                  listed: list[tuple[str, bytes]]) -> None:
    """A bundle holding ``members`` whose index, signed by ``key``, lists ``listed``."""
    writer = BundleWriter(target)
    for path, data in members:
        writer.add(path, data, len(data))
    entries = tuple(fmt.FileEntry(p, len(d), hashlib.sha512(d).hexdigest()) for p, d in listed)
    index = fmt.Index("origin", "http://127.0.0.1:9", 0, 1, "now", None, key.fingerprint, "export",
                      {"names": None}, (), (), 0, entries).encode()
    writer.finish(index, key.sign(index), key.sign, key.fingerprint)


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    into = tmp_path / "mirror"
    into.mkdir()
    (into / "keep").write_text("a mirror's file")
    return into


def test_an_unsigned_bundle_of_a_4_gib_member_of_zeros_stages_nothing(
        keypair: tuple[Path, signing.SigningKey], mirror_dir: Path, tmp_path: Path) -> None:
    # The bundle: one member of 4 GiB of zeros, no index, 128 KiB on disk. Before the
    # fix the import staged the zeros (4.29 GB) and refused only at the end, for want of an index.
    bundle = tmp_path / "zeros.bundle"
    bundle.write_bytes(zeros_frame(header(tarball_name(b"z"), 4 * GIB), 4 * GIB, bytes(2 * BLOCK)))
    assert bundle.stat().st_size < 140_000
    before = tree_digest(mirror_dir)
    result = run_import(bundle, mirror_dir, keypair[0])
    assert_refused_untouched(result, "not_a_bundle", mirror_dir, before)
    assert "decompression bomb" in result.stderr
    # verify, which stores nothing, refuses it at the member's header too, instead of inflating 4 GiB
    with pytest.raises(MirrorError) as verified:
        verify_bundle(bundle, signing.load_trusted_key(keypair[0]))
    assert "decompression bomb" in verified.value.message


def test_a_bundle_signed_by_another_key_stages_nothing(
        keypair: tuple[Path, signing.SigningKey], mirror_dir: Path, tmp_path: Path) -> None:
    # Incompressible, so no expansion bound applies: only reading the index first keeps the
    # 4 MiB member out of the staging dir.
    other = signing.generate(tmp_path / "other")
    data = os.urandom(4 << 20)
    members = [(tarball_name(data), data)]
    signed_bundle(tmp_path / "other.bundle", other, members, members)
    before = tree_digest(mirror_dir)
    assert_refused_untouched(run_import(tmp_path / "other.bundle", mirror_dir, keypair[0]), "wrong_key",
                             mirror_dir, before)


def test_a_member_bigger_than_its_signed_size_is_refused_before_it_is_staged(
        keypair: tuple[Path, signing.SigningKey], mirror_dir: Path, tmp_path: Path) -> None:
    trust, key = keypair
    small = b"the tarball the index vouches for"
    name = tarball_name(small)
    signed_bundle(tmp_path / "big.bundle", key, [(name, small + os.urandom(4 << 20))], [(name, small)])
    before = tree_digest(mirror_dir)
    result = run_import(tmp_path / "big.bundle", mirror_dir, trust)
    assert_refused_untouched(result, "digest_mismatch", mirror_dir, before)


def test_the_second_pass_stops_at_a_member_the_first_did_not_see(
        keypair: tuple[Path, signing.SigningKey], tmp_path: Path) -> None:
    """The bundle is replaced between the two passes by one with the same signed index and a
    member bigger than it says: the staging sink never gets a byte of that member."""
    trust, key = keypair
    small = b"the tarball the index vouches for"
    name = tarball_name(small)
    signed_bundle(tmp_path / "b", key, [(name, small)], [(name, small)])
    head = read_signed(tmp_path / "b", signing.load_trusted_key(trust))
    signed_bundle(tmp_path / "b", key, [(name, small + os.urandom(4 << 20))], [(name, small)])
    staged = tmp_path / "staged"
    staged.mkdir()
    sink = StageSink(staged)
    try:
        with pytest.raises(MirrorError) as refusal:
            verify_into(head, sink)
    finally:
        sink.close()
    assert refusal.value.code == "digest_mismatch" and "before any of it was stored" in refusal.value.message
    assert list(staged.iterdir()) == []


@pytest.mark.parametrize(("what", "head", "code", "says"), [
    ("pax size over 8 GiB", pax({"size": str(9 * GIB)}, tarball_name(b"p")), "not_a_bundle",
     "a bundle member can hold"),
    # A negative size moved the reader back into its own header ("-512": the member again).
    ("negative pax size", pax({"size": "-512"}, tarball_name(b"n")), "corrupt", "unreadable pax size"),
    ("pax size with a sign", pax({"size": "+512"}, tarball_name(b"+")), "corrupt", "unreadable pax size"),
    ("pax size in other digits", pax({"size": "\u0661\u0660"}, tarball_name(b"d")), "corrupt", "unreadable pax size"),
    ("signed octal size", header(tarball_name(b"s"), 0, size_field=b"-0000001000\0"), "corrupt", "unreadable size"),
    ("long pax name", pax({"path": "a/" * 3000}, declared=8 << 20), "not_a_bundle", "over 4096"),
])
def test_hostile_tar_headers_are_refused_at_once(
        what: str, head: bytes, code: str, says: str, keypair: tuple[Path, signing.SigningKey], mirror_dir: Path,
        tmp_path: Path) -> None:
    bundle = tmp_path / "hostile.bundle"
    bundle.write_bytes(zeros_frame(head, 8 << 20, bytes(2 * BLOCK)))
    with pytest.raises(MirrorError) as verified:
        verify_bundle(bundle, signing.load_trusted_key(keypair[0]))
    assert verified.value.code == code and says in verified.value.message, verified.value.message
    before = tree_digest(mirror_dir)
    assert_refused_untouched(run_import(bundle, mirror_dir, keypair[0]), code, mirror_dir, before)

