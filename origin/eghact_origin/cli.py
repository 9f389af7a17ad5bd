"""``eghact-origin``: serve a registry and administer its data dir.

    eghact-origin serve --data DIR [--host H] [--port N] [--public-url URL]
                        [--private-scope @S ...] [--read-only] [--max-tarball-bytes N]
                        [--uplink [NAME=]URL ...] [--route PATTERN=NAME|local ...]
                        [--uplink-max-age 5m] [--uplink-timeout 10s] [--uplink-negative-ttl 60s]
                        [--uplink-min-age DURATION] [--uplink-min-age-exempt PATTERN ...]
                        [--uplink-block-severity LEVEL]
    eghact-origin demo  --data DIR [--plugins N] [--seed S] [--port N]
    eghact-origin seed  --data DIR --plugins N --seed S [--workers W]
    eghact-origin token create --data DIR --name NAME --scope SCOPE [--scope ...]
    eghact-origin token revoke --data DIR (--id N | --name NAME)
    eghact-origin token list   --data DIR
    eghact-origin advisory add --data DIR --name PKG --range RANGE --severity S --title T
                               [--url URL] [--cwe CWE-79 ...] [--cvss 7.5]
    eghact-origin uplink (allow | disallow) NAME@VERSION --data DIR
    eghact-origin uplink list NAME --data DIR
    eghact-origin audit-verify --data DIR
    eghact-origin resolve NAME@RANGE ... --registry URL [--strategy duplicate=plugins,version=highest]
                          [--policy FILE] [--eager NAME] [--framework V] [--token T] [-o eghact-lock.json]
    eghact-origin mirror-apply --data DIR --staged STAGE     (eghact-mirror runs this)

Errors print one line to stderr and exit 2 (usage) or 1 (refused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from eghact_common import names, semver
from eghact_common.durations import InvalidDuration, parse_duration
from eghact_common.errors import BadRequest, EghactError
from eghact_common.wire import DEMO_TOKENS_FILE

from . import audit
from .auth import hash_token, new_token, validate_scope
from .settings import OriginSettings
from .storage import SEVERITIES, SqliteMetadataStore, committed_audit_head
from .uplinks.config import parse_uplinks
from .uplinks.overrides import parse_spec


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eghact-origin", description="Eghact origin registry")
    sub = parser.add_subparsers(dest="command", required=True)

    def data(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, required=True, help="data directory")

    serve = sub.add_parser("serve", help="serve the registry over HTTP")
    data(serve)
    _serve_options(serve)

    demo = sub.add_parser("demo", help="seed a demo universe if DIR is empty, reuse (or make) the demo's tokens, serve")
    data(demo)
    _serve_options(demo)
    demo.add_argument("--plugins", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)

    seed = sub.add_parser("seed", help="generate a realistic universe into DIR")
    data(seed)
    seed.add_argument("--plugins", type=int, required=True)
    seed.add_argument("--seed", type=int, required=True)
    seed.add_argument("--workers", type=int, default=2)

    token = sub.add_parser("token", help="manage tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create")
    data(create)
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", required=True)
    revoke = token.add_parser("revoke")
    data(revoke)
    who = revoke.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", type=int)
    who.add_argument("--name")
    listing = token.add_parser("list")
    data(listing)

    advisory = sub.add_parser("advisory", help="manage advisories").add_subparsers(dest="action", required=True)
    add = advisory.add_parser("add")
    data(add)
    add.add_argument("--name", required=True)
    add.add_argument("--range", required=True, dest="vulnerable", help="vulnerable versions, a semver range")
    add.add_argument("--severity", required=True, choices=SEVERITIES)
    add.add_argument("--title", required=True)
    add.add_argument("--url", default="")
    add.add_argument("--cwe", action="append", default=[])
    add.add_argument("--cvss", type=float)

    uplink = sub.add_parser("uplink", help="let versions of uplinked packages through the pull policy") \
        .add_subparsers(dest="action", required=True)
    for action, text in (("allow", "show NAME@VERSION although the cooldown or an advisory would hide it"),
                         ("disallow", "withdraw an allow")):
        change = uplink.add_parser(action, help=text)
        data(change)
        change.add_argument("spec", metavar="NAME@VERSION")
    allowed = uplink.add_parser("list", help="the versions of NAME allowed through")
    data(allowed)
    allowed.add_argument("name")

    verify = sub.add_parser("audit-verify", help="check the audit log's hash chain")
    data(verify)

    resolve = sub.add_parser("resolve", help="resolve NAME@RANGE ... at a registry and write eghact-lock.json")
    resolve.add_argument("specs", nargs="+", metavar="NAME@RANGE")
    resolve.add_argument("--registry", required=True, help="origin or edge URL")
    resolve.add_argument("--strategy", default="",
                         help="KEY=VALUE,...: duplicate=plugins|dedupe-all|isolate, version=highest|lowest|prompt, "
                              "security=strict|audit|permissive (defaults: plugins, highest, audit)")
    resolve.add_argument("--policy", type=Path, help="JSON file: the request's policy object")
    resolve.add_argument("--eager", action="append", default=[], metavar="NAME")
    resolve.add_argument("--framework", help="target Eghact framework version")
    resolve.add_argument("--token", help="bearer token (private scopes)")
    resolve.add_argument("-o", "--output", type=Path, default=Path("eghact-lock.json"))

    apply = sub.add_parser("mirror-apply", help="apply a verified, staged mirror bundle (used by eghact-mirror)")
    data(apply)
    apply.add_argument("--staged", type=Path, required=True)
    return parser


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4873)
    p.add_argument("--public-url")
    p.add_argument("--private-scope", action="append", default=[])
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--max-tarball-bytes", type=int, default=50 * 1024 * 1024)
    p.add_argument("--quiet", action="store_true", help="no access log")
    p.add_argument("--uplink", action="append", default=[], metavar="[NAME=]URL",
                   help="pull public packages the store lacks from this registry (repeatable; a bare URL is "
                        "named 'default'; the first is where unrouted names go)")
    p.add_argument("--route", action="append", default=[], metavar="PATTERN=NAME|local",
                   help="names matching PATTERN (fnmatch) go to uplink NAME, or never leave (local); first match wins")
    p.add_argument("--uplink-max-age", default="5m", help="revalidate a pulled packument after this long")
    p.add_argument("--uplink-timeout", default="10s", help="connect and read timeout of an upstream request")
    p.add_argument("--uplink-negative-ttl", default="60s", help="how long an upstream 404 is believed")
    p.add_argument("--uplink-min-age", type=_duration, default=0.0, metavar="DURATION",
                   help="hide upstream versions published less than this long ago (90s, 5m, 2h, 3d, 1w; 0: off)")
    p.add_argument("--uplink-min-age-exempt", action="append", default=[], metavar="PATTERN",
                   help="names the minimum age does not apply to (shell-style, like @types/*; repeatable)")
    p.add_argument("--uplink-block-severity", choices=SEVERITIES, metavar="LEVEL",
                   help=f"hide upstream versions an advisory of this severity or worse names ({', '.join(SEVERITIES)})")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except InvalidDuration as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _settings(args: argparse.Namespace) -> OriginSettings:
    for scope in args.private_scope:
        if not scope.startswith("@") or "/" in scope:
            raise SystemExit(f"eghact-origin: --private-scope takes a scope like @acme, not {scope!r}")
    try:
        uplinks = parse_uplinks(args.uplink, args.route, max_age=args.uplink_max_age, timeout=args.uplink_timeout,
                                negative_ttl=args.uplink_negative_ttl)
    except ValueError as exc:
        raise SystemExit(f"eghact-origin: {exc}") from None
    return OriginSettings(
        data_dir=args.data, host=args.host, port=args.port, public_url=args.public_url,
        private_scopes=tuple(args.private_scope), read_only=args.read_only,
        max_tarball_bytes=args.max_tarball_bytes, access_log=not args.quiet, uplinks=uplinks,
        uplink_min_age=args.uplink_min_age, uplink_min_age_exempt=tuple(args.uplink_min_age_exempt),
        uplink_block_severity=args.uplink_block_severity,
    )


def _serve(settings: OriginSettings) -> int:
    from eghact_common.serving import run, serve

    from .app import create_app

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    run(serve(create_app(settings), host=settings.host, port=settings.port, label="eghact-origin"))
    return 0


def _open(data_dir: Path):
    from .app import open_registry

    return open_registry(OriginSettings(data_dir=data_dir))


def _seed(data_dir: Path, plugins: int, seed: int, workers: int) -> None:
    from .seeding.load import seed_registry

    registry = _open(data_dir)
    try:
        report = seed_registry(registry, plugins=plugins, seed=seed, workers=workers)
    finally:
        registry.store.close()
    print(f"seeded {report.packages} packages, {report.versions} versions, {report.bytes / 1e6:.1f} MB of "
          f"tarballs, {report.advisories} advisories in {report.seconds:.1f}s", flush=True)


def _create_token(data_dir: Path, name: str, scopes: list[str]) -> str:
    checked = [validate_scope(s) for s in scopes]
    registry = _open(data_dir)
    try:
        token = new_token()
        registry.store.create_token_sync(name, hash_token(token), checked, actor="cli")
    finally:
        registry.store.close()
    return token


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except EghactError as error:
        print(f"eghact-origin: {error.message}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(_settings(args))
    if args.command == "demo":
        if not SqliteMetadataStore.exists(args.data):
            print(f"seeding a demo universe of {args.plugins} plugins into {args.data} ...", flush=True)
            _seed(args.data, args.plugins, args.seed, 2)
        from .demo_tokens import ensure_demo_tokens

        registry = _open(args.data)
        try:
            tokens = ensure_demo_tokens(registry.store, args.data)
        finally:
            registry.store.close()
        print(f"admin token (for .npmrc: //HOST:PORT/:_authToken=...): {tokens['demo-admin']}", flush=True)
        print(f"the demo's tokens are kept in {args.data / DEMO_TOKENS_FILE} (0600) and reused by every start",
              flush=True)
        return _serve(_settings(args))
    if args.command == "seed":
        _seed(args.data, args.plugins, args.seed, args.workers)
        return 0
    if args.command == "token":
        return _token(args)
    if args.command == "advisory":
        if semver.valid_range(args.vulnerable) is None:
            print(f"eghact-origin: --range {args.vulnerable!r} is not a semver range", file=sys.stderr)
            return 2
        registry = _open(args.data)
        try:
            event = registry.store.add_advisory_sync({
                "name": args.name, "vulnerable_versions": args.vulnerable, "severity": args.severity,
                "title": args.title, "url": args.url, "cwe": args.cwe, "cvss": args.cvss,
            }, actor="cli")
        finally:
            registry.store.close()
        print(json.dumps({"id": event.data["advisory"]["id"], "seq": event.seq}))
        return 0
    if args.command == "uplink":
        return _uplink(args)
    if args.command == "audit-verify":
        return _audit_verify(args.data)
    if args.command == "resolve":
        from .resolution.client import run_resolve

        return run_resolve(args)
    if args.command == "mirror-apply":
        from .mirror.apply import MirrorApplyError, apply_staged

        try:
            report = apply_staged(args.data, args.staged)
        except MirrorApplyError as error:
            print(f"eghact-origin: {error.message}", file=sys.stderr)
            print(json.dumps({"error": error.code, "message": error.message}))
            return error.exit_code
        print(json.dumps(report.__dict__))
        return 0
    raise AssertionError(args.command)  # argparse's `required=True` makes this unreachable


def _audit_verify(data_dir: Path) -> int:
    """Check the chain, and that no whole records were cut off its end: the registry's
    database remembers the id of the last record it committed."""
    result = audit.verify(data_dir / "audit.jsonl")
    if not result.ok:
        print(f"audit log TAMPERED at line {result.first_bad_line}: {result.reason}")
        return 1
    head = committed_audit_head(data_dir)
    if head > result.records:
        print(f"audit log TRUNCATED: it ends at record {result.records}, the registry committed {head}")
        return 1
    print(f"audit log intact: {result.records} records")
    return 0


def _uplink(args: argparse.Namespace) -> int:
    """The admin's overrides, written straight to the data dir (actor ``cli``). A running
    origin shows the change at its next refresh of the package; ``PUT /-/v1/uplinks/allowed``
    shows it at once."""
    try:
        if args.action == "list":
            name, version = names.validate_name(args.name, legacy=True), ""
        else:
            name, version = parse_spec(args.spec)
    except BadRequest as error:
        print(f"eghact-origin: {error.message}", file=sys.stderr)
        return 2
    registry = _open(args.data)
    try:
        store = registry.store
        if args.action == "list":
            for allowed in sorted(asyncio.run(store.uplink_allowed(name)), key=lambda v: semver.Version(v, loose=True)):
                print(allowed)
            return 0
        if args.action == "allow":
            changed = asyncio.run(store.uplink_allow(name, version, actor="cli"))
        else:
            changed = asyncio.run(store.uplink_disallow(name, version, actor="cli"))
            if not changed:
                print(f"eghact-origin: {name}@{version} is not on the uplinks' allow-list", file=sys.stderr)
                return 1
    finally:
        registry.store.close()
    print(json.dumps({"name": name, "version": version, "changed": changed}))
    return 0


def _token(args: argparse.Namespace) -> int:
    if args.action == "create":
        token = _create_token(args.data, args.name, args.scope)
        print(f"created token {args.name!r} with scopes {', '.join(args.scope)}")
        print(token)
        return 0
    registry = _open(args.data)
    try:
        if args.action == "revoke":
            count = registry.store.revoke_token_sync(args.id, args.name, actor="cli")
            if not count:
                print("eghact-origin: no such active token", file=sys.stderr)
                return 1
            print(f"revoked {count} token(s)")
            return 0
        for record in registry.store.tokens_sync():
            state = f"revoked {record.revoked}" if record.revoked else "active"
            print(f"{record.id}\t{record.name}\t{','.join(record.scopes)}\t{record.created}\t{state}")
        return 0
    finally:
        registry.store.close()


if __name__ == "__main__":
    sys.exit(main())
