"""An install's commit: the new plugins folder, lockfile, state and project file replace the old
ones together, or not at all.

Everything new is built beside the old first (``.eghact/stage-*``: the folder and each file's
new bytes), while the old stay untouched; a failure, an integrity refusal or Ctrl-C up to there
removes the stage and nothing else. The commit point is one atomic write, the journal
(``.eghact/journal.json``, fsynced with its folder), listing the renames to make. The renames
follow (the old folder to the stage, the new into place, each file by ``os.replace``), then the
journal and the stage go. A process killed between the journal and its end leaves a journal;
the next run (:func:`recover`, first thing of every operation) finishes the renames, which are
idempotent: the project is always the old one or the new one, never a mix.

The folder swap is two renames (POSIX has no portable exchange of two folders); between them
only a crash can intervene, and the journal finishes it.

An ``activate`` adds packages to the folder rather than replacing it (``Stage.merge``: the
staged folder holds only the new packages, and the journal lists the top-most of their folders
to move in, parents first). Each move is done only while its staged folder is still there, so
it is as idempotent as the swap; what a move finds in its way (a leftover of a hand edit) goes
to the stage and is removed with it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from eghact_common.durable import fsync_dir, write_atomic

__all__ = ["Stage", "recover"]

log = logging.getLogger("eghact.client")

JOURNAL = "journal.json"


@dataclass
class Stage:
    """What one install builds: ``folder`` (the new plugins folder, filled by the caller) and
    the new bytes of each file (``files``: final path -> bytes)."""

    state_dir: Path
    plugins: Path
    path: Path = field(init=False)
    files: dict[Path, bytes] = field(default_factory=dict)
    #: None: the staged folder replaces the plugins folder; else these folders (relative to both,
    #: parents before children) move from the staged folder into the plugins folder
    merge: list[str] | None = None

    def __post_init__(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / f"stage-{secrets.token_hex(6)}"
        self.path.mkdir()

    @property
    def folder(self) -> Path:
        return self.path / "plugins"

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> None:
        """Make the stage the project's: the journal first (the commit point), then the renames."""
        journal = self.prepare()
        _apply(journal)
        (self.state_dir / JOURNAL).unlink()
        self.discard()

    def prepare(self) -> dict[str, object]:
        """Stage the files and write the journal: from here on the install has happened, and
        the renames are done by :meth:`commit` or, if this process stops first, :func:`recover`."""
        staged: dict[str, str] = {}
        for i, (final, data) in enumerate(self.files.items()):
            new = self.path / f"file-{i}"
            write_atomic(new, data, mode=0o644)
            staged[str(final)] = str(new)
        swap = self.merge is None and self.folder.exists()
        journal: dict[str, object] = {"stage": str(self.path), "plugins": str(self.plugins),
                                      "folder": str(self.folder) if swap else None,
                                      "merge": self.merge or [], "files": staged}
        fsync_dir(self.path)
        write_atomic(self.state_dir / JOURNAL, json.dumps(journal).encode(), sync_dir=True)
        return journal


def recover(state_dir: Path) -> bool:
    """Finish a commit a killed process left half done, and clear stages it left unfinished;
    whether there was a commit to finish."""
    journal_path = state_dir / JOURNAL
    finished = False
    try:
        journal = json.loads(journal_path.read_bytes())
    except FileNotFoundError:
        journal = None
    except (OSError, ValueError):
        # Not whole: the atomic write never made it (its temp file is all there is), so the
        # commit point was not reached and the old project stands.
        journal = None
        journal_path.unlink(missing_ok=True)
    if isinstance(journal, dict):
        log.info("finishing the install a stopped run had committed")
        _apply(journal)
        journal_path.unlink()
        finished = True
    for leftover in state_dir.glob("stage-*") if state_dir.is_dir() else ():
        shutil.rmtree(leftover, ignore_errors=True)
    return finished


def _apply(journal: Mapping[str, object]) -> None:
    """The journal's renames; each step checks whether it is done, so running it twice is safe."""
    stage, plugins, folder = Path(str(journal["stage"])), Path(str(journal["plugins"])), journal.get("folder")
    if folder is not None:
        new = Path(str(folder))
        if new.exists():
            if plugins.exists():
                os.replace(plugins, stage / "old-plugins")
            plugins.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, plugins)
    merge = journal.get("merge")
    for i, relative in enumerate(merge if isinstance(merge, list) else ()):
        source, target = stage / "plugins" / str(relative), plugins / str(relative)
        if source.exists():
            if target.exists() or target.is_symlink():
                os.replace(target, stage / f"in-the-way-{i}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    files = journal.get("files")
    for final, new in (files.items() if isinstance(files, dict) else ()):
        if Path(new).exists():
            Path(final).parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, final)
    fsync_dir(plugins.parent)
    shutil.rmtree(stage, ignore_errors=True)
