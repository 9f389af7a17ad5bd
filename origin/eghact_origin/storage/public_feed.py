"""The public numbering of the changes feed: the seqs a caller who may read no private package sees.

Why a second numbering: the registry's ``seq`` counts private and public events alike, so a
reader of the public feed saw a gap wherever a private event was, and a ``last_seq`` (and
``Eghact-Seq``, and the health seq) beyond the last event it could see: when, and how often,
something private happened. Filtering events out cannot hide that; numbering can. Every event
on a public name also gets ``public_seq``: gapless, in the order of ``seq``. Callers who may
read no private package (anonymous, edges, tokens for public names) see only that number —
in the feed, its extent, health, and the ``Eghact-Seq`` of public documents; callers who may
read some private package keep ``seq``.

Which names are private is configuration (``--private-scope``), not data, so the numbering
records the scopes it was made with in ``meta`` (``public_view``). A server started with
other private scopes numbers every event again, and the numbering's epoch moves on: the
public registry id becomes ``<registry_id>.<epoch>``, so a follower of the old numbering
sees another registry (an edge marks its cache stale, a mirror chain must restart) rather
than resuming at a seq that now names another event. With no private scope the public
numbering is ``seq`` itself and nothing is stored per event.

Events are numbered in the transaction that appends them (:func:`number`); events another
process wrote without it (``eghact-origin mirror-apply``) are numbered by the server when
its notifier finds them, and until then are not in the public view.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

_KEY = "public_view"


@dataclass(frozen=True)
class Numbering:
    scopes: tuple[str, ...]   # the private scopes the numbering was made with; () = seq itself
    epoch: int                # moves on at each renumbering
    head: int                 # the last public_seq handed out (never reused, like seq)
    upto: int                 # every event up to this seq is numbered


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
    return int(row[0]) if row else 0


def state(conn: sqlite3.Connection) -> Numbering | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (_KEY,)).fetchone()
    if row is None:
        return None
    raw = json.loads(row[0])
    return Numbering(tuple(raw["scopes"]), int(raw["epoch"]), int(raw["head"]), int(raw["upto"]))


def _save(conn: sqlite3.Connection, numbering: Numbering) -> None:
    value = json.dumps({"scopes": list(numbering.scopes), "epoch": numbering.epoch, "head": numbering.head,
                        "upto": numbering.upto})
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_KEY, value))


def _private(name: str, scopes: tuple[str, ...]) -> bool:
    return any(name.startswith(scope.rstrip("/") + "/") for scope in scopes)


def _assign(conn: sqlite3.Connection, numbering: Numbering, after: int) -> Numbering:
    rows = conn.execute("SELECT seq, name FROM changes WHERE seq > ? ORDER BY seq", (after,)).fetchall()
    head = numbering.head
    updates = []
    for seq, name in rows:
        if not _private(name, numbering.scopes):
            head += 1
            updates.append((head, seq))
    conn.executemany("UPDATE changes SET public_seq=? WHERE seq=?", updates)
    return Numbering(numbering.scopes, numbering.epoch, head, max(_last_seq(conn), numbering.upto))


def number(conn: sqlite3.Connection) -> None:
    """Number the events appended since the last call, inside the caller's write transaction."""
    numbering = state(conn)
    if numbering is None or not numbering.scopes or numbering.upto >= _last_seq(conn):
        return
    _save(conn, _assign(conn, numbering, numbering.upto))


def behind(conn: sqlite3.Connection) -> bool:
    """Whether some event is not numbered yet (written by another process)."""
    numbering = state(conn)
    return numbering is not None and bool(numbering.scopes) and numbering.upto < _last_seq(conn)


def configure(conn: sqlite3.Connection, private_scopes: tuple[str, ...]) -> Numbering:
    """Make the numbering follow ``private_scopes`` (the server's, at start); in a write transaction."""
    wanted = tuple(sorted({scope.rstrip("/") for scope in private_scopes}))
    current = state(conn)
    if current is not None and current.scopes == wanted:
        number(conn)
        return state(conn) or current
    has_events = conn.execute("SELECT 1 FROM changes LIMIT 1").fetchone() is not None
    # A new epoch whenever seqs already handed out change meaning: an existing registry
    # whose followers read ``seq`` until now, or another set of private scopes.
    epoch = (current.epoch + 1) if current is not None else (1 if has_events and wanted else 0)
    conn.execute("UPDATE changes SET public_seq=NULL WHERE public_seq IS NOT NULL")
    fresh = Numbering(wanted, epoch, 0, 0)
    fresh = _assign(conn, fresh, 0) if wanted else Numbering(wanted, epoch, 0, _last_seq(conn))
    _save(conn, fresh)
    return fresh


def registry_id(conn: sqlite3.Connection, base: str) -> str:
    """The id of the public numbering: the registry's own until a renumbering."""
    numbering = state(conn)
    return base if numbering is None or numbering.epoch == 0 else f"{base}.{numbering.epoch}"


def head(conn: sqlite3.Connection) -> int:
    numbering = state(conn)
    return numbering.head if numbering is not None and numbering.scopes else _last_seq(conn)


def first(conn: sqlite3.Connection) -> int:
    """The first public seq still in the table (head + 1 when there is none)."""
    numbering = state(conn)
    if numbering is None or not numbering.scopes:
        found = conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
    else:
        found = conn.execute("SELECT MIN(public_seq) FROM changes WHERE public_seq IS NOT NULL").fetchone()[0]
    return int(found) if found is not None else head(conn) + 1


def at(conn: sqlite3.Connection, seq: int) -> int:
    """The public seq of the last public event at or before ``seq``: what a public reader
    would have seen when the registry was at ``seq``."""
    numbering = state(conn)
    if numbering is None or not numbering.scopes:
        return seq
    row = conn.execute("SELECT public_seq FROM changes WHERE seq <= ? AND public_seq IS NOT NULL "
                       "ORDER BY seq DESC LIMIT 1", (seq,)).fetchone()
    return int(row[0]) if row else 0


def seq_of(conn: sqlite3.Connection, name: str, seq: int) -> int:
    """``seq`` as a document about ``name`` may show it (a packument's ``_rev``): in the public
    numbering for a public name, since anyone reads those documents."""
    numbering = state(conn)
    if numbering is None or not numbering.scopes or _private(name, numbering.scopes):
        return seq
    return at(conn, seq)


def column(conn: sqlite3.Connection, public: bool) -> str:
    """The changes column that numbers the caller's view."""
    if not public:
        return "seq"
    numbering = state(conn)
    return "public_seq" if numbering is not None and numbering.scopes else "seq"
