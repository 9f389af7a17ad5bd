"""Batch frame headers: the origin's own spelling is read without a JSON parse, and any other
spelling of the same JSON gives the same answer (or the same refusal)."""

from __future__ import annotations

import json

import pytest

from eghact_mirror.batch import FrameError, _header

CASES = [
    {"path": "/left-pad", "status": 200, "length": 1234,
     "headers": {"Content-Type": "application/json", "Eghact-Seq": "17"}},
    {"path": "/@scope%2fname/-/name-1.0.0.tgz", "status": 200, "length": 0,
     "headers": {"Content-Type": "application/octet-stream"}},
    {"path": "/gone", "status": 404, "length": 80, "headers": {"Eghact-Seq": "3"}},
    {"path": "/x", "status": 200, "length": 5, "headers": {}},
    {"path": "/x", "status": 200, "length": 5, "headers": {"Content-Type": "a\"b", "ETag": "\"w\""}},
    {"path": "/\u00e9t\u00e9", "status": 200, "length": 5, "headers": {"Content-Type": "application/json"}},
]


@pytest.mark.parametrize("head", CASES, ids=lambda h: f"{h['path']}-{len(h['headers'])}")
def test_every_spelling_reads_the_same(head: dict) -> None:
    expected = (head["status"], head["length"], {k.lower(): v for k, v in head["headers"].items()})
    compact = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()  # what the origin writes
    spaced = json.dumps(dict(reversed(head.items())), indent=1).encode().replace(b"\n", b"")
    assert _header(compact, head["path"]) == expected
    assert _header(spaced, head["path"]) == expected


@pytest.mark.parametrize("line", [
    b'{"path":"/b","status":200,"length":1,"headers":{}}',
    b'{"path":"/b","status":200,"length":1,"headers":{"Content-Type":"x"}}',
    b'{"path": "/b", "status": 200, "length": 1, "headers": {}}',
])
def test_out_of_step_is_refused_in_either_spelling(line: bytes) -> None:
    with pytest.raises(FrameError, match="out of step"):
        _header(line, "/a")


@pytest.mark.parametrize("line", [
    b'{"path":"/a","status":200,"length":-1,"headers":{}}',
    b'{"path":"/a","status":"200","length":1,"headers":{}}',
    b'{"path":"/a","status":200,"length":1,"headers":{"Content-Type":"x",}}',
    b'{"path":"/a","status":200,"length":1}',
])
def test_malformed_headers_are_refused(line: bytes) -> None:
    with pytest.raises(FrameError):
        _header(line, "/a")
