"""The wire protocol's version check (``eghact_common.protocol``): which stated versions a
reader takes and which it refuses, with a reason a person can act on."""

from __future__ import annotations

import pytest

from eghact_common.protocol import PROTOCOL, SUPPORTED, incompatibility


@pytest.mark.parametrize("stated", [None, str(PROTOCOL), "1.0", "1.7", "1"])
def test_readable_versions_or_none_stated(stated: str | None) -> None:
    # None: an npm registry or an origin from before the field, read as before.
    assert incompatibility(stated) is None


@pytest.mark.parametrize(("stated", "says"), [
    ("2.0", "speaks protocol 2.0"),
    ("0.9", "speaks protocol 0.9"),
    ("one", "'one', which is not a version"),
    (1, "1, which is not a version"),       # a number in JSON is not the string the origin states
])
def test_unreadable_versions_are_refused_with_the_reason(stated: object, says: str) -> None:
    reason = incompatibility(stated)
    assert reason is not None and says in reason


def test_the_origin_states_a_version_this_release_reads() -> None:
    assert PROTOCOL in SUPPORTED
