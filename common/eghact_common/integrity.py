"""Subresource-Integrity strings and digests, as npm's ``ssri`` uses them.

npm names a tarball by two digests: ``dist.integrity`` (an SRI string, ``sha512-<base64>``)
and the legacy ``dist.shasum`` (sha1 hex). Blobs are stored under their sha512 hex. This module
converts between those forms, parses what clients send, and hashes big payloads in a stream.

Parsing follows ssri: an SRI string is whitespace-separated entries ``<algo>-<base64>[?opts]``;
options are ignored; well-formed entries of algorithms we do not know are skipped (so that a
newer client does not break us), but malformed entries are errors. When checking, only the
strongest algorithm present counts, exactly as ``ssri.checkData`` does: a weaker hash beside a
sha512 must not be a way to slip a sha1 collision past us.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "ALGORITHMS",
    "Hasher",
    "InvalidIntegrity",
    "digests",
    "hex_to_sri",
    "matches",
    "parse_sri",
    "sha1_hex",
    "sha512_hex",
    "sri_sha512",
]

# Weakest first: the index is the strength used to pick the algorithm that decides a match.
ALGORITHMS: tuple[str, ...] = ("sha1", "sha256", "sha384", "sha512")
_DIGEST_SIZES = {algo: hashlib.new(algo).digest_size for algo in ALGORITHMS}
_ENTRY = re.compile(r"^([a-z0-9]+)-([^?]*)(\?.*)?$")


class InvalidIntegrity(ValueError):
    """An SRI string (or digest) that cannot be parsed; ``problems`` lists every bad entry."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid integrity: " + "; ".join(self.problems))


def sri_sha512(data: bytes) -> str:
    """The npm ``dist.integrity`` of ``data``: ``sha512-<base64>``."""
    return _to_sri("sha512", hashlib.sha512(data).digest())


def sha1_hex(data: bytes) -> str:
    """The npm ``dist.shasum`` of ``data``."""
    return hashlib.sha1(data).hexdigest()


def sha512_hex(data: bytes) -> str:
    """The sha512 hex digest of ``data``: the name of its blob."""
    return hashlib.sha512(data).hexdigest()


def hex_to_sri(sha512_hex: str) -> str:
    """Turn a sha512 hex digest (a blob name) into the equivalent SRI string."""
    try:
        raw = bytes.fromhex(sha512_hex)
    except (ValueError, TypeError) as exc:
        raise InvalidIntegrity([f"not a hex digest: {sha512_hex!r}"]) from exc
    if len(raw) != _DIGEST_SIZES["sha512"]:
        raise InvalidIntegrity([f"a sha512 hex digest has 128 characters, got {len(sha512_hex)}"])
    return _to_sri("sha512", raw)


def parse_sri(text: str) -> list[tuple[str, bytes]]:
    """Parse an SRI string into ``(algorithm, raw digest)`` pairs, in the order given.

    Raises :class:`InvalidIntegrity` listing every malformed entry, or when no entry uses an
    algorithm we know (there would be nothing to check against).
    """
    if not isinstance(text, str):
        raise InvalidIntegrity([f"expected a string, got {type(text).__name__}"])
    hashes: list[tuple[str, bytes]] = []
    problems: list[str] = []
    for entry in text.split():
        match = _ENTRY.match(entry)
        if match is None:
            problems.append(f"{entry!r} is not <algorithm>-<base64>")
            continue
        algo, b64 = match.group(1), match.group(2)
        if algo not in _DIGEST_SIZES:
            continue
        try:
            raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
        except binascii.Error:
            problems.append(f"{entry!r} has a digest that is not base64")
            continue
        if len(raw) != _DIGEST_SIZES[algo]:
            problems.append(f"{entry!r} has a {len(raw)}-byte digest; {algo} has {_DIGEST_SIZES[algo]}")
            continue
        hashes.append((algo, raw))
    if problems:
        raise InvalidIntegrity(problems)
    if not hashes:
        raise InvalidIntegrity([f"no sha1/sha256/sha384/sha512 hash in {text!r}"])
    return hashes


def matches(data_digests: Mapping[str, bytes], sri_text: str) -> bool:
    """Whether data with the raw digests ``data_digests`` (algorithm -> digest) satisfies ``sri_text``.

    Only the strongest algorithm named in ``sri_text`` decides; it matches when any hash of
    that algorithm equals ours. Raises ``ValueError`` when ``data_digests`` lacks that algorithm,
    because falling back to a weaker one would quietly downgrade the check.
    """
    hashes = parse_sri(sri_text)
    strongest = _strongest(hashes)
    ours = data_digests.get(strongest)
    if ours is None:
        raise ValueError(f"integrity uses {strongest}, but no {strongest} digest of the data was computed")
    # compare_digest: cheap, and keeps us honest should a digest ever act as a secret.
    return any(hmac.compare_digest(ours, raw) for algo, raw in hashes if algo == strongest)


def deciding_algorithm(sri_text: str) -> str:
    """The algorithm :func:`matches` will compare for ``sri_text`` (its strongest), so a
    caller computes that digest only. Raises ``ValueError`` as :func:`parse_sri` does."""
    return _strongest(parse_sri(sri_text))


def _strongest(hashes: list[tuple[str, bytes]]) -> str:
    return max((algo for algo, _ in hashes), key=ALGORITHMS.index)


def digests(data: bytes, algorithms: Iterable[str] = ALGORITHMS) -> dict[str, bytes]:
    """Raw digests of ``data`` for ``algorithms``, the form :func:`matches` takes."""
    hasher = Hasher(extra=algorithms)
    hasher.update(data)
    return hasher.digests


class Hasher:
    """Streaming digests of a payload too big to hold: sha1 and sha512 always, others on request.

    Feed it with :meth:`update`; read the results at any time (they reflect what was fed).
    """

    def __init__(self, *, extra: Iterable[str] = ()):
        names = {"sha1", "sha512", *extra}
        unknown = names - set(ALGORITHMS)
        if unknown:
            raise ValueError(f"unsupported algorithm(s): {', '.join(sorted(unknown))}")
        self._hashes = {name: hashlib.new(name) for name in sorted(names, key=ALGORITHMS.index)}
        self._size = 0

    def update(self, chunk: bytes) -> None:
        """Add ``chunk`` (any bytes-like object) to every digest."""
        for h in self._hashes.values():
            h.update(chunk)
        self._size += memoryview(chunk).nbytes

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    @property
    def sri(self) -> str:
        """``sha512-<base64>`` of what was fed."""
        return _to_sri("sha512", self._hashes["sha512"].digest())

    @property
    def sha512_hex(self) -> str:
        return self._hashes["sha512"].hexdigest()

    @property
    def sha1_hex(self) -> str:
        return self._hashes["sha1"].hexdigest()

    @property
    def digests(self) -> dict[str, bytes]:
        """Raw digest per computed algorithm, for :func:`matches`."""
        return {name: h.digest() for name, h in self._hashes.items()}


def _to_sri(algo: str, raw: bytes) -> str:
    return f"{algo}-{base64.b64encode(raw).decode('ascii')}"
