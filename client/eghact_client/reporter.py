"""What the client tells an observer: sources chosen, failovers, each package placed, phases.

Every method is a no-op here; the CLI's progress display and tests subclass it. The same
decisions are logged on the ``eghact.client`` logger (INFO: what was decided, DEBUG: each
request), which ``eghact --verbose`` shows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Reporter"]


class Reporter:
    def sources(self, order: list[Any]) -> None:
        """The sources in the order they will be tried (nearest edge first)."""

    def failover(self, url: str, reason: str) -> None:
        """A source failed (``reason``); the request moves to the next one."""

    def phase(self, name: str, total: int) -> None:
        """A phase starts (``resolve``, ``fetch``, ``extract``, ``commit``) with ``total`` steps."""

    def fetched(self, key: str, source: str | None) -> None:
        """A package's tarball is at hand and verified; ``source`` its URL, None from the cache."""

    def placed(self, key: str) -> None:
        """A package is extracted into the new plugins folder."""
