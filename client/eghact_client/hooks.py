"""Lifecycle hooks: the manager's own callables and the plugins' declared hook modules.

Hooks (:data:`HOOKS`): ``preInstall``/``postInstall`` (a package placed for the first time, or
at another integrity), ``preUpdate``/``postUpdate`` (a package placed at another version than
before), ``preRemove``/``postRemove`` (a package that leaves the folder), ``preActivate``/
``postActivate`` (packages made ``active``).

- **Registered callables**: ``pm.on("postInstall", fn)``, ``fn`` an async callable taking one
  :class:`HookEvent`; they run in the manager's process, in the order registered.
- **Plugin hook modules**: a package declares them in its ``package.json`` as
  ``"eghactHooks": {"postInstall": "hooks/post-install.js", ...}`` (a path inside the package;
  the ``eghact`` block is the registry's closed contract, so hooks live beside it, as npm's
  ``scripts`` do). A module is run by ``node`` in a child process, never in the manager's:
  its default export (or ``module.exports``), if a function, is awaited with the event as JSON;
  a throw, a rejection or a non-zero exit fails the hook. The child has its own session (its
  whole group is killed at the timeout), ``--max-old-space-size`` and an ``RLIMIT_DATA`` cap,
  the package's folder as working directory and the event in ``$EGHACT_HOOK_EVENT``.

Order: a *pre* hook runs the registered callables first (they may veto before any plugin code
runs), then the plugins' modules in load order (dependencies before their dependents); a *post*
hook runs the plugins' modules first, then the callables (so the application sees the finished
operation). The first failure stops the rest: :class:`HookFailed` names the hook, the plugin (or
``manager``) and the error; the manager then rolls the operation back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import HookFailed

__all__ = ["HOOKS", "HookEvent", "HookFailed", "HookLimits", "HookTarget", "Hooks", "declared_hooks"]

log = logging.getLogger("eghact.client")

HOOKS = ("preInstall", "postInstall", "preUpdate", "postUpdate", "preRemove", "postRemove",
         "preActivate", "postActivate")
HOOKS_FIELD = "eghactHooks"
_MANIFEST_BYTES = 1024 * 1024
_OUTPUT_BYTES = 4096   # of a failed hook's stderr kept in the error

# Imports the module (CommonJS or ESM alike, through import()) and awaits its function export.
_RUNNER = r"""
const { pathToFileURL } = require('url');
(async () => {
  const event = JSON.parse(process.env.EGHACT_HOOK_EVENT);
  const mod = await import(pathToFileURL(process.argv[1]).href);
  const fn = typeof mod.default === 'function' ? mod.default : (typeof mod === 'function' ? mod : null);
  if (fn) await fn(event);
})().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
"""


@dataclass(frozen=True)
class HookLimits:
    timeout: float = 30.0           # seconds a plugin's hook may run
    memory_mb: int = 256            # V8's old space; the process's data segment gets 4x that


@dataclass(frozen=True)
class HookTarget:
    key: str                # node_modules/a
    name: str
    version: str
    folder: Path            # where its files are while the hook runs
    previous: str | None = None     # the version it replaces (update hooks)


@dataclass(frozen=True)
class HookEvent:
    hook: str
    operation: str                  # install | update | activate
    project: str
    plugins: list[dict[str, Any]] = field(default_factory=list)   # {key, name, version[, previous]}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Callback = Callable[[HookEvent], Awaitable[Any]]


def declared_hooks(folder: Path) -> dict[str, Path]:
    """The hook modules the package in ``folder`` declares (``eghactHooks``), each a file inside
    it; a missing, unreadable or escaping declaration is no hook (logged), never code outside."""
    try:
        with (folder / "package.json").open("rb") as handle:
            manifest = json.loads(handle.read(_MANIFEST_BYTES))
    except (OSError, ValueError):
        return {}
    declared = manifest.get(HOOKS_FIELD) if isinstance(manifest, dict) else None
    found: dict[str, Path] = {}
    for hook, relative in (declared.items() if isinstance(declared, dict) else ()):
        if hook not in HOOKS or not isinstance(relative, str):
            log.warning("%s: %s.%s is not a hook module path; ignored", folder.name, HOOKS_FIELD, hook)
            continue
        parts = PurePosixPath(relative).parts
        path = folder.joinpath(*parts) if parts else folder
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts or not path.is_file():
            log.warning("%s: hook %s names %r, not a file inside the package; ignored", folder.name, hook, relative)
            continue
        found[hook] = path
    return found


class Hooks:
    """The registered callables, and how plugin hook modules are run (``limits``, ``node``)."""

    def __init__(self, limits: HookLimits | None = None, node: str = "node"):
        self.limits = limits or HookLimits()
        self.node = node
        self._callbacks: dict[str, list[Callback]] = {hook: [] for hook in HOOKS}

    def on(self, hook: str, callback: Callback) -> None:
        if hook not in HOOKS:
            raise ValueError(f"unknown hook {hook!r}: one of {', '.join(HOOKS)}")
        self._callbacks[hook].append(callback)

    async def run(self, hook: str, operation: str, project: Path, targets: Sequence[HookTarget]) -> None:
        """Run ``hook`` for ``targets`` (in load order) in the documented order; raise
        :class:`HookFailed` at the first failure."""
        if not targets:
            return
        event = HookEvent(hook, operation, str(project),
                          [{"key": t.key, "name": t.name, "version": t.version,
                            **({"previous": t.previous} if t.previous else {})} for t in targets])
        modules = [(t, path) for t in targets if (path := declared_hooks(t.folder).get(hook)) is not None]
        if hook.startswith("pre"):
            await self._callables(hook, event)
            await self._modules(hook, event, modules)
        else:
            await self._modules(hook, event, modules)
            await self._callables(hook, event)

    async def _callables(self, hook: str, event: HookEvent) -> None:
        for callback in self._callbacks[hook]:
            try:
                await callback(event)
            except Exception as exc:
                raise HookFailed(f"{hook} hook of the manager failed: {exc!r}; the {event.operation} was rolled back",
                                 detail={"hook": hook, "plugin": "manager", "reason": repr(exc)}) from exc

    async def _modules(self, hook: str, event: HookEvent, modules: list[tuple[HookTarget, Path]]) -> None:
        for target, path in modules:
            log.info("running %s of %s@%s (%s)", hook, target.name, target.version, path)
            reason = await self._child(path, target.folder, event)
            if reason is not None:
                raise HookFailed(f"{hook} hook of {target.name}@{target.version} {reason}; the {event.operation} "
                                 "was rolled back", detail={"hook": hook, "plugin": target.name,
                                                           "version": target.version, "reason": reason})

    async def _child(self, module: Path, cwd: Path, event: HookEvent) -> str | None:
        """Run one hook module in node; None when it succeeded, else why it failed."""
        limits = self.limits
        data_bytes = limits.memory_mb * 4 * 1024 * 1024

        def limit() -> None:   # in the child, before exec
            import resource
            resource.setrlimit(resource.RLIMIT_DATA, (data_bytes, data_bytes))

        env = {**os.environ, "EGHACT_HOOK_EVENT": json.dumps(event.to_json()), "EGHACT_HOOK": event.hook}
        process = await asyncio.create_subprocess_exec(
            self.node, f"--max-old-space-size={limits.memory_mb}", "-e", _RUNNER, str(module),
            cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
            preexec_fn=limit if sys.platform != "win32" else None)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), limits.timeout)
        except TimeoutError:
            _kill(process)
            await process.wait()
            return f"did not finish within {limits.timeout:g} s and was killed"
        except BaseException:
            _kill(process)      # cancelled (Ctrl-C): the hook must not outlive the manager
            with contextlib.suppress(Exception):
                await process.wait()
            raise
        if process.returncode == 0:
            return None
        text = stderr.decode(errors="replace").strip()
        if process.returncode in (-signal.SIGABRT, 134) or "heap out of memory" in text \
                or "Array buffer allocation failed" in text:
            return f"ran out of its {limits.memory_mb} MB memory limit and was stopped"
        return f"failed (exit {process.returncode}): {text[-_OUTPUT_BYTES:]}"


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
