"""Staging and applying: the one place that writes the staged layout ``eghact-origin
mirror-apply`` reads, and runs it.

The origin owns its data dir, so the mirror never writes one: it fills a staging dir
(``STAGE/stage.json``, ``STAGE/packuments/...``, ``STAGE/tarballs/<sha512>`` — the contract in
origin/eghact_origin/mirror_apply.py) and runs ``eghact-origin mirror-apply`` as a child
process, in our process group so that killing us kills it too. mirror-apply applies all or
nothing, re-checks continuity under its write lock, and treats the last applied digest as a
no-op; its exit codes 10-16 are passed through as ours.

Staging dirs live beside the mirror (``.<name>.staging-<pid>-<random>`` in its parent), not in
it, so a refused bundle leaves the data dir byte-identical; a crashed run's leftovers are
removed by the next run (their pid is gone).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, Any, BinaryIO

from . import index as fmt
from .errors import EXIT_CODES, MirrorError, code_for_exit

STAGE_FORMAT = 1
_COPY = 1 << 20


class StageSink:
    """Files into a staging dir: a ``collect`` sink (sync) and a ``reader`` sink (import)."""

    def __init__(self, root: Path):
        self.root = root
        self._dirs: set[Path] = set()

    def _open(self, path: str) -> BinaryIO:
        target = self.root / fmt.staged_path(path)
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        return open(target, "wb")

    def add(self, path: str, source: bytes | BinaryIO, size: int) -> None:
        with self._open(path) as out:
            if isinstance(source, bytes | bytearray):
                out.write(source)
            else:
                shutil.copyfileobj(source, out, _COPY)

    def __call__(self, path: str, stream: IO[bytes], size: int) -> str:
        digest = hashlib.sha512()
        with self._open(path) as out:
            remaining = size
            while remaining > 0:
                chunk = stream.read(min(remaining, _COPY))
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                remaining -= len(chunk)
        return digest.hexdigest()


def create(mirror: Path) -> Path:
    """A fresh staging dir beside ``mirror``, after removing those of dead runs."""
    resolved = mirror.resolve()  # "." has no name; its resolved path has
    parent = resolved.parent
    parent.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(re.escape(f".{resolved.name}.staging-") + r"(\d+)-[0-9a-f]+$")
    for leftover in parent.iterdir():
        match = pattern.match(leftover.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(leftover, ignore_errors=True)
    stage = parent / f".{resolved.name}.staging-{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()
    return stage


def remove(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_stage_json(stage: Path, index: fmt.Index, digest: str) -> None:
    """``stage.json`` for ``index``; the events are copied from ``events.jsonl`` as raw JSON
    objects (never parsed), so a range of a million events costs no memory here."""
    head = {"format": STAGE_FORMAT, "origin_id": index.origin_id, "from_seq": index.from_seq,
            "to_seq": index.to_seq, "bundle_digest": digest, "previous_digest": index.previous_digest,
            "base_url": index.origin_url, "packages": list(index.packages), "removed": list(index.removed)}
    events = stage / fmt.EVENTS_PATH
    with open(stage / "stage.json", "wb") as out:
        out.write(json.dumps(head, separators=(",", ":")).encode()[:-1] + b',"events":[')
        if events.exists():
            with open(events, "rb") as lines:
                first = True
                for line in lines:
                    line = line.strip()
                    if line:
                        out.write(line if first else b"," + line)
                        first = False
        out.write(b"]}")


def origin_command() -> list[str]:
    """How to run ``eghact-origin``: the script beside our interpreter (same venv), the one on
    PATH, or the module through our interpreter."""
    sibling = Path(sys.executable).parent / "eghact-origin"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return [str(sibling)]
    found = shutil.which("eghact-origin")
    return [found] if found else [sys.executable, "-m", "eghact_origin.cli"]


def apply(mirror: Path, stage: Path) -> dict[str, Any]:
    """Run mirror-apply; its JSON report (``applied`` is False for the no-op), or raise."""
    command = [*origin_command(), "mirror-apply", "--data", str(mirror), "--staged", str(stage)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise MirrorError("apply_failed", f"cannot run {command[0]}: {exc.strerror}") from exc
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        body = json.loads(lines[-1]) if lines else {}
    except ValueError:
        body = {}
    if done.returncode == 0 and "applied" in body:
        return body
    code = body.get("error") if body.get("error") in EXIT_CODES else code_for_exit(done.returncode)
    if code is not None and 10 <= EXIT_CODES[code][0] < 20:
        raise MirrorError(code, f"mirror-apply refused the bundle: {body.get('message') or done.stderr.strip()}")
    raise MirrorError("apply_failed", f"mirror-apply exited {done.returncode}: {done.stderr.strip()[-2000:]}")
