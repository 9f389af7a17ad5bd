"""Which package names a listing or a count may include, as SQL.

A total, a ranking or a count that includes a private package tells a caller who may not
read it that it exists (an anonymous search once answered ``{"objects": [], "total": 1}`` to
words of a private description). So the filter goes into the query itself, never after it:
what is counted is what is shown.

``auth.AccessPolicy.name_filter`` decides; this module only spells the decision in SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_FUNCTION = "eghact_readable"


@dataclass(frozen=True)
class NameFilter:
    """Names under ``hidden`` prefixes are never included; names under ``partial`` prefixes
    only where ``readable(name)`` (a token pattern that covers part of a private scope)."""

    hidden: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()
    readable: Callable[[str], bool] | None = None

    @property
    def everything(self) -> bool:
        return not self.hidden and not self.partial


EVERYTHING = NameFilter()


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def clause(names: NameFilter, column: str, conn: sqlite3.Connection) -> tuple[str, list[Any]]:
    """A WHERE fragment (``1`` when everything is visible) and its arguments, for ``column``.
    Installs the name predicate on ``conn`` when the filter needs one."""
    parts: list[str] = []
    args: list[Any] = []
    for prefix in names.hidden:
        parts.append(f"{column} NOT LIKE ? ESCAPE '\\'")
        args.append(_like(prefix))
    if names.partial:
        readable = names.readable or (lambda _name: False)
        # A connection belongs to one thread and serves one read at a time: setting the
        # function before the statement is safe, and costs nothing when no prefix matches.
        conn.create_function(_FUNCTION, 1, lambda name: 1 if readable(name) else 0)
        for prefix in names.partial:
            parts.append(f"({column} NOT LIKE ? ESCAPE '\\' OR {_FUNCTION}({column}))")
            args.append(_like(prefix))
    return (" AND ".join(parts) or "1"), args
