"""Forward decay for scores kept in a table (Cormode et al., "Forward Decay: A Practical Time
Decay Model", 2009).

An event at time t adds ``2^((t - t0) / half_life)`` instead of every stored score being
decayed as time passes: ordering by the stored value is ordering by the decayed one at any
moment, so a top-K is an indexed ``ORDER BY`` and nothing is rewritten to age. The decayed
value now is the stored one times :meth:`ForwardDecay.scale`. When the exponent grows large
(floats overflow near 2^1024) the table is rebased: every score scaled down and t0 moved, in
one statement per table. t0 is kept in the ``meta`` table under the caller's key. Popularity
(:mod:`.fleet`) and co-usage (:mod:`.cousage`) both keep their scores this way.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

_REBASE_EXPONENT = 200.0


@dataclass(frozen=True)
class ForwardDecay:
    meta_key: str               # where t0 is kept in ``meta``
    tables: tuple[str, ...]     # the tables whose ``score`` column holds forward-decayed scores
    half_life: float            # seconds

    def weight(self, conn: sqlite3.Connection, now: float) -> float:
        """What one event at ``now`` adds; inside the caller's write transaction (it may rebase)."""
        row = conn.execute("SELECT value FROM meta WHERE key=?", (self.meta_key,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (self.meta_key, repr(now)))
            return 1.0
        epoch = float(row[0])
        exponent = (now - epoch) / self.half_life
        if exponent > _REBASE_EXPONENT:
            shift = math.floor(exponent)
            for table in self.tables:
                conn.execute(f"UPDATE {table} SET score = score * ?", (math.pow(2.0, -shift),))
            epoch += shift * self.half_life
            conn.execute("UPDATE meta SET value=? WHERE key=?", (repr(epoch), self.meta_key))
            exponent -= shift
        return math.pow(2.0, exponent)

    def scale(self, conn: sqlite3.Connection, now: float) -> float:
        """The factor that turns a stored score into its decayed value at ``now`` (read-only)."""
        row = conn.execute("SELECT value FROM meta WHERE key=?", (self.meta_key,)).fetchone()
        return math.pow(2.0, -(now - float(row[0])) / self.half_life) if row else 1.0
