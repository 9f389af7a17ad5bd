"""Ed25519 signing keys: generate, load, fingerprint, sign, verify.

Files (both PEM, what ``openssl pkey`` reads):

    KEYFILE       the private key, PKCS#8, unencrypted, mode 0600 — it stays on the exporting host
    KEYFILE.pub   the public key, SubjectPublicKeyInfo — copied to every mirror, given as ``--trust``

The fingerprint, printed by ``keygen`` and recorded in every index and verification record,
is ``SHA256:`` and the unpadded base64 of the SHA-256 of the raw 32-byte public key (the
shape OpenSSH prints), short enough to read aloud when two people compare keys over a phone.

A signature is the raw 64-byte Ed25519 signature of the exact bytes signed (the index, the
part manifest): nothing is re-serialised before verifying, so there is no canonical-JSON
question to get wrong.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eghact_common.durable import write_atomic

from .errors import MirrorError

SIGNATURE_SIZE = 64


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    """A private key and what is derived from it."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


@dataclass(frozen=True)
class TrustedKey:
    """A public key a mirror trusts."""

    public: Ed25519PublicKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def verifies(self, signature: bytes, data: bytes) -> bool:
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def generate(path: Path, *, force: bool = False) -> SigningKey:
    """Write a new key pair to ``path`` (0600) and ``path.pub``; refuses to overwrite unless ``force``."""
    key = SigningKey(Ed25519PrivateKey.generate())
    private_pem = key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    public_pem = key.public.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    pub_path = public_path(path)
    if not force:
        for existing in (path, pub_path):
            if existing.exists():
                raise MirrorError("bad_input", f"{existing} exists; pass --force to replace the key pair")
    # mode from the first byte: the private key is never readable by others, not even for a moment.
    write_atomic(path, private_pem, mode=0o600)
    write_atomic(pub_path, public_pem, mode=0o644)
    return key


def public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def load_signing_key(path: Path) -> SigningKey:
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MirrorError("bad_input", f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise MirrorError("bad_input", f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return SigningKey(key)


def load_trusted_key(path: Path) -> TrustedKey:
    data = _read(path, "trusted public key")
    if b"PRIVATE KEY" in data:
        # A mirror needs only the public half; being handed the private key means it was
        # copied across the air gap, which is worth stopping for.
        raise MirrorError("bad_input", f"{path} is a private key: give the mirror KEYFILE.pub, never KEYFILE")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MirrorError("bad_input", f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise MirrorError("bad_input", f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return TrustedKey(key)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MirrorError("bad_input", f"cannot read the {what} {path}: {exc.strerror}") from exc
