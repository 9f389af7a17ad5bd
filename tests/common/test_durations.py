"""``parse_duration``: what operators type for ``--uplink-min-age`` and ``--uplink-max-age``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eghact_common.durations import InvalidDuration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("5m", 300.0), ("2h", 7200.0), ("3d", 259_200.0), ("1w", 604_800.0),
    ("0", 0.0), ("45", 45.0), ("1.5h", 5400.0), (".5m", 30.0), (" 7D ", 604_800.0), ("10 m", 600.0),
])
def test_a_number_and_a_unit_is_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "-5m", "5y", "5mo", "1h30m", "5 minutes", "1e3s", "nan", "inf", "5.m",
                                  "1" * 400 + "w"])
def test_anything_else_is_refused_with_a_value_error(text: str) -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_duration(text)
    assert isinstance(caught.value, ValueError) and repr(text[:20])[:-1] in str(caught.value)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from("smhdw"))
def test_units_scale_one_another(count: int, unit: str) -> None:
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}[unit]
    assert parse_duration(f"{count}{unit}") == count * scale
