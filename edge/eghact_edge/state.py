"""The follower's position, kept on disk: ``feed.seq`` in the data dir.

A small JSON document written atomically (temp file in the same directory, fsync,
``os.replace``, fsync of the directory), so a crash leaves the old position or the new
one. The seq written is only ever one whose purges have completed, so a restart at worst
re-applies a few events (purges are idempotent) and never skips one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eghact_common.blocking import run_blocking
from eghact_common.durable import write_atomic


@dataclass
class FollowerState:
    seq: int = 0
    registry_id: str | None = None
    # Everything stored before this moment (our clock) is stale: set by a feed gap.
    stale_before: float = 0.0
    known: bool = False  # False: no file yet (a fresh edge)


class StateFile:
    def __init__(self, path: Path):
        self.path = path

    def load(self) -> FollowerState:
        try:
            raw = json.loads(self.path.read_text())
            return FollowerState(seq=int(raw.get("seq", 0)), registry_id=raw.get("registry_id"),
                                 stale_before=float(raw.get("stale_before", 0.0)), known=True)
        except FileNotFoundError:
            return FollowerState()
        except (ValueError, TypeError, AttributeError):
            # Unreadable: we cannot vouch for anything cached, the caller treats it as a gap.
            return FollowerState(seq=-1, known=True)

    def save_sync(self, state: FollowerState) -> None:
        body = asdict(state)
        body.pop("known")
        write_atomic(self.path, json.dumps(body).encode(), sync_dir=True)

    async def save(self, state: FollowerState) -> None:
        snapshot = FollowerState(state.seq, state.registry_id, state.stale_before, True)
        await run_blocking(self.save_sync, snapshot)
