"""``PluginManager``: what a plugin user calls, async at its core.

::

    async with PluginManager(project_dir) as pm:
        await pm.install("@acme/chart-plugin")                  # add a requirement, resolve, install
        await pm.install("@acme/chart-plugin", version="^2.0.0")
        await pm.install()                                      # what the project requires
        await pm.install(frozen=True)                           # exactly the lockfile, or LockfileOutOfDate
        await pm.install(all_chunks=True)                       # lazy chunks placed now too
        await pm.activate("@acme/chart-plugin")                 # its lazy chunks fetched, placed, active
        await pm.deactivate("@acme/chart-plugin", reason="...")  # suspended
        await pm.remove("@acme/chart-plugin")
        await pm.update()                                       # newest versions the requirements allow
        await pm.update("@acme/chart-plugin")                   # that root (and what only it pulls in)
        await pm.update(security=True)                          # only what advisories affect, lowest fix
        await pm.audit()                                        # the lockfile against the advisories
        await pm.list()
        await pm.install("@acme/chart-plugin", capabilities={"network": False})   # recorded as its grants
        await pm.why("@acme/chart-plugin")                      # its chains from the roots, and its grants
        pm.on("postInstall", callback)                          # lifecycle hooks (eghact_client.hooks)

:class:`~eghact_client.sync.SyncPluginManager` is the same for code without an event loop (each call runs one).

An install resolves only when it must: a lockfile that still answers the requirements
(``lockfile.mismatches``) is installed as it is, with no request at all, and a project whose
lockfile, state and plugins folder agree has nothing to do. Every operation first finishes a
commit a stopped run left (``transaction.recover``) and holds the project's lock
(``.eghact/lock``), so two runs never interleave in one project.

The load plan is executed (``eghact_client.loadplan``): an install places the eager chunk (and
what no chunk holds) and marks it ``active``; lazy plugins are recorded ``installed`` but not
placed, so an app of many plugins installs what it loads at start, and the rest are fetched on
first :meth:`PluginManager.activate` (verified and committed like an install), or at once with
``all_chunks``. After each resolution the nearest edge is told which lazy tarballs will be asked
for (``eghact_client.hints``), so that first ``activate`` is an edge hit.

Capabilities (``eghact_client.capabilities``) are checked before anything is fetched: a required
one that is denied refuses the install or activate, a denied optional one is recorded disabled.
Lifecycle hooks (``eghact_client.hooks``) run around each commit, which is held until the post
hooks pass: a failing hook undoes it (folder, lockfile and state as they were); why is kept in
``.eghact/last-failure.json`` (and, for ``activate``, as the plugin's ``failed`` state).

Transitions (:data:`ACTIVATE_FROM`): ``activate`` from ``installed``, ``suspended`` or ``failed``;
``deactivate`` from ``active``; any other is refused (409 ``invalid_transition``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from eghact_common.blocking import run_blocking
from eghact_common.durable import write_atomic
from eghact_common.errors import BadRequest, Conflict, Unresolvable

from .audit import Finding, audit
from .cache import TarballCache
from .capabilities import Rules, check, why
from .errors import InstallNeeded, IntegrityMismatch, InvalidTarball, InvalidTransition, LockfileOutOfDate, NotFound
from .folder_changes import folder_changes, load_order
from .hints import Hinter
from .hooks import Callback, HookFailed, HookLimits, Hooks, HookTarget
from .install import Installed, place
from .loadplan import LoadPlan
from .lockfile import Lock, mismatches
from .project import Project
from .reporter import Reporter
from .resolve import Resolution, resolve
from .results import InstallResult, StateChange, UpdateResult
from .sources import Sources
from .state import ACTIVE, FAILED, INSTALLED, SUSPENDED, State
from .transaction import Stage, recover
from .transport import Transport
from .update import changes, named_request, no_fix, security_request
from .uptodate import fingerprint, stamp

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs are not serialised
    fcntl = None  # type: ignore[assignment]

__all__ = ["ACTIVATE_FROM", "InstallResult", "PluginManager", "StateChange", "UpdateResult"]

log = logging.getLogger("eghact.client")

ACTIVATE_FROM = (INSTALLED, SUSPENDED, FAILED)
DEACTIVATE_FROM = (ACTIVE,)


class PluginManager:
    def __init__(self, project_dir: Path | str, *, cache_dir: Path | None = None, reporter: Reporter | None = None,
                 concurrency: int = 16, rounds: int = 3, backoff: float = 0.25, hints: bool = True,
                 hook_limits: HookLimits | None = None):
        self.root = Path(project_dir).resolve()
        self.cache = TarballCache(cache_dir)
        self.reporter = reporter or Reporter()
        self._concurrency = concurrency
        self._rounds = rounds
        self._backoff = backoff
        self._transport = Transport(connections=concurrency)
        self._sources: Sources | None = None
        self.hinter = Hinter(self._transport) if hints else None
        self.hooks = Hooks(hook_limits)

    def on(self, hook: str, callback: Callback) -> None:
        """Run ``callback`` (async, given a :class:`~eghact_client.hooks.HookEvent`) at ``hook``."""
        self.hooks.on(hook, callback)

    async def __aenter__(self) -> PluginManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.hinter is not None:
            await self.hinter.drain()
        await self._transport.close()

    def sources(self, project: Project) -> Sources:
        """The run's sources (found once, on first need: an install from the cache asks no one)."""
        if self._sources is None:
            self._sources = Sources(project.registry, self._transport, cache_dir=self.cache.root,
                                    reporter=self.reporter, rounds=self._rounds, backoff=self._backoff)
        return self._sources

    # ---- operations -----------------------------------------------------------------------------

    async def install(self, name: str | None = None, *, version: str | None = None,
                      frozen: bool = False, all_chunks: bool = False,
                      capabilities: dict[str, bool] | None = None) -> InstallResult:
        """Install what the project requires (with ``name``: that package too, at ``version``,
        default its latest, written to the project as ``^VERSION``). ``frozen``: exactly the
        lockfile, refused with ``LockfileOutOfDate`` when it no longer matches the requirements.
        ``all_chunks``: place the lazy chunks now too (they stay ``installed`` until activated).
        ``capabilities`` (``{"network": False}``): with ``name``, recorded as that root's grants
        in the project; without, for this run only."""
        started = time.monotonic()
        with self._exclusive():
            # the inputs as they are before the check: a no-work answer stamps these (eghact_client.uptodate)
            seen = fingerprint(self.root) if name is None and not all_chunks and not capabilities else None
            project, lock, state = self._load()
            # with a name, the grants are the project's (written with the install); else this run's
            run = dict(capabilities or {}) if name is None else {}
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
                return await self._apply(project, project, lock, lock, state, digest, "lockfile", started,
                                         all_chunks, run, seen=seen)
            wanted = project.with_dependency(name, version or "latest") if name is not None else project
            if name is not None and capabilities:
                wanted = wanted.with_grants(name, capabilities)
            if name is None and lock is not None and not mismatches(lock, project):
                log.info("%s still answers the requirements: no resolution needed", project.lockfile.name)
                digest = state.request if state.hash == lock.hash else None
                return await self._apply(project, project, lock, lock, state, digest, "lockfile", started,
                                         all_chunks, run, seen=seen)
            resolution = await resolve(wanted, self.sources(wanted), state=state, lock=lock)
            if name is not None and version is None:
                # npm's habit: a package added without a range is required from its version up
                root = next((p for p in resolution.lock.packages if p.key == f"node_modules/{name}"), None)
                if root is not None:
                    wanted = wanted.with_dependency(name, f"^{root.version}")
            return await self._apply(project, wanted, lock, resolution.lock, state, resolution.request,
                                     resolution.how, started, all_chunks, run)

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
                                     resolution.how, started, False, {})

    async def update(self, name: str | None = None, *, security: bool = False) -> UpdateResult:
        """Move to the newest versions the requirements allow (``name``: that root and what only it
        pulls in; the rest stays as locked), or with ``security`` only what known advisories affect,
        to the lowest versions that fix them (``eghact_client.update``). Installed like an install
        (capabilities, hooks: ``preUpdate``/``postUpdate``, one atomic commit); ``NoFixAvailable``
        when no version within the requirements fixes an advisory (nothing changes)."""
        started = time.monotonic()
        with self._exclusive():
            project, lock, state = self._load()
            if name is not None and name not in project.dependencies:
                raise NotFound(f"{name} is not one of the project's dependencies", code="not_a_dependency",
                               detail={"name": name})
            findings: list[Finding] = []
            if security:
                if name is not None:
                    raise BadRequest("a security update moves every vulnerable package: it takes no name",
                                     code="usage", detail={"name": name})
                if lock is None:
                    raise InstallNeeded("a security update needs the installed lockfile: run eghact install first")
                findings = await audit(lock, self.sources(project))
                if not findings:
                    log.info("no advisory affects %s: nothing to update", project.lockfile.name)
                    return UpdateResult([], [], InstallResult(False, len(lock.packages), 0, 0, "lockfile",
                                                              time.monotonic() - started))
                request = security_request(project, lock)
            else:
                request = named_request(project, lock, name) if name is not None else project.resolve_request()
            try:
                resolution = await resolve(project, self.sources(project), state=state, lock=lock, request=request)
            except Unresolvable as exc:
                raise no_fix(exc, findings, project, lock) if security and lock is not None else exc from None
            moved = changes(lock, resolution.lock) if lock is not None else []
            log.info("update: %d packages move (%s)", len(moved), ", ".join(
                f"{c.name} {c.before}->{c.after}" for c in moved) or "none")
            installed = await self._apply(project, project, lock, resolution.lock, state, resolution.request,
                                          resolution.how, started, False, {}, "update")
            return UpdateResult([c.to_json() for c in moved], [f.to_json() for f in findings], installed)

    async def audit(self) -> list[Finding]:
        """The installed lockfile's packages against the registry's advisories, worst first,
        each with the lowest later version that fixes it (``fixed_in``)."""
        project, lock, _ = self._load(recovering=False)
        if lock is None:
            raise InstallNeeded("nothing to audit: the project has no lockfile yet (run eghact install)")
        return await audit(lock, self.sources(project))

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
            self._hint(resolution.lock, {k for k in state.plugins if state.placed(k)}, project)
            return resolution

    async def activate(self, name: str) -> StateChange:
        """Make ``name`` active: its chunks (and the chunks they require) are fetched, verified
        and placed if they are not yet, atomically, and every package they hold becomes
        ``active``. A required capability denied refuses it (nothing changes). A tarball refused
        (integrity, unpacking) or gone, or a failing ``preActivate``/``postActivate`` hook, leaves
        the folder as it was and records ``name`` as ``failed`` with the error; a source failure
        records nothing."""
        started = time.monotonic()
        with self._exclusive():
            project, lock, state = self._load()
            lock, key = _installed(name, lock, state)
            _check_transition(name, state.plugins[key], "activate", ACTIVATE_FROM)
            keys = LoadPlan.of(lock).load_set(key)
            disabled = await check(lock, project, keys, Rules(project), self.sources(project))
            by_key = {p.key: p for p in lock.packages}
            missing = [by_key[k] for k in keys if not state.placed(k)]
            changed = [k for k in keys if state.plugins[k].get("state") != ACTIVE]
            after = state.with_states({k: {"state": ACTIVE, "placed": True}
                                       for k in [*changed, *(p.key for p in missing)]})
            for k, off in disabled.items():
                after.plugins[k]["disabledCapabilities"] = sorted(set(after.plugins[k].get(
                    "disabledCapabilities") or []) | set(off))
            state_path = project.state_dir / "state.json"
            missing_keys = {p.key for p in missing}
            targets = [HookTarget(k, by_key[k].name, by_key[k].version, project.plugins_path / by_key[k].folder)
                       for k in load_order(lock, set(changed) | missing_keys)]

            # a lazy package placed now is installed now: its install hooks run before its activate hooks
            placing_targets = [t for t in targets if t.key in missing_keys]

            async def pre(staged: Path) -> None:
                await self.hooks.run("preInstall", "activate", self.root,
                                     [replace(t, folder=staged / by_key[t.key].folder) for t in placing_targets])
                await self.hooks.run("preActivate", "activate", self.root,
                                     [replace(t, folder=staged / by_key[t.key].folder) if t.key in missing_keys
                                      else t for t in targets])

            stage = Stage(project.state_dir, project.plugins_path, merge=[])
            placing = place(lock, missing, plugins=project.plugins_path, state_dir=project.state_dir,
                            files={state_path: after.to_bytes()}, cache=self.cache, sources=self.sources(project),
                            reporter=self.reporter, concurrency=self._concurrency, merge=True,
                            before_commit=pre, hold=True) if missing else self._state_only(stage, pre, state_path,
                                                                                            after.to_bytes())
            try:
                placed = await self._held("activate", project.state_dir, placing,
                                          lambda _: [("postInstall", placing_targets), ("postActivate", targets)])
            except (IntegrityMismatch, InvalidTarball, NotFound, HookFailed) as exc:
                # the plugin's own fault (not the network's): the folder is as it was; say why
                failed = state.with_states({key: {"state": FAILED, "error": {"error": exc.code,
                                                                             "message": exc.message}}})
                await run_blocking(write_atomic, state_path, failed.to_bytes())
                raise
            finally:
                stage.discard()
            log.info("%s active (%d packages changed state, %d placed)", name, len(changed), len(missing))
            return StateChange(name, ACTIVE, changed, placed.downloaded, placed.cached, placed.x_cache,
                               time.monotonic() - started)

    async def _state_only(self, stage: Stage, pre: Any, state_path: Path, data: bytes) -> Installed:
        """An activate with nothing to place, shaped as a held :func:`place`: the pre hooks,
        then the new state committed so that a post hook can undo it."""
        await pre(stage.folder)
        stage.files[state_path] = data
        await run_blocking(lambda: stage.commit(hold=True))
        return Installed(0, 0, 0, 0.0, {}, stage)

    async def why(self, name: str) -> list[dict[str, Any]]:
        """Why ``name`` is in the project: for each copy in the lockfile, the chains from the
        project's roots to it and each capability ``granted``, ``denied`` (with by whom) or
        ``disabled``, with the project's grants."""
        project, lock, state = self._load(recovering=False)
        if lock is None:
            raise NotFound(f"{name}: the project has no lockfile yet", code="not_installed", detail={"name": name})
        copies = why(lock, project, state.plugins, name, Rules(project))
        if not copies:
            raise NotFound(f"{name} is not in {project.lockfile.name}", code="not_installed", detail={"name": name})
        return copies

    async def deactivate(self, name: str, *, reason: str = "deactivated") -> StateChange:
        """Suspend ``name`` (with ``reason``), and every package its chunks hold that neither the
        eager chunk nor another active root's chunks still need. Nothing is removed: a later
        ``activate`` needs no download."""
        started = time.monotonic()
        with self._exclusive():
            project, lock, state = self._load()
            lock, key = _installed(name, lock, state)
            _check_transition(name, state.plugins[key], "deactivate", DEACTIVATE_FROM)
            plan = LoadPlan.of(lock)
            needed = set(plan.eager_keys)
            for root in (f"node_modules/{dep}" for dep in project.dependencies):
                if root != key and state.plugins.get(root, {}).get("state") == ACTIVE:
                    needed.update(plan.load_set(root))
            changed = [key] + [k for k in plan.load_set(key) if k != key and k not in needed
                               and state.plugins[k].get("state") == ACTIVE]
            after = state.with_states({k: {"state": SUSPENDED, "reason": reason} for k in changed})
            await run_blocking(write_atomic, project.state_dir / "state.json", after.to_bytes())
            log.info("%s suspended (%s), with %d packages only it needed", name, reason, len(changed) - 1)
            return StateChange(name, SUSPENDED, changed, 0, 0, {}, time.monotonic() - started)

    async def list(self) -> list[dict[str, Any]]:
        """The installed packages: key, name, version, state (with its ``reason`` or ``error``),
        whether it is placed, and whether the project requires it."""
        project, _, state = self._load(recovering=False)
        return [{"key": key, "name": entry.get("name"), "version": entry.get("version"),
                 "state": entry.get("state"), "placed": state.placed(key),
                 **{k: entry[k] for k in ("reason", "error") if k in entry},
                 "direct": key == f"node_modules/{entry.get('name')}" and entry.get("name") in project.dependencies}
                for key, entry in sorted(state.plugins.items())]

    # ---- helpers --------------------------------------------------------------------------------

    def _load(self, *, recovering: bool = True) -> tuple[Project, Lock | None, State]:
        project = Project.load(self.root)
        if recovering:
            recover(project.state_dir)
        return project, Lock.read(project.lockfile), State.read(project.state_dir / "state.json")

    async def _apply(self, before: Project, after: Project, old: Lock | None, new: Lock, state: State,
                     digest: str | None, how: str, started: float, all_chunks: bool,
                     run: dict[str, bool], operation: str = "install", *, seen: str | None = None) -> InstallResult:
        files: dict[Path, bytes] = {}
        if old is None or new.data != old.data:
            files[after.lockfile] = new.data
        if (after.dependencies, after.eager, after.grants) != (before.dependencies, before.eager, before.grants):
            target, data = after.document_bytes()
            files[target] = data
        # refused before anything is fetched; lazy packages too (an install is where to say no)
        disabled = await check(new, after, [p.key for p in new.packages], Rules(after, run), self.sources(after))
        plan = LoadPlan.of(new)
        # lazy packages an activate (or --all) placed stay placed while the lockfile keeps them
        kept = {p.key for p in new.packages if p.key in plan.lazy_keys and state.placed(p.key)
                and state.plugins.get(p.key, {}).get("integrity") == p.integrity}
        placed = {p.key for p in new.packages} if all_chunks else set(plan.eager_keys) | kept
        new_state = State.installed(new, request=digest, placed=placed, active=set(plan.eager_keys), before=state,
                                    disabled=disabled)
        if how != "lockfile":
            self._hint(new, placed, after)
        state_path = after.state_dir / "state.json"
        if not files and new_state.to_bytes() == state.to_bytes() and after.plugins_path.is_dir():
            log.info("nothing to do: the plugins folder is the lockfile's")
            await run_blocking(stamp, self.root, seen, after.plugins_path, len(new.packages))
            return InstallResult(False, len(new.packages), 0, 0, how, time.monotonic() - started)
        files[state_path] = new_state.to_bytes()
        changes = folder_changes(new, placed, state, after.plugins_path)

        async def pre(staged: Path) -> None:
            for hook, targets in changes:
                if hook != "Remove":
                    targets = [replace(t, folder=staged / t.folder.relative_to(after.plugins_path)) for t in targets]
                await self.hooks.run(f"pre{hook}", operation, self.root, targets)

        installed = await self._held(
            operation, after.state_dir,
            place(new, [p for p in new.packages if p.key in placed], plugins=after.plugins_path,
                  state_dir=after.state_dir, files=files, cache=self.cache, sources=self.sources(after),
                  reporter=self.reporter, concurrency=self._concurrency, before_commit=pre, hold=True),
            lambda stage: [(f"post{hook}", [replace(t, folder=stage.path / "old-plugins"
                                                    / t.folder.relative_to(after.plugins_path))
                                           for t in targets] if hook == "Remove" else targets)
                           for hook, targets in changes])
        return InstallResult(True, len(new.packages), installed.downloaded, installed.cached, how,
                             time.monotonic() - started)

    async def _held(self, operation: str, state_dir: Path, placing: Any,
                    post: Any) -> Installed:
        """Await ``placing`` (a held :func:`place`), run the post hooks ``post(stage)`` lists, and
        release the commit; a failing hook (pre or post) undoes it and is recorded."""
        try:
            installed: Installed = await placing
        except HookFailed as exc:
            await self._record(state_dir, operation, exc)
            raise
        stage = installed.stage
        if stage is None:
            raise RuntimeError("place(hold=True) returned no stage")
        try:
            for hook, targets in post(stage):
                await self.hooks.run(hook, operation, self.root, targets)
        except BaseException as exc:
            await run_blocking(stage.undo)
            if isinstance(exc, HookFailed):
                await self._record(state_dir, operation, exc)
            raise
        await run_blocking(stage.release)
        return installed

    async def _record(self, state_dir: Path, operation: str, error: HookFailed) -> None:
        """Keep why an operation was rolled back (beside the state, which is as it was)."""
        doc = {"operation": operation, "at": time.time(), **error.to_body()}
        await run_blocking(write_atomic, state_dir / "last-failure.json",
                           (json.dumps(doc, indent=2) + "\n").encode())

    def _hint(self, lock: Lock, placed: set[str], project: Project) -> None:
        if self.hinter is not None:
            self.hinter.send(lock, LoadPlan.of(lock), placed, self.sources(project))

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


def _installed(name: str, lock: Lock | None, state: State) -> tuple[Lock, str]:
    """The installed lockfile and the key of its top-level package ``name``; refuses a project
    whose lockfile is not the one installed (an ``eghact resolve`` since, or a hand edit)."""
    if lock is None or not state.plugins:
        raise NotFound(f"{name} is not installed: the project has no install yet", code="not_installed",
                       detail={"name": name})
    if state.hash != lock.hash or not state.matches(lock):
        raise InstallNeeded("the lockfile changed since the last install: run eghact install first",
                            detail={"name": name})
    key = f"node_modules/{name}"
    if key not in state.plugins:
        raise NotFound(f"{name} is not installed in this project", code="not_installed", detail={"name": name})
    return lock, key


def _check_transition(name: str, entry: dict[str, Any], operation: str, allowed: tuple[str, ...]) -> None:
    current = entry.get("state")
    if current not in allowed:
        raise InvalidTransition(f"cannot {operation} {name}: it is {current}, and {operation} applies to a plugin "
                                f"that is {' or '.join(allowed)}",
                                detail={"name": name, "state": current, "operation": operation,
                                        "allowed_from": list(allowed)})
