"""The install's commit is all or nothing: a stage abandoned before the journal changes nothing,
and a run stopped after the journal is finished by the next one (``recover``)."""

from __future__ import annotations

from pathlib import Path

from eghact_client.transaction import Stage, recover

from ..support import tree_digest


def old_project(root: Path) -> None:
    (root / "eghact_modules" / "a").mkdir(parents=True)
    (root / "eghact_modules" / "a" / "index.js").write_text("old\n")
    (root / "eghact-lock.json").write_text("old lock\n")


def staged(root: Path) -> Stage:
    stage = Stage(root / ".eghact", root / "eghact_modules")
    (stage.folder / "b").mkdir(parents=True)
    (stage.folder / "b" / "index.js").write_text("new\n")
    stage.files[root / "eghact-lock.json"] = b"new lock\n"
    stage.files[root / ".eghact" / "state.json"] = b"{}\n"
    return stage


def test_a_stage_abandoned_before_the_journal_changes_nothing(tmp_path: Path) -> None:
    old_project(tmp_path)
    before = tree_digest(tmp_path)
    staged(tmp_path)      # built, then the process stops: no journal
    assert recover(tmp_path / ".eghact") is False
    assert tree_digest(tmp_path) == before
    assert not list((tmp_path / ".eghact").glob("stage-*"))


def test_a_run_stopped_after_the_journal_is_finished_by_the_next(tmp_path: Path) -> None:
    old_project(tmp_path)
    staged(tmp_path).prepare()   # the commit point passed; the renames never ran
    assert (tmp_path / "eghact-lock.json").read_text() == "old lock\n"
    assert recover(tmp_path / ".eghact") is True
    assert (tmp_path / "eghact-lock.json").read_text() == "new lock\n"
    assert sorted(p.name for p in (tmp_path / "eghact_modules").iterdir()) == ["b"]
    assert not (tmp_path / ".eghact" / "journal.json").exists()
    assert not list((tmp_path / ".eghact").glob("stage-*"))
    after = tree_digest(tmp_path)
    assert recover(tmp_path / ".eghact") is False and tree_digest(tmp_path) == after


def test_a_commit_replaces_folder_and_files_together(tmp_path: Path) -> None:
    old_project(tmp_path)
    staged(tmp_path).commit()
    assert (tmp_path / "eghact_modules" / "b" / "index.js").read_text() == "new\n"
    assert not (tmp_path / "eghact_modules" / "a").exists()
    assert (tmp_path / ".eghact" / "state.json").read_bytes() == b"{}\n"
    assert sorted(p.name for p in (tmp_path / ".eghact").iterdir()) == ["state.json"]


def test_a_merge_adds_to_the_folder_and_a_stopped_one_is_finished_by_the_next_run(tmp_path: Path) -> None:
    old_project(tmp_path)
    stage = staged(tmp_path)
    (stage.folder / "a" / "node_modules" / "c").mkdir(parents=True)   # nested in a package already there
    (stage.folder / "a" / "node_modules" / "c" / "index.js").write_text("nested\n")
    (stage.folder / "b" / "node_modules" / "d").mkdir(parents=True)   # nested in one this merge adds
    stage.merge = ["a/node_modules/c", "b", "b/node_modules/d"]
    stage.prepare()   # the commit point passed; the moves never ran
    assert sorted(p.name for p in (tmp_path / "eghact_modules").iterdir()) == ["a"]
    assert recover(tmp_path / ".eghact") is True
    modules = tmp_path / "eghact_modules"
    assert (modules / "a" / "index.js").read_text() == "old\n", "what was there stays"
    assert (modules / "a" / "node_modules" / "c" / "index.js").read_text() == "nested\n"
    assert (modules / "b" / "index.js").read_text() == "new\n" and (modules / "b" / "node_modules" / "d").is_dir()
    assert (tmp_path / "eghact-lock.json").read_text() == "new lock\n"
    assert not list((tmp_path / ".eghact").glob("stage-*"))
    after = tree_digest(tmp_path)
    assert recover(tmp_path / ".eghact") is False and tree_digest(tmp_path) == after
