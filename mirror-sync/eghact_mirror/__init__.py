"""Eghact mirror sync: signed offline bundles and an online follower (issue 5).

It reaches the origin only over HTTP, never by import: an air-gapped site runs this package
and ``eghact-origin`` (which owns the data-dir format and applies staged bundles), nothing else.

    export                                    verify / import                  sync
    client ─► selection ─► collect ─► writer  reader ─► verify ─► stage ──►   client ─► collect ─► stage
              (closure)    (fetch,    (tar|   (parts,   (sig,     (stage.json,          (fetch,     (mirror-apply)
                            check)     zstd)   frame)    digests)  mirror-apply)          check)

    index     the bundle format: signed index, part manifest, paths, the bundle digest
    signing   Ed25519 key files, fingerprints, signatures
    chain     where the next link starts: --after a bundle, an index, or a mirror dir
    record    the verification record kept for the people who sign off a transfer
    progress  a rich bar on a terminal, nothing elsewhere
    errors    one error class, a stable code and exit code per cause
    cli       ``eghact-mirror``

The public names below are loaded on first use, so that ``eghact-mirror verify`` on an
air-gapped host does not pay for importing the HTTP client it will never use. (The
coroutines ``export.export`` and ``sync.sync`` share their module's name, so they are
reached through their modules.)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "ExportOptions": "export",
    "verify_bundle": "verify", "Verified": "verify",
    "import_bundle": "importer", "ImportReport": "importer",
    "SyncOptions": "sync",
    "SelectionSpec": "selection",
    "Index": "index", "digest": "index",
    "SigningKey": "signing", "TrustedKey": "signing", "load_signing_key": "signing", "load_trusted_key": "signing",
    "MirrorError": "errors", "EXIT_CODES": "errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'eghact_mirror' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
