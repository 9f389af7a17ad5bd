"""The unchanged project's install, answered from a stamp in well under 100 ms.

``eghact install`` in a project whose requirements, lockfile and state agree has nothing to do,
and proving it takes :meth:`PluginManager.install`'s full check: the project parsed and
validated, the lockfile parsed and held against every requirement (semver), the capability
rules applied, the state rebuilt and compared byte for byte. Its imports (asyncio, aiohttp,
semver's compiled grammar) and that work cost 0.3 s or more before anything is decided, most of
a re-install that should feel instant (issue 15: under 100 ms as a command).

So when the full check finds nothing to do, it leaves a stamp, ``.eghact/uptodate.json``: the
sha256 of every input of that decision, the bytes of ``eghact.json``, ``package.json``,
``eghact-lock.json`` and ``.eghact/state.json`` (and ``$EGHACT_REGISTRY``). A later plain install
or ``ci`` hashes the same files (stdlib only, no asyncio) and, when they are byte for byte the
ones that were proven up to date and the plugins folder is there, answers as the full check
would. Any other difference (a hand edit, an ``activate``, a journal a stopped run left, another
run holding the project) takes the full path; the stamp is never trusted beyond the bytes it
names, so it needs no invalidation.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from eghact_common.durable import write_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the full path decides every time
    fcntl = None  # type: ignore[assignment]

__all__ = ["STAMP", "fingerprint", "stamp", "up_to_date"]

STAMP = "uptodate.json"
_FORMAT = b"eghact-uptodate/1"
# what the no-work decision reads (project.py, state.py and transaction.py name them)
_INPUTS = ("eghact.json", "package.json", "eghact-lock.json", ".eghact/state.json")
_JOURNAL = ".eghact/journal.json"


def fingerprint(root: Path) -> str | None:
    """sha256 over the bytes of every file the no-work decision reads, or None when a stopped
    run left a journal or a stage (the full path must finish or clear it first)."""
    state_dir = root / ".eghact"
    if (root / _JOURNAL).exists() or any(state_dir.glob("stage-*")):
        return None
    digest = hashlib.sha256(_FORMAT)
    for name in _INPUTS:
        try:
            data = (root / name).read_bytes()
        except FileNotFoundError:
            digest.update(b"\0missing:" + name.encode())
            continue
        # length-prefixed, so two files can never trade bytes and hash alike
        digest.update(b"\0%d:%s\0" % (len(data), name.encode()))
        digest.update(data)
    digest.update(b"\0env:" + os.environ.get("EGHACT_REGISTRY", "").encode())
    return digest.hexdigest()


def stamp(root: Path, seen: str | None, plugins: Path, packages: int) -> None:
    """Record that the project whose inputs hashed to ``seen`` (taken before the check, under
    the project's lock) has nothing to install; nothing when ``seen`` is None."""
    if seen is None:
        return
    doc = {"fingerprint": seen, "plugins": str(plugins), "packages": packages}
    write_atomic(root / ".eghact" / STAMP, (json.dumps(doc) + "\n").encode())


def up_to_date(root: Path) -> dict[str, Any] | None:
    """The stamp (``packages``, ``plugins``) when the project at ``root`` is exactly as it was
    when proven up to date and its plugins folder is there; None otherwise (decide in full).
    A project another run holds is None too: the full path then says it is busy."""
    state_dir = root / ".eghact"
    try:
        doc = json.loads((state_dir / STAMP).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("packages"), int) \
            or not isinstance(doc.get("plugins"), str):
        return None
    with open(state_dir / "lock", "a+b") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
        if doc.get("fingerprint") != fingerprint(root) or not Path(doc["plugins"]).is_dir():
            return None
    return doc
