"""``eghact-origin uplink allow|disallow|list`` and the serve flags of the pull policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eghact_origin.cli import _parser, _settings
from eghact_origin.uplinks.policy import PullPolicy

from ...support import OriginProcess, cli


def test_allow_list_disallow_through_the_data_dir(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    out = cli("uplink", "allow", "--data", data, "left-pad@1.3.1")
    assert json.loads(out.stdout) == {"name": "left-pad", "version": "1.3.1", "changed": True}
    assert json.loads(cli("uplink", "allow", "--data", data, "left-pad@1.3.1").stdout)["changed"] is False
    cli("uplink", "allow", "--data", data, "left-pad@1.10.0")
    cli("uplink", "allow", "--data", data, "@types/node@20.1.0")
    assert cli("uplink", "list", "--data", data, "left-pad").stdout.split() == ["1.3.1", "1.10.0"]
    assert cli("uplink", "list", "--data", data, "@types/node").stdout.split() == ["20.1.0"]
    assert json.loads(cli("uplink", "disallow", "--data", data, "left-pad@1.3.1").stdout)["changed"] is True
    again = cli("uplink", "disallow", "--data", data, "left-pad@1.3.1", check=False)
    assert again.returncode == 1 and "not on the uplinks' allow-list" in again.stderr
    assert cli("uplink", "list", "--data", data, "left-pad").stdout.split() == ["1.10.0"]
    # three allows and a disallow that changed something, each audited, the chain intact
    assert "intact: 4 records" in cli("audit-verify", "--data", data).stdout
    records = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    assert [(r["action"], r["actor"], r["subject"]) for r in records][-1] == ("uplink-disallow", "cli", "left-pad")


@pytest.mark.parametrize(("spec", "message"), [
    ("left-pad", "is not NAME@VERSION"), ("@types/node", "is not NAME@VERSION"), ("@1.0.0", "is not NAME@VERSION"),
    ("left-pad@latest", "is not a version"), ("left-pad@", "is not a version"), ("_x@1.0.0", "invalid package name"),
])
def test_a_bad_spec_is_a_usage_error_and_writes_nothing(tmp_path: Path, spec: str, message: str) -> None:
    result = cli("uplink", "allow", "--data", str(tmp_path / "data"), spec, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "data").exists()


def test_serve_flags_become_the_policy(tmp_path: Path) -> None:
    args = _parser().parse_args(["serve", "--data", str(tmp_path), "--uplink-min-age", "3d",
                                 "--uplink-min-age-exempt", "@types/*", "--uplink-min-age-exempt", "typescript",
                                 "--uplink-block-severity", "high"])
    policy = PullPolicy.from_settings(_settings(args))
    assert policy == PullPolicy(min_age=3 * 86_400.0, min_age_exempt=("@types/*", "typescript"),
                                block_severity="high")
    assert PullPolicy.from_settings(_settings(_parser().parse_args(["serve", "--data", str(tmp_path)]))) == \
        PullPolicy()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--uplink-min-age", "3 days", "is not a duration"), ("--uplink-min-age", "-1h", "is not a duration"),
    ("--uplink-block-severity", "severe", "invalid choice"),
])
def test_bad_serve_flags_are_usage_errors(tmp_path: Path, flag: str, value: str, message: str) -> None:
    result = cli("serve", "--data", str(tmp_path / "data"), "--port", "0", f"{flag}={value}", check=False, timeout=30)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_an_origin_serves_with_the_policy_flags_and_stops_cleanly(tmp_path: Path) -> None:
    origin = OriginProcess(tmp_path / "data", ("--uplink-min-age", "2h", "--uplink-min-age-exempt", "@types/*",
                                               "--uplink-block-severity", "critical")).start()
    assert origin.stop() == 0
