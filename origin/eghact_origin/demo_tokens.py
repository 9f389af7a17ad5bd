"""The demo's credentials (``eghact-origin demo``, what ``./dev up`` runs): one admin token
and one edge token, kept in ``DATA/demo-tokens.json`` (0600) and reused by every start.

Minting a pair per start and never revoking them left live credentials piling up (6 after
3 starts). Each start now reads the file, keeps every token in it that is still live (known,
not revoked, with the demo's name and scopes), mints only what is missing or dead, writes
the file, and then revokes every other active token of the demo's names: the leftovers of
earlier starts (or of a start that crashed between minting and writing the file).

The file is the one way the demo's tokens reach other processes: ``eghact-edge network``
reads the edge token from it and hands it to the edges in their environment, so no token
is ever on a command line (which every local user can read in ``ps``).
"""

from __future__ import annotations

import json
from pathlib import Path

from eghact_common.durable import write_atomic
from eghact_common.wire import DEMO_TOKENS_FILE

from .auth import hash_token, new_token
from .storage.sqlite import SqliteMetadataStore

ACTOR = "demo"
# name -> scopes
DEMO_TOKENS: dict[str, tuple[str, ...]] = {"demo-admin": ("admin",), "demo-edge": ("edge",)}


def ensure_demo_tokens(store: SqliteMetadataStore, data_dir: Path) -> dict[str, str]:
    """The demo's live tokens by name, minting only those that are missing or dead."""
    path = data_dir / DEMO_TOKENS_FILE
    kept = _read(path)
    tokens: dict[str, str] = {}
    keep_ids: set[int] = set()
    for name, scopes in DEMO_TOKENS.items():
        token = kept.get(name, "")
        record = store.token_by_hash_sync(hash_token(token)) if token else None
        if record is None or record.revoked or record.name != name or tuple(record.scopes) != scopes:
            token = new_token()
            keep_ids.add(store.create_token_sync(name, hash_token(token), list(scopes), actor=ACTOR))
        else:
            keep_ids.add(record.id)
        tokens[name] = token
    if tokens != kept:
        _write_private(path, json.dumps(tokens, indent=2).encode() + b"\n")
    # Only once the file holds the live ones: a crash before this leaves more tokens, never none.
    for record in store.tokens_sync():
        if record.name in DEMO_TOKENS and not record.revoked and record.id not in keep_ids:
            store.revoke_token_sync(record.id, None, actor=ACTOR)
    return tokens


def _read(path: Path) -> dict[str, str]:
    try:
        found = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}   # absent or unreadable: the tokens are minted again, the old ones revoked
    # A value that is not a string is no token: it is minted again like a missing one.
    return {k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {}


def _write_private(path: Path, data: bytes) -> None:
    """Atomically, and readable by the owner only (0600 from the first byte)."""
    write_atomic(path, data, mode=0o600)
