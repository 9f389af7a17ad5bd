"""SIGKILL an import (its whole process group: the mirror tool and the mirror-apply child) at
random moments: the mirror is then exactly before or exactly after the bundle, never between,
and running the same import again completes it.

The bundle is the full one (280 tarballs) into an empty mirror, so that mirror-apply's blob
writes and transaction take long enough for kills to land inside them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Scenario
from .helpers import ENV, db_snapshot, mirror_cmd

SEED = 20251126


def _apply_child_running(group: int) -> bool:
    """Whether mirror-apply runs in process group ``group`` (read from /proc: Linux only)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == group and b"mirror-apply" in (entry / "cmdline").read_bytes():
                return True
        except (OSError, ProcessLookupError):
            continue
    return False


def _import(scenario: Scenario, into: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(mirror_cmd("import", str(scenario.bundles["b0x"]), "--into", str(into), "--trust",
                                       str(scenario.trust)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to find the mirror-apply child")
def test_sigkill_during_import_leaves_before_or_after(scenario: Scenario, tmp_path: Path) -> None:
    before = "empty"
    reference = tmp_path / "reference" / "mirror"
    started = time.monotonic()
    reference_run = _import(scenario, reference)
    apply_started = apply_ended = None
    while reference_run.poll() is None:  # time the mirror-apply child, to aim kills inside it
        running = _apply_child_running(reference_run.pid)
        now = time.monotonic()
        if running and apply_started is None:
            apply_started = now
        if not running and apply_started is not None and apply_ended is None:
            apply_ended = now
        time.sleep(0.002)
    out, err = reference_run.communicate(timeout=60)
    assert reference_run.returncode == 0, out + err
    whole = time.monotonic() - started
    assert apply_started is not None
    in_apply = (apply_ended or time.monotonic()) - apply_started
    after = db_snapshot(reference)
    assert after != before

    rng = random.Random(SEED)
    # One kill at any moment of the run, two aimed inside mirror-apply (its blob writes and its
    # transaction are where "between" could happen).
    plans = [("anywhere", rng.uniform(0.05, whole))]
    plans += [("in mirror-apply", rng.uniform(0.0, in_apply)) for _ in range(2)]
    outcomes = []
    for i, (where, delay) in enumerate(plans):
        trial = tmp_path / f"trial{i}" / "mirror"
        proc = _import(scenario, trial)
        if where == "in mirror-apply":
            deadline = time.monotonic() + 30
            while not _apply_child_running(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.communicate()
        state = db_snapshot(trial)
        assert state in (before, after), f"trial {i} ({where}, {delay:.2f}s): the mirror is between"
        outcomes.append("after" if state == after else "before")
        rerun = _import(scenario, trial)
        out, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, out + err
        assert db_snapshot(trial) == after
        assert (trial / "verification").is_dir() and any((trial / "verification").glob("*.txt"))
        assert not list(trial.parent.glob(".mirror.staging-*")), "the rerun removed the dead run's staging dir"
    print(f"mirror-apply ran {in_apply:.2f}s of {whole:.2f}s; kills:", list(zip(plans, outcomes, strict=True)))
