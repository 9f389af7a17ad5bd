"""Durations on command lines: ``30s``, ``5m``, ``2h``, ``3d``, ``1w`` (or bare seconds).

The one parser of them: uplink lifetimes, cooldowns and any later option that takes a span
of time read it here, so ``5m`` means the same everywhere.
"""

from __future__ import annotations

import re

__all__ = ["UNITS", "format_duration", "parse_duration"]

UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit (``ms s m h d w``; none: seconds).
    Raises ValueError for anything else, negative values included."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 2h, 3d or 1w")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the largest unit that divides it."""
    for unit in ("w", "d", "h", "m", "s"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
