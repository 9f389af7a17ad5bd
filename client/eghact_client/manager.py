"""``PluginManager``: what a plugin user calls, async at its core.

::

    async with PluginManager(project_dir) as pm:
        await pm.install("@acme/chart-plugin")                  # add a requirement, resolve, install
        await pm.install("@acme/chart-plugin", version="^2.0.0")
        await pm.install()                                      # what the project requires
        await pm.install(frozen=True)                           # exactly the lockfile, or LockfileOutOfDate
        await pm.remove("@acme/chart-plugin")
        await pm.list()

:class:`SyncPluginManager` is the same for code without an event loop (each call runs one).

An install resolves only when it must: a lockfile that still answers the requirements
(``lockfile.mismatches``) is installed as it is, with no request at all, and a project whose
lockfile, state and plugins folder agree has nothing to do. Every operation first finishes a
commit a stopped run left (``transaction.recover``) and holds the project's lock
(``.eghact/lock``), so two runs never interleave in one project.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eghact_common.blocking import run_blocking
from eghact_common.errors import BadRequest, Conflict

from .cache import TarballCache
from .errors import LockfileOutOfDate, NotFound
from .install import place
from .lockfile import Lock, mismatches
from .project import Project
from .reporter import Reporter
from .resolve import Resolution, resolve
from .sources import Sources
from .state import State
from .transaction import Stage, recover
from .transport import Transport

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs are not serialised
    fcntl = None  # type: ignore[assignment]

__all__ = ["InstallResult", "PluginManager", "SyncPluginManager"]

log = logging.getLogger("eghact.client")


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


class PluginManager:
    def __init__(self, project_dir: Path | str, *, cache_dir: Path | None = None, reporter: Reporter | None = None,
                 concurrency: int = 16, rounds: int = 3, backoff: float = 0.25):
        self.root = Path(project_dir).resolve()
        self.cache = TarballCache(cache_dir)
        self.reporter = reporter or Reporter()
        self._concurrency = concurrency
        self._rounds = rounds
        self._backoff = backoff
        self._transport = Transport(connections=concurrency)
        self._sources: Sources | None = None

    async def __aenter__(self) -> PluginManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    def sources(self, project: Project) -> Sources:
        """The run's sources (found once, on first need: an install from the cache asks no one)."""
        if self._sources is None:
            self._sources = Sources(project.registry, self._transport, cache_dir=self.cache.root,
                                    reporter=self.reporter, rounds=self._rounds, backoff=self._backoff)
        return self._sources

    # ---- operations -----------------------------------------------------------------------------

    async def install(self, name: str | None = None, *, version: str | None = None,
                      frozen: bool = False) -> InstallResult:
        """Install what the project requires (with ``name``: that package too, at ``version``,
        default its latest, written to the project as ``^VERSION``). ``frozen``: exactly the
        lockfile, refused with ``LockfileOutOfDate`` when it no longer matches the requirements."""
        started = time.monotonic()
        with self._exclusive():
            project, lock, state = self._load()
            if frozen:
                if name is not None:
                    raise BadRequest("a frozen install installs the lockfile; it takes no package", code="usage")
                if lock is None:
                    raise LockfileOutOfDate(f"{project.lockfile.name} is missing: a frozen install needs one")
                problems = mismatches(lock, project)
                if problems:
                    raise LockfileOutOfDate(f"{project.lockfile.name} no longer matches the project's requirements: "
                                            + "; ".join(problems), detail={"problems": problems})
                digest = state.request if state.hash == lock.hash else None
                return await self._apply(project, project, lock, lock, state, digest, "lockfile", started)
            wanted = project.with_dependency(name, version or "latest") if name is not None else project
            if name is None and lock is not None and not mismatches(lock, project):
                log.info("%s still answers the requirements: no resolution needed", project.lockfile.name)
                digest = state.request if state.hash == lock.hash else None
                return await self._apply(project, project, lock, lock, state, digest, "lockfile", started)
            resolution = await resolve(wanted, self.sources(wanted), state=state, lock=lock)
            if name is not None and version is None:
                # npm's habit: a package added without a range is required from its version up
                root = next((p for p in resolution.lock.packages if p.key == f"node_modules/{name}"), None)
                if root is not None:
                    wanted = wanted.with_dependency(name, f"^{root.version}")
            return await self._apply(project, wanted, lock, resolution.lock, state, resolution.request,
                                     resolution.how, started)

    async def remove(self, name: str) -> InstallResult:
        """Stop requiring ``name``: resolve without it and install the result."""
        started = time.monotonic()
        with self._exclusive():
            project, lock, state = self._load()
            if name not in project.dependencies:
                raise NotFound(f"{name} is not one of the project's dependencies", code="not_a_dependency",
                               detail={"name": name})
            wanted = project.without_dependency(name)
            resolution = await resolve(wanted, self.sources(wanted), state=state, lock=lock)
            return await self._apply(project, wanted, lock, resolution.lock, state, resolution.request,
                                     resolution.how, started)

    async def resolve(self) -> Resolution:
        """Resolve the requirements again and write the lockfile (nothing is installed)."""
        with self._exclusive():
            project, lock, state = self._load()
            resolution = await resolve(project, self.sources(project), state=state, lock=lock)
            # the lockfile and the request it answers change together (the plugins stay as they are:
            # the next install sees they no longer match the lockfile)
            stage = Stage(project.state_dir, project.plugins_path)
            try:
                stage.files[project.lockfile] = resolution.lock.data
                known = State(plugins=state.plugins, request=resolution.request, hash=resolution.lock.hash)
                stage.files[project.state_dir / "state.json"] = known.to_bytes()
                await run_blocking(stage.commit)
            finally:
                stage.discard()
            return resolution

    async def list(self) -> list[dict[str, Any]]:
        """The installed packages: key, name, version, state, and whether the project requires it."""
        project, _, state = self._load(recovering=False)
        return [{"key": key, "name": entry.get("name"), "version": entry.get("version"),
                 "state": entry.get("state"), "direct": key == f"node_modules/{entry.get('name')}"
                 and entry.get("name") in project.dependencies}
                for key, entry in sorted(state.plugins.items())]

    # ---- helpers --------------------------------------------------------------------------------

    def _load(self, *, recovering: bool = True) -> tuple[Project, Lock | None, State]:
        project = Project.load(self.root)
        if recovering:
            recover(project.state_dir)
        return project, Lock.read(project.lockfile), State.read(project.state_dir / "state.json")

    async def _apply(self, before: Project, after: Project, old: Lock | None, new: Lock, state: State,
                     digest: str | None, how: str, started: float) -> InstallResult:
        files: dict[Path, bytes] = {}
        if old is None or new.data != old.data:
            files[after.lockfile] = new.data
        if after.dependencies != before.dependencies or after.eager != before.eager:
            target, data = after.document_bytes()
            files[target] = data
        new_state = State.installed(new, request=digest)
        state_path = after.state_dir / "state.json"
        if not files and state.matches(new) and state.request == new_state.request and after.plugins_path.is_dir():
            log.info("nothing to do: the plugins folder is the lockfile's")
            return InstallResult(False, len(new.packages), 0, 0, how, time.monotonic() - started)
        files[state_path] = new_state.to_bytes()
        installed = await place(new, plugins=after.plugins_path, state_dir=after.state_dir, files=files,
                                cache=self.cache, sources=self.sources(after), reporter=self.reporter,
                                concurrency=self._concurrency)
        return InstallResult(True, installed.packages, installed.downloaded, installed.cached, how,
                             time.monotonic() - started)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        state_dir = self.root / ".eghact"
        state_dir.mkdir(parents=True, exist_ok=True)
        with open(state_dir / "lock", "a+b") as handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as exc:
                    raise Conflict(f"another eghact is working on {self.root}", code="project_busy") from exc
            yield


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

    def install(self, name: str | None = None, *, version: str | None = None, frozen: bool = False) -> InstallResult:
        result: InstallResult = self._run("install", name, version=version, frozen=frozen)
        return result

    def remove(self, name: str) -> InstallResult:
        result: InstallResult = self._run("remove", name)
        return result

    def resolve(self) -> Resolution:
        result: Resolution = self._run("resolve")
        return result

    def list(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._run("list")
        return result
