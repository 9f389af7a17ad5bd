"""The Eghact client: ``PluginManager`` (async, with a sync facade) and the ``eghact`` CLI.

It reaches every node (edges, the origin, mirrors) over HTTP alone, through one seam
(``eghact_client.transport``); nothing of the origin, the edge or the mirror is imported.
"""

from .manager import InstallResult, PluginManager, StateChange
from .sync import SyncPluginManager

__all__ = ["InstallResult", "PluginManager", "StateChange", "SyncPluginManager"]
