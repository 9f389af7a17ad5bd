"""The repository stands alone: a clone with nothing beside it (no sibling folder) holds the
data its tests read and the design its README links to, and runs the conformance suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .support import ROOT


def test_a_clone_with_nothing_beside_it_runs_the_conformance_suite(tmp_path: Path) -> None:
    git = shutil.which("git")
    assert git is not None, "git is needed to clone the repository"
    empty = tmp_path / "empty"
    empty.mkdir()
    clone = empty / "eghact-cdn"
    subprocess.run([git, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    assert sorted(p.name for p in empty.iterdir()) == ["eghact-cdn"]
    assert (clone / "docs" / "DESIGN.md").is_file()
    assert (clone / "tests" / "conformance" / "semver" / "LICENSE").is_file()

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/common/test_semver_conformance.py"],
        cwd=clone, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "semver conformance: 982 of 982 cases checked" in run.stdout + run.stderr, run.stdout[-2000:]


_OUTSIDE = ("../" + "shared", "EGHACT_" + "CONFORMANCE_DIR")  # spelled apart, so this file is no hit


def test_nothing_in_the_tests_reads_outside_the_repository() -> None:
    here = Path(__file__).resolve().parent
    offenders = [str(p.relative_to(ROOT)) for p in here.rglob("*.py")
                 if p != Path(__file__).resolve() and any(word in p.read_text() for word in _OUTSIDE)]
    assert offenders == []
