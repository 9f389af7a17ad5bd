"""The suite covers the seam: every method of the storage protocols is called by some test
here, so a method added to a protocol fails this until its contract is written down."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from eghact_origin.storage import BlobStore, MetadataStore, MirrorWriter, PackageSnapshot


def test_every_protocol_method_is_exercised() -> None:
    sources = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != Path(__file__).name)
    missing = []
    for protocol in (MetadataStore, MirrorWriter, PackageSnapshot, BlobStore):
        for name, member in vars(protocol).items():
            if name.startswith("_") or not inspect.isfunction(member) or name == "close":
                continue  # close: every fixture closes its store
            if not re.search(rf"\.{name}\(", sources):
                missing.append(f"{protocol.__name__}.{name}")
    assert not missing, f"no contract test calls {missing}"
