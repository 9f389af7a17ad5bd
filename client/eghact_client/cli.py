"""``eghact``: the plugin user's command line, over :class:`~eghact_client.manager.PluginManager`.

::

    eghact install [NAME[@RANGE]] [--frozen] [--all]   add a plugin, or install what the project requires
    eghact ci [--all]                          install exactly eghact-lock.json (install --frozen)
    eghact activate NAME                       fetch and place its lazy chunks if needed; make it active
    eghact deactivate NAME [--reason TEXT]     suspend it (and what only it needed)
    eghact remove NAME
    eghact update [NAME] [--security]          newest versions the ranges allow (NAME: that root only), or
                                               --security: only what advisories affect, to the lowest fix
    eghact audit [--level LEVEL]               the installed packages' advisories (exit 12 at or above LEVEL)
    eghact ls                                  every package with its state
    eghact resolve                             resolve again and write eghact-lock.json only
    eghact why NAME                            the chains that pull NAME in, and its capabilities' grants
    (install: --deny CAP / --grant CAP, repeatable: recorded as NAME's grants, or for this run)
    options (before the command): --project DIR, --cache DIR, --json, --verbose (-v, -vv), --no-hints

On a terminal, ``install``/``ci``/``remove`` show a progress bar (rich); otherwise plain lines.
``--json`` prints one JSON document on stdout: the result, or the error body
``{"error", "message", "detail"}``. ``--verbose`` logs every decision (sources and their
round-trip times, failovers, retries, cache hits, how the resolution was obtained) on stderr.

Exit codes:
    0   done
    1   unexpected failure (a bug, or an I/O error such as a full disk)
    2   bad command line, project file or request (the registry's 400/413 included)
    3   unresolvable: the registry's explanation is printed
    4   no source could be reached (every edge, the primary and the mirrors), or one failed
    5   frozen install: eghact-lock.json is missing or no longer matches the requirements
    6   a tarball was refused: it does not match its integrity, or unpacking it would escape its folder
    7   not found: a package the registry does not have, or a dependency the project does not have
    8   another eghact is working on this project
    9   a state change that makes no sense (activate an active plugin, deactivate one that is not
        active), or activate/deactivate before the changed lockfile is installed
    10  a required capability is denied (the plugin, the capability and the chain are printed)
    11  a lifecycle hook failed, hung or ran out of memory: the operation was rolled back
    12  audit: an advisory at or above --level (default low) affects an installed package
    13  update --security: no version within the requirements fixes an advisory (nothing changed)
    130 interrupted (Ctrl-C): nothing was changed
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eghact_common.errors import (
    BadRequest,
    Conflict,
    EghactError,
    IntegrityMismatch,
    InvalidTarball,
    NotFound,
    PayloadTooLarge,
    Unresolvable,
    UpstreamUnavailable,
)

from .errors import CapabilityDenied, HookFailed, InstallNeeded, InvalidTransition, LockfileOutOfDate, NoFixAvailable
from .levels import SEVERITIES
from .reporter import Reporter
from .uptodate import up_to_date

__all__ = ["main"]

# most specific first: the first class an error is an instance of gives its exit code
EXIT_CODES: tuple[tuple[type[EghactError], int], ...] = (
    (CapabilityDenied, 10), (HookFailed, 11), (NoFixAvailable, 13),
    (LockfileOutOfDate, 5), (IntegrityMismatch, 6), (InvalidTarball, 6), (Unresolvable, 3), (NotFound, 7),
    (UpstreamUnavailable, 4), (BadRequest, 2), (PayloadTooLarge, 2), (InvalidTransition, 9), (InstallNeeded, 9),
    (Conflict, 8),
)


AUDIT_FOUND = 12


def exit_code(error: EghactError) -> int:
    if error.code == "project_busy":
        return 8
    return next((code for cls, code in EXIT_CODES if isinstance(error, cls)), 4 if error.status >= 500 else 2)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``name@range`` with scoped names (``@s/n@^1``); a bare name leaves the range open."""
    at = spec.rfind("@")
    if at <= 0:
        return spec, None
    return spec[:at], spec[at + 1:] or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eghact", description="Install and manage Eghact plugins.")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the project folder (default: here)")
    parser.add_argument("--cache", type=Path, default=None, help="the tarball cache ($EGHACT_CACHE)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log every decision (-vv: every request)")
    parser.add_argument("--no-hints", action="store_true", help="send the edge no prefetch hints")
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install", help="add a plugin, or install what the project requires")
    install.add_argument("spec", nargs="?", help="NAME or NAME@RANGE")
    install.add_argument("--frozen", action="store_true", help="exactly the lockfile; fail if it is out of date")
    install.add_argument("--all", action="store_true", help="place the lazy chunks now too")
    install.add_argument("--deny", action="append", default=[], metavar="CAP",
                         help="deny a capability or family (network, network:fetch, ...)")
    install.add_argument("--grant", action="append", default=[], metavar="CAP", help="grant a capability")
    ci = commands.add_parser("ci", help="install exactly eghact-lock.json (install --frozen)")
    ci.add_argument("--all", action="store_true", help="place the lazy chunks now too")
    activate = commands.add_parser("activate", help="make a plugin active, fetching its lazy chunks if needed")
    activate.add_argument("name")
    deactivate = commands.add_parser("deactivate", help="suspend an active plugin")
    deactivate.add_argument("name")
    deactivate.add_argument("--reason", default="deactivated", help="recorded with the state (default: deactivated)")
    remove = commands.add_parser("remove", help="stop requiring a plugin")
    remove.add_argument("name")
    update = commands.add_parser("update", help="move to the newest allowed versions, or fix advisories")
    update.add_argument("name", nargs="?", help="only this root (and what only it pulls in)")
    update.add_argument("--security", action="store_true",
                        help="only what advisories affect, to the lowest versions that fix them")
    audit = commands.add_parser("audit", help="the installed packages against the registry's advisories")
    audit.add_argument("--level", choices=SEVERITIES, default="low",
                       help=f"exit {AUDIT_FOUND} when an advisory at or above this severity is found (default low)")
    commands.add_parser("ls", help="list the installed packages")
    commands.add_parser("resolve", help="resolve again and write eghact-lock.json")
    why = commands.add_parser("why", help="the chains that pull a package in, and its capabilities")
    why.add_argument("name")
    return parser


