"""The Eghact client: ``PluginManager`` (async, with a sync facade) and the ``eghact`` CLI.

It reaches every node (edges, the origin, mirrors) over HTTP alone, through one seam
(``eghact_client.transport``); nothing of the origin, the edge or the mirror is imported.
"""

from .audit import Finding
from .manager import PluginManager
from .results import InstallResult, StateChange, UpdateResult
from .sync import SyncPluginManager

__all__ = ["Finding", "InstallResult", "PluginManager", "StateChange", "SyncPluginManager", "UpdateResult"]
