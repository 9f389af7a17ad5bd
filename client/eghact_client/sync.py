"""The sync facade: :class:`PluginManager` for code without an event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .audit import Finding
from .manager import PluginManager
from .resolve import Resolution
from .results import InstallResult, StateChange, UpdateResult

__all__ = ["SyncPluginManager"]


class SyncPluginManager:
    """:class:`PluginManager` for code without an event loop: each call runs one to its end."""

    def __init__(self, project_dir: Path | str, **options: Any):
        self._root = project_dir
        self._options = options

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call() -> Any:
            async with PluginManager(self._root, **self._options) as manager:
                return await getattr(manager, method)(*args, **kwargs)
        return asyncio.run(call())

    def install(self, name: str | None = None, *, version: str | None = None, frozen: bool = False,
                all_chunks: bool = False, capabilities: dict[str, bool] | None = None) -> InstallResult:
        result: InstallResult = self._run("install", name, version=version, frozen=frozen, all_chunks=all_chunks,
                                          capabilities=capabilities)
        return result

    def why(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._run("why", name)
        return result

    def activate(self, name: str) -> StateChange:
        result: StateChange = self._run("activate", name)
        return result

    def deactivate(self, name: str, *, reason: str = "deactivated") -> StateChange:
        result: StateChange = self._run("deactivate", name, reason=reason)
        return result

    def remove(self, name: str) -> InstallResult:
        result: InstallResult = self._run("remove", name)
        return result

    def update(self, name: str | None = None, *, security: bool = False) -> UpdateResult:
        result: UpdateResult = self._run("update", name, security=security)
        return result

    def audit(self) -> list[Finding]:
        result: list[Finding] = self._run("audit")
        return result

    def resolve(self) -> Resolution:
        result: Resolution = self._run("resolve")
        return result

    def list(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._run("list")
        return result
