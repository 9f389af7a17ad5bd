"""Progress reporting: a ``rich`` bar on a terminal, silence elsewhere (CI has no TTY, and a
log full of redrawn bars helps nobody).

Core code talks to a :class:`Progress` and never to ``rich``: it declares tasks and advances
them; the no-op default keeps tests and pipes quiet. Calls may come from worker threads
(the bundle writer runs on one): rich's Progress is thread-safe, and the no-op trivially is.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO


class Progress:
    """The no-op reporter; :class:`RichProgress` draws the same calls."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        return None

    def task(self, description: str, total: float | None = None, *, unit: str = "") -> int:
        """Start a task; returns its handle. ``unit="bytes"`` shows sizes and rates."""
        return 0

    def advance(self, task: int, amount: float = 1) -> None:
        """Move ``task`` on by ``amount``."""

    def total(self, task: int, total: float) -> None:
        """Set or change ``task``'s total once it is known."""

    def note(self, text: str) -> None:
        """A line for the person watching (only printed on a terminal)."""


class RichProgress(Progress):
    def __init__(self, stream: TextIO):
        # Imported here: a run without a terminal never pays for loading rich.
        from rich.console import Console
        from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBar

        self._console = Console(file=stream)
        self._bar = RichBar(TextColumn("{task.description:<22}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=self._console,
                            transient=False)
        self._units: dict[int, str] = {}

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._bar.stop()

    def task(self, description: str, total: float | None = None, *, unit: str = "") -> int:
        handle = int(self._bar.add_task(description, total=total, detail=""))
        self._units[handle] = unit
        return handle

    def advance(self, task: int, amount: float = 1) -> None:
        self._bar.advance(task, amount)  # type: ignore[arg-type]
        done = self._bar.tasks[task].completed
        detail = f"{done / 1e6:,.1f} MB" if self._units.get(task) == "bytes" else f"{int(done):,}"
        self._bar.update(task, detail=detail)  # type: ignore[arg-type]

    def total(self, task: int, total: float) -> None:
        self._bar.update(task, total=total)  # type: ignore[arg-type]

    def note(self, text: str) -> None:
        self._console.print(text)


def for_terminal(stream: TextIO | None = None, *, enabled: bool | None = None) -> Progress:
    """A bar when ``stream`` (stderr by default) is a terminal, unless ``enabled`` says otherwise."""
    stream = stream or sys.stderr
    show = stream.isatty() if enabled is None else enabled
    return RichProgress(stream) if show else Progress()
