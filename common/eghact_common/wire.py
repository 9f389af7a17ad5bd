"""Wire formats shared by every node: change events and surrogate keys.

The origin writes these, edges and mirrors read them over HTTP; keeping them here (not in
the origin) is what lets the edge and the mirror stay free of origin imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Event types of the changes feed. Tombstones (unpublish, deprecate) carry their reason.
PUBLISH = "publish"
DEPRECATE = "deprecate"
UNPUBLISH = "unpublish"
DIST_TAG = "dist-tag"
ADVISORY = "advisory"
RESOLUTION = "resolution"
# A package pulled from an uplink was stored, or its stored copy changed at a refresh: one
# event per pull or refresh, whatever it changed (versions, tags, deprecations).
UPLINK = "uplink"
EVENT_TYPES = frozenset({PUBLISH, DEPRECATE, UNPUBLISH, DIST_TAG, ADVISORY, RESOLUTION, UPLINK})

SEARCH_KEY = "search"

# npm's abbreviated packument ("corgi"): what npm and pnpm ask for when installing. The origin
# serves it, edges key and ask for it, mirrors fetch it; one spelling for all of them.
ABBREVIATED_TYPE = "application/vnd.npm.install-v1+json"
# What npm sends as Accept for an install: the abbreviated form, the full one as a fallback.
ACCEPT_ABBREVIATED = f"{ABBREVIATED_TYPE}; q=1.0, application/json; q=0.8, */*"

# The staged layout a verified mirror bundle is unpacked into: written by eghact-mirror, read by
# `eghact-origin mirror-apply` (the contract is drawn in eghact_origin/mirror/apply.py). Both sides
# import this number, so a change of layout is one edit that neither side can miss.
STAGE_FORMAT = 5  # 4: events in events.jsonl; 5: a pulled package's entry names the versions it carries

# In the demo origin's data dir: {"demo-admin": token, "demo-edge": token}, mode 0600. Written
# by `eghact-origin demo`, read by `eghact-edge network`, which hands the edge token to its
# edges in their environment: a token on a command line is visible to every local user.
DEMO_TOKENS_FILE = "demo-tokens.json"


def package_key(name: str) -> str:
    """Packument, version documents and dist-tags of one package."""
    return f"pkg:{name}"


def tarball_key(name: str, version: str) -> str:
    """One immutable tarball; only an unpublish ever purges it."""
    return f"tgz:{name}@{version}"


def advisory_key(name: str) -> str:
    return f"adv:{name}"


def resolution_key(digest: str) -> str:
    return f"res:{digest}"


@dataclass(frozen=True)
class ChangeEvent:
    """One state change, as the feed serves it: ``{seq, type, name, version, keys, time, ...}``."""

    seq: int
    type: str
    name: str
    version: str | None
    keys: tuple[str, ...]
    time: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "seq": self.seq,
            "type": self.type,
            "name": self.name,
            "version": self.version,
            "keys": list(self.keys),
            "time": self.time,
        }
        # Extra fields (reason, message, tag) sit beside the fixed ones, CouchDB-style.
        for key, value in self.data.items():
            body.setdefault(key, value)
        return body

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ChangeEvent:
        fixed = {"seq", "type", "name", "version", "keys", "time"}
        missing = fixed - body.keys()
        if missing:
            raise ValueError(f"change event lacks {sorted(missing)}")
        return cls(
            seq=int(body["seq"]),
            type=str(body["type"]),
            name=str(body["name"]),
            version=body["version"],
            keys=tuple(body["keys"]),
            time=str(body["time"]),
            data={k: v for k, v in body.items() if k not in fixed},
        )
