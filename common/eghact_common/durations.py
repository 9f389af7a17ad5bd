"""Durations as operators type them on a command line: ``90s``, ``5m``, ``2h``, ``3d``, ``1w``.

One number and one unit (``ms``, ``s``, ``m``, ``h``, ``d``, ``w``; a bare number is seconds), as
pnpm's and Verdaccio's settings read them. Compound forms (``1h30m``) are refused rather than
half-read: ``90m`` says the same. Months and years are refused too: their length varies.
"""

from __future__ import annotations

import math
import re

__all__ = ["InvalidDuration", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|[smhdw]?)")


class InvalidDuration(ValueError):
    """Not a duration :func:`parse_duration` reads (argparse shows the message)."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``"90s"`` -> 90.0, ``"5m"`` -> 300.0, ``"1w"`` -> 604800.0, ``"0"`` -> 0.0.

    Raises :class:`InvalidDuration` for anything else: empty, negative, a unit it does not
    know, more than one part, or too large to be a float.
    """
    match = _DURATION.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if match is None:
        raise InvalidDuration(f"{text!r} is not a duration: use a number and a unit, like 90s, 5m, 2h, 3d or 1w")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds):
        raise InvalidDuration(f"{text!r} is too long a duration")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the largest unit that divides it."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
