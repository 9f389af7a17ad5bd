"""The project's plugin states, ``.eghact/state.json``::

    {"version": 1,
     "resolution": {"request": SHA256 of the resolve request body, "hash": the resolution's hash},
     "plugins": {"node_modules/x": {"name", "version", "integrity", "state", "placed": bool,
                                    "reason"?: why suspended, "error"?: {"error", "message"} why failed,
                                    "disabledCapabilities"?: optional capabilities switched off}}}

States (:data:`STATES`): ``active`` (placed, loaded by the app: the eager chunk after an install,
a lazy plugin after ``activate``), ``installed`` (locked and recorded; a lazy plugin is not placed
until its first ``activate`` unless ``install --all`` placed it), ``suspended`` (placed, turned
off by ``deactivate``, with its ``reason``), ``failed`` (its activation failed: ``error``).

``resolution`` remembers which request the lockfile answers, so an unchanged project asks for
the built resolution by hash (``GET /-/v1/resolutions/{hash}``, cacheable at an edge) instead of
posting its request again. ``plugins`` is every package of the lockfile, ``placed`` or not: an install whose
lockfile and folder agree with it has nothing to do. The file is replaced with the lockfile and the folder,
in one install transaction (``eghact_client.install``); a missing or unreadable one is an empty
state (the next install rebuilds the folder), never an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lockfile import Lock

__all__ = ["ACTIVE", "FAILED", "INSTALLED", "STATES", "SUSPENDED", "State", "request_digest"]

STATE_VERSION = 1
INSTALLED, ACTIVE, SUSPENDED, FAILED = "installed", "active", "suspended", "failed"
STATES = (INSTALLED, ACTIVE, SUSPENDED, FAILED)
_MAX_STATE_BYTES = 64 * 1024 * 1024


def request_digest(request: dict[str, Any]) -> str:
    """sha256 of a resolve request's JSON with sorted keys: equal bodies, equal digests."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class State:
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    request: str | None = None      # request_digest of what the lockfile was resolved for
    hash: str | None = None         # that resolution's hash

    @classmethod
    def read(cls, path: Path) -> State:
        try:
            with path.open("rb") as handle:
                doc = json.loads(handle.read(_MAX_STATE_BYTES))
        except (OSError, ValueError):
            return cls()
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            return cls()
        plugins = doc.get("plugins")
        resolution = doc.get("resolution")
        if not isinstance(resolution, dict):
            resolution = {}
        return cls(plugins={k: v for k, v in plugins.items() if isinstance(v, dict)} if isinstance(plugins, dict)
                   else {}, request=_str(resolution.get("request")), hash=_str(resolution.get("hash")))

    @classmethod
    def installed(cls, lock: Lock, *, request: str | None, placed: set[str], active: set[str],
                  before: State | None = None, disabled: dict[str, list[str]] | None = None) -> State:
        """The state once ``lock`` is installed for the request digested as ``request``, with
        the keys ``placed`` in the folder and ``active`` made active. A package that ``before``
        knew with the same integrity, placed as it will be, keeps its state (an install does not
        undo an ``activate``, a ``deactivate`` or a failure)."""
        plugins: dict[str, dict[str, Any]] = {}
        for p in lock.packages:
            entry: dict[str, Any] = {"name": p.name, "version": p.version, "integrity": p.integrity,
                                     "state": ACTIVE if p.key in active else INSTALLED, "placed": p.key in placed}
            old = before.plugins.get(p.key) if before is not None else None
            if old is not None and old.get("integrity") == p.integrity and old.get("state") in STATES \
                    and bool(old.get("placed", True)) == entry["placed"] \
                    and not (old["state"] == INSTALLED and p.key in active):
                entry.update({k: old[k] for k in ("state", "reason", "error") if k in old})
            raw = lock.document["packages"].get(p.key, {})
            off = set(raw.get("disabledCapabilities") or []) | set((disabled or {}).get(p.key, []))
            if off:
                entry["disabledCapabilities"] = sorted(off)
            plugins[p.key] = entry
        return cls(plugins=plugins, request=request, hash=lock.hash)

    def with_states(self, changes: dict[str, dict[str, Any]]) -> State:
        """A copy with each key's entry updated by ``changes[key]`` (``state`` set, and
        ``reason``/``error`` kept only for the state they explain)."""
        plugins = dict(self.plugins)
        for key, change in changes.items():
            entry = {k: v for k, v in plugins[key].items() if k not in ("reason", "error")}
            entry.update(change)
            plugins[key] = entry
        return State(plugins=plugins, request=self.request, hash=self.hash)

    def placed(self, key: str) -> bool:
        """Whether the package at ``key`` is in the plugins folder (a state from before
        lazy placement placed everything)."""
        return bool(self.plugins.get(key, {}).get("placed", True))

    def matches(self, lock: Lock) -> bool:
        """Whether the plugins folder this state describes is exactly ``lock``'s packages."""
        wanted = {p.key: p.integrity for p in lock.packages}
        return wanted == {key: entry.get("integrity") for key, entry in self.plugins.items()}

    def to_bytes(self) -> bytes:
        doc = {"version": STATE_VERSION, "resolution": {"request": self.request, "hash": self.hash},
               "plugins": {key: self.plugins[key] for key in sorted(self.plugins)}}
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
