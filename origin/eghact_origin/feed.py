"""Change notification: who is waiting for the feed to move, and when it moved.

The changes table is the truth; this only wakes waiters (long-poll, SSE) and invalidates
in-memory caches. Local writes ``poke`` it at once. Commits made by another process on
the same data dir (the CLI adding an advisory or a token while the server runs) are
found by a cheap poll of the last seq, so nothing depends on being told.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from eghact_common import wire

from .storage import MetadataStore


class ChangeNotifier:
    def __init__(self, store: MetadataStore, *, poll_interval: float = 1.0,
                 on_foreign_events: Callable[[list[wire.ChangeEvent]], None] | None = None):
        self._store = store
        self._poll_interval = poll_interval
        self._on_foreign = on_foreign_events
        self._seen = 0
        self._public_seen = 0  # the same in the public numbering (storage/public_feed.py)
        self._moved = asyncio.Event()
        self._poke = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int:
        return self._seen

    @property
    def last_public_seq(self) -> int:
        return self._public_seen

    async def start(self) -> None:
        self._seen = await self._store.last_seq()
        self._public_seen = await self._store.last_seq(public=True)
        self._task = asyncio.create_task(self._poll(), name="change-notifier")

    async def stop(self) -> None:
        # Set before waking: a waiter that was busy elsewhere during the wake-up must not
        # then block on a fresh event that nobody will set (it held SIGTERM for a heartbeat).
        self._stopped = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._wake()

    def local(self, events: list[wire.ChangeEvent]) -> None:
        """Called right after a local commit: read the feed now rather than at the next tick."""
        self._poke.set()

    def _wake(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()

    async def wait_beyond(self, seq: int, timeout: float, *, public: bool = False) -> bool:
        """Wait until the feed holds something after ``seq`` (in the public numbering when
        ``public``: a private event does not end the wait); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = self._public_seen if public else self._seen
            remaining = deadline - loop.time()
            if seen > seq or self._stopped or remaining <= 0:
                return seen > seq
            moved = self._moved
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await moved.wait()

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self.catch_up()
            except Exception:  # a transient read error must not kill the notifier
                continue

    async def catch_up(self) -> None:
        events = await self._store.changes(self._seen, 10_000)
        if not events:
            return
        if self._on_foreign:
            self._on_foreign(events)
        # Events another process appended (mirror-apply) are numbered here; ours already are.
        await self._store.number_public()
        self._public_seen = await self._store.last_seq(public=True)
        self._seen = events[-1].seq
        self._wake()
