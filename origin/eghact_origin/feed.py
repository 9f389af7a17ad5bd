"""The change dispatcher: every committed event is delivered once, in seq order, to every
subscriber (the rendered-bytes cache, resolutions, feed waiters, metrics), whoever wrote it.

The changes table is the truth; this only tells the process's in-memory parts that it moved.
Two paths lead here and meet in one cursor (``last_seq``, the last seq delivered):

- a local write hands over the events it committed (:meth:`ChangeNotifier.committed`) and
  waits until they are delivered, so that its response goes out with every cache already
  invalidated (read-your-writes);
- a cheap poll of the table finds what other processes committed (``eghact-origin
  mirror-apply``, the CLI adding an advisory, later a second origin on a shared database) and
  what this process wrote without telling (resolutions marked stale).

Both deliver under one lock and only seqs beyond the cursor, so the poll reading back a local
write skips it instead of invalidating everything a second time (it did: an extra write
transaction per publish, and popular resolutions rebuilt twice). When a local batch does not
follow the cursor (another writer's events lie between), the gap is read from the table and
delivered first: order by seq holds whatever the interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from eghact_common import wire

from .metrics import Reporter
from .storage import MetadataStore

log = logging.getLogger("eghact.feed")

Subscriber = Callable[[list[wire.ChangeEvent]], None]
_PAGE = 10_000


def _follows(events: list[wire.ChangeEvent], cursor: int) -> bool:
    """Whether ``events`` are exactly the seqs after ``cursor``, none missing."""
    return all(event.seq == cursor + i for i, event in enumerate(events, 1))


class ChangeNotifier:
    def __init__(self, store: MetadataStore, *, poll_interval: float = 1.0, reporter: Reporter | None = None):
        self._store = store
        self._poll_interval = poll_interval
        self._reporter = reporter or Reporter()
        self._subscribers: list[tuple[str, Subscriber]] = []
        self._seen = 0          # the last seq delivered
        self._public_seen = 0   # the same in the public numbering (storage/public_feed.py)
        self._lock = asyncio.Lock()
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

    def subscribe(self, name: str, subscriber: Subscriber) -> None:
        """Call ``subscriber`` with each delivered batch (seqs ascending, each seq once).

        It runs on the event loop inside the dispatcher's lock, so it must not block: work
        that does I/O is spawned as a task. ``name`` labels its deliveries in the metrics.
        """
        self._subscribers.append((name, subscriber))

    async def start(self) -> None:
        # Events committed before start are not delivered: no in-memory state predates them.
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

    async def committed(self, events: list[wire.ChangeEvent]) -> None:
        """Called by a local writer right after its commit: returns once ``events`` (and any
        earlier seq) are delivered. Raises nothing but a cancellation: the write is durable
        whatever happens here, and what could not be delivered now the poll delivers."""
        if not events:
            return
        if self._task is None:  # not started (or a registry without a server): nothing waits on order
            self._deliver(events)
            return
        # Shielded: a client that disconnects must not leave its committed events undelivered
        # until the next poll while other readers are served the bytes they replaced.
        try:
            await asyncio.shield(self._deliver_through(events))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivering local changes up to seq %d; the poll will retry", events[-1].seq)
            self.poke()

    def poke(self) -> None:
        """Something was committed that nobody handed over (events appended beside the
        registry's writes): read the table now rather than at the next tick."""
        self._poke.set()

    async def _deliver_through(self, events: list[wire.ChangeEvent]) -> None:
        async with self._lock:
            fresh = [event for event in events if event.seq > self._seen]
            if not fresh:
                return  # the poll got there first
            if _follows(fresh, self._seen):
                await self._publish(fresh)
                return
            # Another writer's events lie between: deliver from the table, in order, up to ours.
            while self._seen < events[-1].seq and await self._catch_up_locked():
                pass

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
        """Deliver whatever the table holds beyond the cursor."""
        async with self._lock:
            while await self._catch_up_locked():
                pass

    async def _catch_up_locked(self) -> bool:
        """One page from the table; whether it was a full page (there may be more)."""
        events = await self._store.changes(self._seen, _PAGE)
        if not events:
            return False
        # Events another process appended (mirror-apply) are numbered here; ours already are.
        await self._store.number_public()
        await self._publish(events)
        return len(events) == _PAGE

    async def _publish(self, events: list[wire.ChangeEvent]) -> None:
        # The one await comes first: a cancellation there delivers nothing and moves nothing,
        # so the poll delivers the batch whole; past it, delivery is synchronous.
        public_seen = await self._store.public_seq_at(events[-1].seq)
        self._seen, self._public_seen = events[-1].seq, public_seen
        self._deliver(events)
        self._wake()

    def _deliver(self, events: list[wire.ChangeEvent]) -> None:
        for name, subscriber in self._subscribers:
            try:
                subscriber(events)
            except Exception:  # one subscriber's bug must not starve the others, nor stop the feed
                log.exception("change subscriber %s failed on seqs %d..%d", name, events[0].seq, events[-1].seq)
            self._reporter.change_delivered(name, len(events))
