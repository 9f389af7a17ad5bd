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

A commit can be *held* (:meth:`Stage.commit` with ``hold=True``), so that post-operation hooks
can still undo it: the stage then also keeps a copy of each file it replaces (``undo-N``) and the
old folder (or the merged folders' leftovers), and the journal stays. :meth:`Stage.release`
ends the hold (the operation stands); :meth:`Stage.undo` puts everything back as it was before
the commit. An undo is itself journaled: the journal is replaced by one of restores
(``[target, saved copy or null]``: null means the target did not exist before), each done only
while its saved copy is still there, so a run killed mid-undo is finished by the next
:func:`recover` and the project is the old one. A run killed while the commit is held leaves
the forward journal: the next :func:`recover` keeps the operation.
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

    def commit(self, *, hold: bool = False) -> None:
        """Make the stage the project's: the journal first (the commit point), then the renames.
        ``hold``: keep what :meth:`undo` needs until :meth:`release` or :meth:`undo`."""
        journal = self.prepare(hold=hold)
        _apply(journal, keep_stage=hold)
        if not hold:
            (self.state_dir / JOURNAL).unlink()
            self.discard()

    def release(self) -> None:
        """End a held commit: the operation stands."""
        (self.state_dir / JOURNAL).unlink(missing_ok=True)
        self.discard()

    def undo(self) -> None:
        """Put back the folder and files a held commit replaced, byte for byte."""
        restores: list[list[str | None]] = []
        if self.merge is None:
            old = self.path / "old-plugins"
            restores.append([str(self.plugins), str(old) if old.exists() else None])
        else:
            # children first: a nested folder leaves before its parent does
            for i, relative in reversed(list(enumerate(self.merge))):
                in_the_way = self.path / f"in-the-way-{i}"
                restores.append([str(self.plugins / relative), str(in_the_way) if in_the_way.exists() else None])
        for i, final in enumerate(self.files):
            saved = self.path / f"undo-{i}"
            restores.append([str(final), str(saved) if saved.exists() else None])
        undo_stage = self.state_dir / f"stage-undo-{secrets.token_hex(6)}"
        undo_stage.mkdir()
        journal = {"undo": str(undo_stage), "stage": str(self.path), "restore": restores}
        write_atomic(self.state_dir / JOURNAL, json.dumps(journal).encode(), sync_dir=True)
        _restore(journal)
        (self.state_dir / JOURNAL).unlink()
        self.discard()

    def prepare(self, *, hold: bool = False) -> dict[str, object]:
        """Stage the files and write the journal: from here on the install has happened, and
        the renames are done by :meth:`commit` or, if this process stops first, :func:`recover`."""
        staged: dict[str, str] = {}
        for i, (final, data) in enumerate(self.files.items()):
            new = self.path / f"file-{i}"
            write_atomic(new, data, mode=0o644)
            staged[str(final)] = str(new)
            if hold and final.exists():
                shutil.copy2(final, self.path / f"undo-{i}")
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
    if isinstance(journal, dict) and "restore" in journal:
        log.info("finishing the undo of an operation a stopped run had rolled back")
        _restore(journal)
        journal_path.unlink()
        finished = True
    elif isinstance(journal, dict):
        log.info("finishing the install a stopped run had committed")
        _apply(journal)
        journal_path.unlink()
        finished = True
    for leftover in state_dir.glob("stage-*") if state_dir.is_dir() else ():
        shutil.rmtree(leftover, ignore_errors=True)
    return finished


def _apply(journal: Mapping[str, object], *, keep_stage: bool = False) -> None:
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
    if not keep_stage:
        shutil.rmtree(stage, ignore_errors=True)


def _restore(journal: Mapping[str, object]) -> None:
    """An undo journal's restores; each is done only while its saved copy exists (a target
    with none existed not before: it is moved aside, if it is there), so running it twice is safe."""
    aside = Path(str(journal["undo"]))
    aside.mkdir(parents=True, exist_ok=True)
    restores = journal.get("restore")
    for i, (target, saved) in enumerate(restores if isinstance(restores, list) else ()):
        target_path = Path(str(target))
        if saved is not None and not Path(str(saved)).exists():
            continue   # restored already
        if target_path.exists() or target_path.is_symlink():
            os.replace(target_path, aside / f"rejected-{i}")
        if saved is not None:
            target_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(str(saved), target_path)
        fsync_dir(target_path.parent)
    shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(str(journal["stage"]), ignore_errors=True)
