"""Staging and applying: the one place that writes the staged layout ``eghact-origin
mirror-apply`` reads, and runs it.

The origin owns its data dir, so the mirror never writes one: it fills a staging dir
(``STAGE/stage.json``, every packument in ``STAGE/packuments.pack``, each tarball in
``STAGE/tarballs/ab/<sha512>`` — the contract in origin/eghact_origin/mirror/apply.py) and
runs ``eghact-origin mirror-apply`` as a child process, in our process group so that killing
us kills it too. mirror-apply applies all or nothing, re-checks continuity under its write
lock, and treats the last applied digest as a no-op; its exit codes 10-16 are passed through
as ours.

The layout is shaped by what files cost (a full bundle is ~80,000 of them). Packuments go
into one pack file: created, read back and deleted as one file, not 20,000. Tarballs are laid
out as the origin's blob store is (one level of 256 directories), so that mirror-apply moves
them in with renames — a whole ``ab`` directory at once where the store has none — instead of
copying and re-hashing each;
the tarball names are their sha512, checked against the signed index before mirror-apply runs.
The tarball files are created by a child process (``stage_files``, fed through a spool file):
that is kernel time, which overlaps with decompressing and hashing the bundle here.

Staging dirs live beside the mirror (``.<name>.staging-<pid>-<random>`` in its parent), not in
it, so a refused bundle leaves the data dir byte-identical; a crashed run's leftovers are
removed by the next run (their pid is gone).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from eghact_common.wire import STAGE_FORMAT

from . import index as fmt
from .errors import EXIT_CODES, MirrorError, code_for_exit
from .stage_files import DONE, NEW_FILE, write_all, write_file

PACK = "packuments.pack"
SPOOL = "tarballs.spool"  # segments tarballs.spool.<n>: tarballs' bytes on their way to the staging child
_COPY = 1 << 20
_BATCH_FILES = 256  # a batch for the staging child: this many files,
_BATCH_BYTES = 8 << 20  # or this many bytes (one segment)
_AHEAD = 4  # batches the staging child may have in hand


class _FileWriter:
    """Tarball files created by a child process (``stage_files``), fed a batch at a time
    through spool segments: creating tens of thousands of files is kernel time, which then
    overlaps with decompressing and hashing here, without the two contending for the GIL. At
    most _AHEAD batches wait for the child, so the spool stays a few segments. A failure there
    is raised by a later :meth:`write` or by :meth:`join`."""

    def __init__(self, stage: Path):
        self._stage = stage
        self._segment: int | None = None  # the segment being filled
        self._number = 0
        self._size = 0
        self._lines: list[bytes] = []
        self._waiting = 0  # batches sent and not answered yet
        self._child: subprocess.Popen[bytes] | None = None

    def write(self, name: str, chunks: Iterable[memoryview]) -> None:
        """``name`` is the file's path under ``tarballs/`` (``ab/<sha512 hex>``)."""
        if self._child is None:
            (self._stage / "tarballs").mkdir(exist_ok=True)
            self._child = subprocess.Popen([sys.executable, "-m", "eghact_mirror.stage_files", str(self._stage)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if self._segment is None:
            self._number += 1
            self._segment = os.open(self._stage / f"{SPOOL}.{self._number}", NEW_FILE, 0o600)
            self._size = 0
        offset = self._size
        self._size += write_all(self._segment, chunks)
        self._lines.append(b"%d %d %s\n" % (offset, self._size - offset, name.encode()))
        if len(self._lines) >= _BATCH_FILES or self._size >= _BATCH_BYTES:
            self._send()

    def _send(self) -> None:
        assert self._child is not None and self._child.stdin is not None and self._segment is not None
        os.close(self._segment)
        self._segment = None
        while self._waiting >= _AHEAD:
            self._answered()
        try:
            self._child.stdin.write(b"%s.%d\n%s\n" % (SPOOL.encode(), self._number, b"".join(self._lines)))
            self._child.stdin.flush()
        except BrokenPipeError:
            self._fail()
        self._waiting += 1
        self._lines = []

    def _answered(self) -> None:
        assert self._child is not None and self._child.stdout is not None
        if self._child.stdout.read(1) != DONE:
            self._fail()
        self._waiting -= 1

    def _fail(self) -> None:
        assert self._child is not None and self._child.stderr is not None
        self._child.wait()
        said = self._child.stderr.read().decode(errors="replace").strip()
        raise MirrorError("internal_error", said or f"the staging child exited with {self._child.returncode}")

    def join(self) -> None:
        """Every file written (or the failure raised)."""
        if self._child is None:
            return
        assert self._child.stdin is not None
        if self._lines:
            self._send()
        while self._waiting:
            self._answered()
        with contextlib.suppress(BrokenPipeError):
            self._child.stdin.close()
        if self._child.wait() != 0:
            self._fail()
        self.stop()

    def stop(self) -> None:
        """End the child (killed if it is still running: a failure elsewhere) and drop the spool."""
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
                self._child.wait()
            for stream in (self._child.stdin, self._child.stdout, self._child.stderr):
                if stream is not None:
                    with contextlib.suppress(BrokenPipeError):
                        stream.close()
            self._child = None
        if self._segment is not None:
            os.close(self._segment)
            self._segment = None
        for leftover in self._stage.glob(f"{SPOOL}.*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        self._lines, self._waiting = [], 0


class StageSink:
    """Files into a staging dir: a ``collect`` sink (sync, :meth:`add`) and a ``reader`` sink
    (import, called with each member's chunks); :meth:`finish` writes ``stage.json``."""

    def __init__(self, root: Path):
        self.root = root
        self._pack: BinaryIO | None = None
        self._packed: dict[str, tuple[int, int]] = {}  # packument path -> (offset, length) in the pack
        self._files = _FileWriter(root)

    def add(self, path: str, source: bytes | memoryview | BinaryIO, size: int) -> None:
        self(path, [memoryview(source)] if isinstance(source, bytes | bytearray | memoryview) else _read(source, size),
             size)

    def __call__(self, path: str, chunks: Iterable[memoryview], size: int) -> None:
        if path.startswith("packuments/"):
            if self._pack is None:
                self._pack = open(self.root / PACK, "wb")  # noqa: SIM115 - closed by finish/close
            offset = self._pack.tell()
            for chunk in chunks:
                self._pack.write(chunk)
            self._packed[path] = (offset, self._pack.tell() - offset)
        elif path.startswith("tarballs/"):
            self._files.write(f"{path[9:11]}/{path[9:].replace('/', '')}", chunks)
        else:
            write_file(str(self.root / path), chunks)

    def finish(self, index: fmt.Index, digest: str) -> None:
        """``stage.json`` for ``index`` (verified: its entries are what was staged). The events
        stay in the staged ``events.jsonl``, which mirror-apply reads a line at a time: a range
        of a million events costs no memory on either side."""
        self._files.join()
        self.close()
        head = {"format": STAGE_FORMAT, "origin_id": index.origin_id, "from_seq": index.from_seq,
                "to_seq": index.to_seq, "bundle_digest": digest, "previous_digest": index.previous_digest,
                "base_url": index.origin_url, "packuments": PACK,
                "packages": [{"name": p["name"], "full": self._packed[p["full"]],
                              "abbreviated": self._packed[p["abbreviated"]],
                              **({"versions": p["versions"]} if "versions" in p else {})} for p in index.packages],
                "removed": list(index.removed),
                "events": fmt.EVENTS_PATH, "event_count": index.event_count}
        # The tarballs' map last, written an entry at a time: ~60,000 of them in a full bundle.
        with open(self.root / "stage.json", "wb") as out:
            out.write(json.dumps(head, separators=(",", ":")).encode()[:-1] + b',"tarballs":{')
            separator = b""
            for f in index.files:
                if f.path.startswith("tarballs/"):
                    out.write(b'%s"%s":%d' % (separator, f.path[9:].replace("/", "").encode(), f.size))
                    separator = b","
            out.write(b"}}")

    def close(self) -> None:
        """Stop writing, at once: after :meth:`finish` a no-op; before it, a failure (what it
        left is removed with the staging dir)."""
        self._files.stop()
        if self._pack is not None:
            self._pack.close()
            self._pack = None


def _read(source: BinaryIO, size: int) -> Iterator[memoryview]:
    remaining = size
    while remaining > 0:
        chunk = source.read(min(remaining, _COPY))
        if not chunk:
            break
        remaining -= len(chunk)
        yield memoryview(chunk)


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
