"""The Locust scenarios run: a short, bounded headless run against a real seeded origin."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .support import PYTHONPATH, OriginProcess, cli

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("locust") is None and not (
    Path(os.sys.executable).parent / "locust").exists(), reason="locust not installed")]


def test_locust_scenarios_run_clean_against_an_origin(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("seed", "--data", str(data), "--plugins", "60", "--seed", "2", "--workers", "1")
    token = cli("token", "create", "--data", str(data), "--name", "load",
                "--scope", "publish:loadtest-*").stdout.splitlines()[-1]
    origin = OriginProcess(data).start()
    try:
        locust = Path(os.sys.executable).parent / "locust"
        env = {**os.environ, "PYTHONPATH": PYTHONPATH, "EGHACT_TOKEN": token}
        result = subprocess.run(
            [str(locust), "-f", str(ROOT / "loadtests" / "locustfile.py"), "--host", origin.url, "--headless",
             "-u", "12", "-r", "12", "-t", "6s", "--csv", str(tmp_path / "run"), "--only-summary"],
            capture_output=True, text=True, env=env, timeout=120)
    finally:
        origin.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "run_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert int(rows["Aggregated"]["Request Count"]) > 50
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    for name in ("/[packument]", "/[tarball]", "/-/v1/resolve", "/[publish]"):
        assert name in rows, f"scenario {name} never ran"
