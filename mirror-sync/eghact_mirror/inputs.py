"""The mirror's own files read as input: lockfiles (``export --lockfile``), index files and
mirror data dirs (``export --after``: ``mirror.json``, ``DIR/sync/<digest>.json``), and the
follower's journal — each read within a size bound and parsed without trusting its shape.

They used to be read whole and parsed with ``json.loads``: a file of any size went into
memory, and one nested deeper than the parser's recursion limit crashed the run with a
traceback (exit 1). Here the size is checked on the open file before reading (and the read
stops one byte past the bound, should the file grow meanwhile), and the JSON is parsed by
``eghact_common.bodies.parse_json``, which refuses a nesting over 64 levels; every refusal is
``bad_input`` (exit 4) naming the file. These files are small and read once a run, so the
depth check's cost (about the parse's again) does not matter here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eghact_common.errors import InvalidJson

from . import index as fmt
from .errors import MirrorError

# An index lists every file of a bundle, so it is the largest of these files by far (see
# index.MAX_INDEX_BYTES); a lockfile of a large monorepo weighs tens of MB.
MAX_BYTES = fmt.MAX_INDEX_BYTES


def read_capped(path: Path, cap: int, *, what: str, code: str = "bad_input", why: str = "") -> bytes:
    """The bytes of ``path``, never more than ``cap`` of them read: ``code`` beyond (and
    ``bad_input`` when it cannot be read at all)."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(cap + 1) if size <= cap else b""
    except OSError as exc:
        raise MirrorError("bad_input", f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if size > cap or len(data) > cap:
        raise MirrorError(code, f"{what} {path} is over {cap} bytes{why}", detail={"limit_bytes": cap})
    return data


def parse(data: bytes, path: Path, what: str) -> Any:
    """The JSON value of ``data`` (read from ``path``), or ``bad_input``: not JSON, or too deep."""
    # Imported here: eghact_common.bodies imports aiohttp (0.15 s of CPU), which verify and
    # import, the other users of read_capped, never need; export and sync have it loaded.
    from eghact_common.bodies import parse_json

    try:
        return parse_json(data, what=f"{what} {path}")
    except InvalidJson as exc:
        raise MirrorError("bad_input", f"{exc.message} ({exc.code})", detail=exc.detail) from None


def read_json(path: Path, what: str, cap: int = MAX_BYTES) -> tuple[bytes, Any]:
    """``path``'s bytes and their JSON value, or ``bad_input`` (too big, not JSON, too deep)."""
    data = read_capped(path, cap, what=what)
    return data, parse(data, path, what)
