"""The bundle format on its own (no servers): round trips, split parts, keys, and the
property that no damage goes unnoticed — every cut is ``truncated``, and a flipped bit is
refused unless zstd ignores that bit (then what is signed is intact)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eghact_mirror import cli, signing
from eghact_mirror import index as fmt
from eghact_mirror.cli import _size
from eghact_mirror.errors import EXIT_CODES, MirrorError, exit_table
from eghact_mirror.verify import verify_bundle
from eghact_mirror.writer import BundleWriter


def build(target: Path, key: signing.SigningKey, *, files: int = 20, max_part_size: int | None = None,
          size: int = 3000) -> fmt.Index:
    writer = BundleWriter(target, max_part_size=max_part_size)
    entries = []
    for i in range(files):
        data = os.urandom(size) + bytes(i)
        sha = hashlib.sha512(data).hexdigest()
        writer.add(fmt.tarball_path(sha), data, len(data))
        entries.append(fmt.FileEntry(fmt.tarball_path(sha), len(data), sha))
    events = b'{"seq":1,"type":"publish","name":"a","version":"1.0.0","keys":[],"time":"t"}\n'
    writer.add(fmt.EVENTS_PATH, events, len(events))
    entries.append(fmt.FileEntry(fmt.EVENTS_PATH, len(events), hashlib.sha512(events).hexdigest()))
    index = fmt.Index("origin", "http://origin", 0, 1, "now", None, key.fingerprint, "export", {"names": None},
                      (), (), 1, tuple(entries))
    data = index.encode()
    writer.finish(data, key.sign(data), key.sign, key.fingerprint)
    return index


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, signing.SigningKey, signing.TrustedKey]:
    root = tmp_path_factory.mktemp("format")
    key = signing.generate(root / "key")
    build(root / "small.bundle", key, files=4, size=400)
    return root, key, signing.load_trusted_key(root / "key.pub")


def test_round_trip(material: tuple[Path, signing.SigningKey, signing.TrustedKey], tmp_path: Path) -> None:
    _, key, trusted = material
    index = build(tmp_path / "b", key)
    verified = verify_bundle(tmp_path / "b", trusted)
    assert verified.index == index
    assert verified.digest == hashlib.sha512(index.encode()).hexdigest()
    assert verified.file_sha512 == (hashlib.sha512((tmp_path / "b").read_bytes()).hexdigest(),)
    assert list(tmp_path.iterdir()) == [tmp_path / "b"]  # no temp file left behind
    with open(tmp_path / "b", "rb") as raw, tarfile.open(
            fileobj=zstandard.ZstdDecompressor().stream_reader(raw), mode="r|") as tar:
        assert all(not member.pax_headers for member in tar)  # plain ustar headers: cheap to read


def test_split_round_trip_and_part_checks(material: tuple[Path, signing.SigningKey, signing.TrustedKey],
                                          tmp_path: Path) -> None:
    _, key, trusted = material
    build(tmp_path / "b", key, files=30, max_part_size=16 * 1024)
    parts = sorted(tmp_path.glob("b.part[0-9]*"))
    assert len(parts) >= 5 and all(p.stat().st_size == 16 * 1024 for p in parts[:-1])
    assert verify_bundle(tmp_path / "b", trusted).location.split
    assert verify_bundle(tmp_path / "b.parts.json", trusted).location.split
    (tmp_path / "b.part999").write_bytes(b"stray")
    with pytest.raises(MirrorError) as stray:
        verify_bundle(tmp_path / "b", trusted)
    assert stray.value.code == "extra_file"
    (tmp_path / "b.part999").unlink()
    original = parts[2].read_bytes()
    for offset in range(0, len(original), 997):  # wherever a part is damaged, the part is named
        parts[2].write_bytes(original[:offset] + bytes([original[offset] ^ 0xFF]) + original[offset + 1:])
        with pytest.raises(MirrorError) as damaged:
            verify_bundle(tmp_path / "b", trusted)
        assert (damaged.value.code, parts[2].name in damaged.value.message) == ("bad_part", True), offset
    parts[2].write_bytes(original)
    (tmp_path / "b.parts.json").unlink()
    with pytest.raises(MirrorError) as manifest:
        verify_bundle(tmp_path / "b", trusted)
    assert manifest.value.code == "missing_part"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_every_cut_is_truncated(material: tuple[Path, signing.SigningKey, signing.TrustedKey], cut: float) -> None:
    root, _, trusted = material
    data = (root / "small.bundle").read_bytes()
    (root / "cut.bundle").write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(MirrorError) as refused:
        verify_bundle(root / "cut.bundle", trusted)
    assert refused.value.code in ("truncated", "corrupt") if cut == 0 else refused.value.code == "truncated"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True), bit=st.integers(0, 7))
def test_no_flipped_bit_changes_what_is_accepted(material: tuple[Path, signing.SigningKey, signing.TrustedKey],
                                                 where: float, bit: int) -> None:
    """A flip is refused, unless it falls in a bit zstd ignores (the frame header's unused
    bit, the window size, padding): then the content — what is signed — is bit-identical."""
    root, _, trusted = material
    original = (root / "small.bundle").read_bytes()
    data = bytearray(original)
    data[int(len(data) * where)] ^= 1 << bit
    (root / "flipped.bundle").write_bytes(bytes(data))
    try:
        verify_bundle(root / "flipped.bundle", trusted)
    except MirrorError as refused:
        assert refused.code in ("corrupt", "truncated", "bad_signature", "digest_mismatch", "not_a_bundle")
    else:
        assert _content(bytes(data)) == _content(original)


def _content(bundle: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(bundle)).read(1 << 30)


def test_keys(tmp_path: Path) -> None:
    key = signing.generate(tmp_path / "k")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert signing.load_signing_key(tmp_path / "k").fingerprint == key.fingerprint
    assert signing.load_trusted_key(tmp_path / "k.pub").fingerprint == key.fingerprint
    assert key.fingerprint.startswith("SHA256:") and len(key.fingerprint) == 50
    with pytest.raises(MirrorError) as exists:
        signing.generate(tmp_path / "k")
    assert exists.value.code == "bad_input"
    with pytest.raises(MirrorError) as private:
        signing.load_trusted_key(tmp_path / "k")
    assert "private key" in private.value.message
    trusted = signing.load_trusted_key(tmp_path / "k.pub")
    assert trusted.verifies(key.sign(b"x"), b"x") and not trusted.verifies(key.sign(b"x"), b"y")


def test_exit_codes_are_distinct_documented_and_sizes_parse() -> None:
    numbers = [number for number, _ in EXIT_CODES.values()]
    assert len(numbers) == len(set(numbers))
    assert exit_table() in (cli.__doc__ or "")  # the CLI's docstring carries the table as it is
    assert _size("700M") == 700 * 1024**2 and _size("4G") == 4 * 1024**3 and _size("4096") == 4096


def test_index_problems_are_all_reported() -> None:
    with pytest.raises(MirrorError) as bad:
        fmt.parse_index(b'{"format": "eghact-mirror-bundle", "version": 1, "from_seq": "x"}')
    assert bad.value.code == "not_a_bundle" and "origin_id" in bad.value.message and "from_seq" in bad.value.message