class _Progress(Reporter):
    """A rich progress bar of the packages placed, on a terminal."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), transient=True)
        self._task: Any = None

    def __enter__(self) -> _Progress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def phase(self, name: str, total: int) -> None:
        if name == "fetch":
            self._task = self._progress.add_task("installing", total=total)

    def placed(self, key: str) -> None:
        if self._task is not None:
            self._progress.advance(self._task)

    def failover(self, url: str, reason: str) -> None:
        self._progress.console.print(f"[yellow]{url} failed ({reason}); failing over[/yellow]")


async def _run(args: argparse.Namespace, reporter: Reporter) -> Any:
    from .manager import PluginManager

    async with PluginManager(args.project, cache_dir=args.cache, reporter=reporter,
                             hints=not args.no_hints) as manager:
        if args.command == "install":
            name, version = parse_spec(args.spec) if args.spec else (None, None)
            capabilities = {**{c: True for c in args.grant}, **{c: False for c in args.deny}}
            return await manager.install(name, version=version, frozen=args.frozen, all_chunks=args.all,
                                         capabilities=capabilities or None)
        if args.command == "ci":
            return await manager.install(frozen=True, all_chunks=args.all)
        if args.command == "activate":
            return await manager.activate(args.name)
        if args.command == "deactivate":
            return await manager.deactivate(args.name, reason=args.reason)
        if args.command == "remove":
            return await manager.remove(args.name)
        if args.command == "ls":
            return await manager.list()
        if args.command == "update":
            return await manager.update(args.name, security=args.security)
        if args.command == "audit":
            return await manager.audit()
        if args.command == "why":
            return await manager.why(args.name)
        resolution = await manager.resolve()
        return {"hash": resolution.lock.hash, "packages": len(resolution.lock.packages), "how": resolution.how,
                "source": resolution.source}


def _print(args: argparse.Namespace, result: Any) -> None:
    document = result.to_json() if hasattr(result, "to_json") else result
    if args.json:
        print(json.dumps(document, indent=2))
    elif args.command == "ls":
        for entry in document:
            why = entry.get("reason") or (entry.get("error") or {}).get("message")
            print(f"{entry['name']}@{entry['version']}  {entry['state']}{f' ({why})' if why else ''}"
                  f"{'' if entry['placed'] else '  (not placed: lazy)'}{'' if entry['direct'] else '  (dependency)'}")
    elif args.command == "why":
        for copy in document:
            print(f"{copy['name']}@{copy['version']} ({copy['key']}, {copy['state'] or 'not installed'})")
            for chain in copy["chains"]:
                print("  " + " -> ".join(chain))
            for capability, grant in copy["capabilities"].items():
                by = f" by {grant['by']}" if grant.get("by") else ""
                print(f"  {capability}: {grant['grant']}{by}")
    elif args.command == "audit":
        for finding in document:
            fix = f", fixed in {finding['fixed_in']}" if finding["fixed_in"] else ", no fixed version"
            print(f"{finding['severity']:<8} {finding['name']}@{finding['version']}  {finding['id']} "
                  f"{finding['title']} (vulnerable {finding['vulnerable_versions']}{fix})")
        print(f"{len(document)} advisories" if document else "no known advisories")
    elif args.command == "update":
        for change in document["changes"]:
            print(f"{change['name']}: {change['from'] or '-'} -> {change['to'] or '-'}")
        print(f"updated: {len(document['changes'])} packages moved ({document['seconds']:.2f} s)"
              if document["changes"] else "up to date: nothing to update")
    elif args.command in ("activate", "deactivate"):
        fetched = f": {document['downloaded']} downloaded, {document['cached']} from the cache" \
            if document["downloaded"] or document["cached"] else ""
        print(f"{document['name']} {document['state']} ({len(document['changed'])} packages changed state{fetched}, "
              f"{document['seconds'] * 1000:.0f} ms)")
    elif args.command == "resolve":
        print(f"eghact-lock.json: {document['packages']} packages (resolution {document['hash'][:12]}, "
              f"{document['how']} at {document['source']})")
    elif not document["changed"]:
        print(f"up to date: {document['packages']} packages ({document['seconds'] * 1000:.0f} ms)")
    else:
        print(f"installed {document['packages']} packages: {document['downloaded']} downloaded, "
              f"{document['cached']} from the cache ({document['resolution']}, {document['seconds']:.2f} s)")


def _unchanged(args: argparse.Namespace) -> dict[str, Any] | None:
    """The result of a plain ``install`` or ``ci`` in a project stamped up to date, decided
    without importing the manager (eghact_client.uptodate), or None: decide in full."""
    started = time.monotonic()
    plain = args.command == "ci" or (args.command == "install" and not args.spec and not args.frozen
                                     and not args.grant and not args.deny)
    if not plain or args.all:
        return None
    stamped = up_to_date(args.project.resolve())
    if stamped is None:
        return None
    logging.getLogger("eghact.client").info("nothing to do: the project is byte for byte as last proven up to date")
    # the full path's InstallResult, field for field
    return {"changed": False, "packages": stamped["packages"], "downloaded": 0, "cached": 0,
            "resolution": "lockfile", "seconds": time.monotonic() - started}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO, stream=sys.stderr,
                            format="eghact: %(message)s")
    unchanged = _unchanged(args)
    if unchanged is not None:
        _print(args, unchanged)
        return 0
    import asyncio  # here: an unchanged project's install (above) never needs it
    interactive = sys.stderr.isatty() and not args.json and args.command in ("install", "ci", "remove", "activate",
                                                                             "update")
    try:
        if interactive:
            with _Progress() as progress:
                result = asyncio.run(_run(args, progress))
        else:
            result = asyncio.run(_run(args, Reporter()))
    except EghactError as error:
        if args.json:
            print(json.dumps(error.to_body(), indent=2))
        else:
            print(f"eghact: {error.message}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        print("eghact: interrupted; the project is as it was (or, past the commit point, as the install left it)",
              file=sys.stderr)
        return 130
    if args.command == "audit":
        _print(args, [f.to_json() for f in result])
        from .audit import at_or_above

        return AUDIT_FOUND if at_or_above(result, args.level) else 0
    _print(args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
