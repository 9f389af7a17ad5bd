"""The deploy manifests call the CLIs with arguments the CLIs accept: a manifest that
drifts from the code fails here, not at 3 a.m. in a cluster."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARSERS = {"eghact-origin": "eghact_origin.cli", "eghact-edge": "eghact_edge.cli", "eghact-mirror": "eghact_mirror.cli"}


def containers() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            found += [(f"{path.name}:{c['name']}", c) for c in spec.get("containers", [])]
    return found


def test_there_are_manifests() -> None:
    assert containers()


@pytest.mark.parametrize(("label", "container"), containers(), ids=[label for label, _ in containers()])
def test_container_command_parses_with_the_real_cli(label: str, container: dict) -> None:
    command = container["command"][0]
    module = importlib.import_module(PARSERS[command])
    module._parser().parse_args(container["args"])  # argparse exits (SystemExit) on anything it does not know


def test_dockerfile_default_command_parses() -> None:
    import json

    lines = (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
    line = next(text for text in lines if text.startswith("CMD "))
    command = json.loads(line[4:])
    importlib.import_module(PARSERS[command[0]])._parser().parse_args(command[1:])
