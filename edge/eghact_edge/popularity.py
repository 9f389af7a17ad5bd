"""Per-key hit counts with exponential decay, kept cheap on the hit path.

A hit only bumps a plain counter in ``pending``; once a second (``fold``) the scores are
decayed by the time elapsed (half-life ``half_life``) and the pending counts added. The
same pending counts are kept, summed, for the next batch reported to the origin
(``POST /-/v1/stats``), which ranks global popularity from every edge. The table is
bounded: the weakest scores are dropped when it grows past ``max_keys``. A snapshot on
disk lets a restarted edge know what was hot before it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from eghact_common.durable import write_atomic

_FLOOR = 0.05


class Popularity:
    def __init__(self, *, half_life: float = 600.0, clock: Callable[[], float], max_keys: int = 200_000):
        self._half_life = half_life
        self._clock = clock
        self._max_keys = max_keys
        self.scores: dict[str, float] = {}
        self.pending: dict[str, int] = {}
        self._report: dict[str, int] = {}
        self._folded_at = clock()

    def hit(self, key: str) -> None:
        """The hit path: one dict update."""
        pending = self.pending
        pending[key] = pending.get(key, 0) + 1

    def fold(self) -> None:
        now = self._clock()
        factor = math.pow(0.5, max(0.0, now - self._folded_at) / self._half_life)
        self._folded_at = now
        scores = {k: v * factor for k, v in self.scores.items() if v * factor >= _FLOOR}
        pending, self.pending = self.pending, {}
        report = self._report
        for key, count in pending.items():
            scores[key] = scores.get(key, 0.0) + count
            report[key] = report.get(key, 0) + count
        if len(scores) > self._max_keys:
            keep = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[: self._max_keys * 3 // 4]
            scores = dict(keep)
        self.scores = scores
        if len(report) > self._max_keys:
            self._report = dict(sorted(report.items(), key=lambda kv: kv[1], reverse=True)[: self._max_keys // 2])

    def score(self, key: str) -> float:
        return self.scores.get(key, 0.0) + self.pending.get(key, 0)

    def top(self, n: int) -> list[str]:
        return [k for k, _ in sorted(self.scores.items(), key=lambda kv: kv[1], reverse=True)[:n]]

    def drain_report(self) -> dict[str, int]:
        report, self._report = self._report, {}
        return report

    def restore_report(self, report: dict[str, int]) -> None:
        """Put back a batch the origin did not take (it is retried with the next one)."""
        for key, count in report.items():
            self._report[key] = self._report.get(key, 0) + count

    # -- snapshot ---------------------------------------------------------------------

    def save_sync(self, path: Path, limit: int = 5000) -> None:
        top = dict(sorted(self.scores.items(), key=lambda kv: kv[1], reverse=True)[:limit])
        # No fsync: a snapshot lost to a power cut costs a colder start, nothing more.
        write_atomic(path, json.dumps({"time": self._clock(), "scores": top}).encode(), fsync=False)

    def load_sync(self, path: Path) -> list[str]:
        """Merge a snapshot, decayed by its age; returns its keys, hottest first."""
        try:
            raw = json.loads(path.read_text())
            factor = math.pow(0.5, max(0.0, self._clock() - float(raw["time"])) / self._half_life)
            scores = {str(k): float(v) * factor for k, v in raw["scores"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []
        for key, value in scores.items():
            self.scores[key] = self.scores.get(key, 0.0) + value
        return [k for k, _ in sorted(scores.items(), key=lambda kv: kv[1], reverse=True)]
