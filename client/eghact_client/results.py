"""What the manager's operations return: plain values, each with ``to_json`` for ``--json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["InstallResult", "StateChange", "UpdateResult"]


@dataclass(frozen=True)
class InstallResult:
    changed: bool       # the plugins folder, lockfile or project file changed
    packages: int
    downloaded: int
    cached: int
    resolution: str     # lockfile (none was needed) | prebuilt (by hash) | resolved (posted)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UpdateResult:
    changes: list[dict[str, Any]]     # {key, name, from, to}: what moved in the lockfile
    advisories: list[dict[str, Any]]  # security: the findings the update set out to fix
    install: InstallResult

    def to_json(self) -> dict[str, Any]:
        return {"changes": self.changes, "advisories": self.advisories, **self.install.to_json()}


@dataclass(frozen=True)
class StateChange:
    name: str
    state: str                  # the plugin's state now
    changed: list[str]          # the keys whose state changed, in load order
    downloaded: int
    cached: int
    x_cache: dict[str, str]     # key -> the edge's X-Cache for each tarball fetched from an edge
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
