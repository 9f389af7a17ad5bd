"""The feed's page is rendered by SQLite (``changes_json``): it must say what
``ChangeEvent.to_json`` says of the same events, whatever their extra data holds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from eghact_origin.storage import SqliteMetadataStore

EXTRAS = [
    None,
    {},
    {"tag": "beta", "version": "2.0.0"},  # repeats a fixed field: the column wins
    {"id": 7, "name": "other", "severity": "high", "cvss": 7.5, "cwe": ["CWE-79"], "created": "2026-01-01"},
    {"message": "dépréciée — use \"b\"\n\tnow", "nested": {"a": [1, None, True]}, "gone": None},
    {"seq": 99, "type": "x", "keys": [], "time": "then", "reason": "all fixed fields repeated"},
]


def test_changes_json_says_what_to_json_says(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path)
    try:
        def write(conn: object) -> None:
            for i, extra in enumerate(EXTRAS):
                store.append_event(conn, "deprecate", f"@scope/pkg-ü{i}", None if i % 2 else f"1.0.{i}",
                                   [f"pkg:@scope/pkg-ü{i}", "search"], "2026-11-26T00:00:00.000Z", extra)

        store.write_sync(write)
        events = store.changes_sync(0, 100)
        rendered = asyncio.run(store.changes_json(0, 100))
        assert len(events) == len(rendered) == len(EXTRAS)
        for event, (seq, name, raw) in zip(events, rendered, strict=True):
            assert (seq, name) == (event.seq, event.name)
            assert json.loads(raw) == event.to_json()
            assert list(json.loads(raw))[:6] == ["seq", "type", "name", "version", "keys", "time"]
        assert asyncio.run(store.changes_json(2, 2)) == rendered[2:4]
    finally:
        store.close()
