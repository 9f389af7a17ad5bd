"""The embedded metadata store: one SQLite file in WAL mode (:class:`SqliteMetadataStore`).

One module per concern, each a part of the one class: connection plumbing and transactions
(:mod:`.connection`), the audit outbox (:mod:`.outbox`), the changes feed (:mod:`.feed`),
rendering packuments (:mod:`.render`), the one row writer for versions, dist-tags and
advisories (:mod:`.rows`), registry writes and reads (:mod:`.writes`, :mod:`.reads`), tokens,
the fleet's popularity and edges, built resolutions, co-usage, packages pulled from uplinks
(:mod:`.uplinks`) and the admin's overrides of their pull policy (:mod:`.uplink_allowed`), and a
mirror's writes (:mod:`.mirror`, :mod:`.fresh`). The resolver's worker processes read through
:mod:`.snapshot`. SQL lives in these modules and nowhere above ``storage/``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from .connection import DB_FILE, Clock, iso
from .cousage import CoUsageRows
from .fleet import FleetRows
from .fresh import build_mirror_database
from .mirror import MirrorRows, SqliteMirrorWriter
from .outbox import committed_audit_head
from .reads import Reads, dists_body
from .resolutions import ResolutionRows
from .snapshot import SqliteSnapshot
from .tokens import Tokens
from .uplink_allowed import UplinkAllowedRows
from .uplinks import UplinkRows
from .writes import Writes

__all__ = ["DB_FILE", "SqliteMetadataStore", "SqliteMirrorWriter", "SqliteSnapshot", "build_mirror_database",
           "committed_audit_head", "dists_body", "iso"]


class SqliteMetadataStore(Writes, Reads, Tokens, ResolutionRows, CoUsageRows, FleetRows, MirrorRows, UplinkRows,
                          UplinkAllowedRows):
    """The embedded :class:`~eghact_origin.storage.MetadataStore`."""

    def __init__(self, data_dir: Path, *, clock: Clock | None = None, audit_actor_default: str = "system"):
        super().__init__(data_dir, clock=clock, audit_actor_default=audit_actor_default)
        self.flush_audit()  # records a crash left in the outbox

    @staticmethod
    def exists(data_dir: Path) -> bool:
        """Whether ``data_dir`` holds a registry database."""
        return (data_dir / DB_FILE).exists()

    def snapshot_opener(self) -> Callable[[], SqliteSnapshot]:
        return functools.partial(SqliteSnapshot, self.path)
