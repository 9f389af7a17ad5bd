"""The Eghact client: ``PluginManager`` (async, with a sync facade) and the ``eghact`` CLI.

It reaches every node (edges, the origin, mirrors) over HTTP alone, through one seam
(``eghact_client.transport``); nothing of the origin, the edge or the mirror is imported.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .audit import Finding
    from .manager import PluginManager
    from .results import InstallResult, StateChange, UpdateResult
    from .sync import SyncPluginManager

__all__ = ["Finding", "InstallResult", "PluginManager", "StateChange", "SyncPluginManager", "UpdateResult"]

# Loaded on first use (PEP 562): ``eghact`` imports this package before its own module, and the
# manager's imports (asyncio and the whole install path) would cost an unchanged project's
# re-install most of its 100 ms (eghact_client.uptodate).
_HOMES = {"Finding": ".audit", "InstallResult": ".results", "PluginManager": ".manager", "StateChange": ".results",
          "SyncPluginManager": ".sync", "UpdateResult": ".results"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value
