"""``eghact-mirror``: signed offline bundles, their verification and import, and an online follower.

    eghact-mirror keygen -o KEYFILE [--force]
    eghact-mirror export --origin URL --key KEYFILE -o FILE
                         [--since SEQ [--previous DIGEST] | --after BUNDLE|INDEX|MIRROR_DIR]
                         [--filter PATTERN ...] [--closure] [--lockfile eghact-lock.json ...] [--top N]
                         [--max-size SIZE] [--token TOKEN] [--level N] [--threads N]
                         [--max-document-bytes SIZE] [--max-tarball-bytes SIZE]
    eghact-mirror verify FILE --trust PUBKEY [--record PATH] [--json]
    eghact-mirror import FILE --into DIR --trust PUBKEY [--json]
    eghact-mirror sync   --origin URL --into DIR [--filter PATTERN ...] [--once] [--batch N]
                         [--max-batches N] [--wait SECONDS] [--key KEYFILE] [--token TOKEN]
                         [--max-document-bytes SIZE] [--max-tarball-bytes SIZE]

A DIR is an origin data dir: serve it with ``eghact-origin serve --data DIR --read-only``.
SIZE takes K, M, G suffixes (powers of 1024). A progress bar is drawn only on a terminal.
Nothing read from the origin is kept past a bound: a tarball past the size the origin's
tarball list gives (15 digest_mismatch), a tarball it does not size past --max-tarball-bytes
(default 1G), a packument or other document past --max-document-bytes (default 128M) (3).
Errors print ``eghact-mirror: <code>: <message>`` on stderr; the exit code names the cause:

    0                     done (importing the bundle last applied is a no-op, and says so)
    1  internal_error     unexpected failure (a bug, or an I/O error such as a full disk)
    2  usage              bad command line
    3  origin_unavailable the origin cannot be reached or answered something unexpected (a body past its bound)
    4  bad_input          an unreadable key, lockfile, --after bundle or data dir (too big, not JSON, too deep)
    5  up_to_date         export: the origin has nothing after the starting seq; no bundle written
    6  incompatible       the origin speaks a wire protocol version this tool does not read
   10  bad_stage          mirror-apply refused the staged layout (a version mismatch between the tools)
   11  wrong_origin       the bundle comes from another origin than the mirror follows
   12  downgrade          the bundle ends at or before the mirror's seq
   13  out_of_order       the bundle does not start where the mirror is (from_seq / previous digest)
   14  missing_tarball    a packument names a tarball that is neither in the bundle nor in the mirror
   15  digest_mismatch    a file differs from its signed digest, or a tarball from its integrity or listed size
   16  replay             the bundle was applied before and has been superseded
   17  apply_failed       mirror-apply failed in an unexpected way (its stderr is shown)
   20  wrong_key          the bundle is signed by another key than the trusted one
   21  bad_signature      the index signature does not verify: the index was tampered with
   22  corrupt            the compressed stream or the tar inside it cannot be decoded (a flipped byte)
   23  truncated          the bundle stops short: a partial copy
   24  extra_file         the bundle holds a file its signed index does not list
   25  missing_file       the signed index lists a file the bundle does not hold
   26  missing_part       a part of a split bundle is missing
   27  bad_part           a part of a split bundle differs from its signed part manifest
   28  not_a_bundle       not an eghact-mirror bundle (no index, unknown format, unsafe or oversized member)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from pathlib import Path

from . import signing
from .errors import MirrorError, exit_table
from .index import Index
from .limits import DOCUMENT_BYTES, TARBALL_BYTES, Limits
from .progress import for_terminal


def _size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 4096, 700M or 4G")
    return int(match.group(1)) * 1024 ** " KMG".index(match.group(2).upper() or " ")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eghact-mirror", description="Eghact offline mirrors",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="exit codes:\n" + exit_table())
    sub = parser.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="make a signing key pair")
    keygen.add_argument("-o", "--output", type=Path, required=True, help="private key file (KEYFILE.pub too)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")

    export = sub.add_parser("export", help="write a signed bundle of an origin's changes")
    export.add_argument("--origin", required=True)
    export.add_argument("--key", type=Path, required=True)
    export.add_argument("-o", "--output", type=Path, required=True)
    start = export.add_mutually_exclusive_group()
    start.add_argument("--since", type=int, help="start after this seq (0: a full bundle)")
    start.add_argument("--after", type=Path, help="continue this bundle, index file, or mirror data dir")
    export.add_argument("--previous", help="with --since: the digest of the mirror's last bundle")
    _filters(export)
    export.add_argument("--closure", action="store_true", help="add every version the selection depends on")
    export.add_argument("--lockfile", type=Path, action="append", default=[])
    export.add_argument("--top", type=int, help="the N most popular packages and their closure")
    export.add_argument("--max-size", type=_size, help="split into parts of at most SIZE")
    export.add_argument("--token", help="a read token, for origins with private scopes")
    export.add_argument("--level", type=int, default=1,
                        help="zstd level (default 1: tarballs are gzip already; level 3, tar --zstd's, made a "
                             "full bundle 0.3%% smaller for 30%% more CPU)")
    export.add_argument("--threads", type=int, default=0,
                        help="zstd worker threads (0: one compressing thread beside the exporter; 2 measured no "
                             "faster on 2 cores, and 30 MB more memory)")
    _limits(export)

    verify = sub.add_parser("verify", help="check a bundle's signature and every digest")
    verify.add_argument("file", type=Path)
    verify.add_argument("--trust", type=Path, required=True, help="the exporter's KEYFILE.pub")
    verify.add_argument("--record", type=Path, help="also write the verification record here")
    verify.add_argument("--json", action="store_true", help="print the record as JSON")

    imp = sub.add_parser("import", help="verify a bundle and apply it to a mirror")
    imp.add_argument("file", type=Path)
    imp.add_argument("--into", type=Path, required=True)
    imp.add_argument("--trust", type=Path, required=True)
    imp.add_argument("--json", action="store_true")

    follow = sub.add_parser("sync", help="follow an origin's changes feed into a mirror")
    follow.add_argument("--origin", required=True)
    follow.add_argument("--into", type=Path, required=True)
    _filters(follow)
    follow.add_argument("--once", action="store_true", help="catch up, then exit")
    follow.add_argument("--batch", type=int, default=1000, help="events per applied batch")
    follow.add_argument("--max-batches", type=int)
    follow.add_argument("--wait", type=float, default=30.0, help="long-poll seconds when caught up")
    follow.add_argument("--key", type=Path, help="sign each batch's index with this key")
    follow.add_argument("--token")
    _limits(follow)
    return parser


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", dest="filters", action="append", default=[], metavar="PATTERN",
                   help="package names to mirror, shell-style (@acme/*); repeatable")


def _limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-document-bytes", type=_size, default=DOCUMENT_BYTES, metavar="SIZE",
                   help="refuse a packument, tarball list or feed page over SIZE from the origin (default 128M)")
    p.add_argument("--max-tarball-bytes", type=_size, default=TARBALL_BYTES, metavar="SIZE",
                   help="refuse a tarball over SIZE when the origin's tarball list does not give its size "
                        "(default 1G; a listed size is the bound otherwise)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so staging dirs and partial outputs are removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args)
    except MirrorError as error:
        print(f"eghact-mirror: {error.code}: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("eghact-mirror: interrupted", file=sys.stderr)
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    if args.command == "keygen":
        key = signing.generate(args.output, force=args.force)
        print(f"wrote {args.output} (private, 0600) and {signing.public_path(args.output)} (public)")
        print(f"fingerprint {key.fingerprint}")
        return 0
    if args.command == "export":
        return _export(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "import":
        return _import(args)
    if args.command == "sync":
        return _sync(args)
    raise AssertionError(args.command)  # argparse's required=True makes this unreachable


def _export(args: argparse.Namespace) -> int:
    from .export import ExportOptions, export
    from .selection import SelectionSpec

    if args.previous and args.since is None:
        raise MirrorError("usage", "--previous goes with --since")
    options = ExportOptions(
        origin=args.origin, output=args.output, since=args.since, previous=args.previous, after=args.after,
        selection=SelectionSpec(tuple(args.filters), args.closure, tuple(args.lockfile), args.top),
        max_size=args.max_size, token=args.token, level=args.level, threads=args.threads,
        limits=Limits(args.max_document_bytes, args.max_tarball_bytes))
    key = signing.load_signing_key(args.key)
    # The event loop parses ~150,000 batch frames while two threads hash, frame and compress:
    # each of their C calls gives the GIL up and waits up to a switch interval to get it back
    # from the busy loop. A tenth of the default interval: measured 6.0 -> 5.7 s on a full
    # export (10,000 plugins), the same CPU.
    sys.setswitchinterval(0.0005)
    with for_terminal() as progress:
        report = asyncio.run(export(options, key, progress))
    index, bundle = report.index, report.bundle
    for warning in index.warnings:
        print(f"eghact-mirror: warning: {warning}", file=sys.stderr)
    print(f"bundle {bundle.digest}")
    print(f"  origin {index.origin_id}, seq {index.from_seq} -> {index.to_seq}, "
          f"after {index.previous_digest or '(nothing)'}")
    print(f"  {len(index.packages)} packages, {report.tarballs} tarballs, {len(index.removed)} removed, "
          f"{index.event_count} events; {report.content_bytes} bytes in {bundle.size} compressed, "
          f"{report.seconds:.1f}s")
    for path, part in zip(bundle.paths, bundle.parts, strict=False):
        print(f"  {path}  sha512 {part.sha512}  {part.size} bytes")
    for path in bundle.paths[len(bundle.parts):]:
        print(f"  {path}")
    print(f"  signed by {key.fingerprint}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from . import record
    from .verify import verify_bundle

    trusted = signing.load_trusted_key(args.trust)
    with for_terminal() as progress:
        task = progress.task("verifying", None, unit="bytes")
        verified = verify_bundle(args.file, trusted, on_bytes=lambda n: progress.advance(task, n))
    summary = record.summary(verified, result="verified")
    if args.record:
        args.record.write_text(record.text(summary, verified))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(record.text(summary, verified, files=False), end="")
    return 0


def _import(args: argparse.Namespace) -> int:
    from . import record
    from .importer import import_bundle

    trusted = signing.load_trusted_key(args.trust)
    with for_terminal() as progress:
        checking = progress.task("checking the signed index", None, unit="bytes")
        staging = progress.task("verifying + staging", None, unit="bytes")
        report = import_bundle(args.file, args.into, trusted, on_bytes=lambda n: progress.advance(checking, n),
                               on_staged=lambda n: progress.advance(staging, n))
    if args.json:
        print(json.dumps(report.record, indent=1))
    else:
        print(record.text(report.record, report.verified, files=False), end="")
        if not report.applied:
            print("already applied: this bundle is the mirror's last one; nothing changed")
        if report.record_path:
            print(f"record kept in {report.record_path}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    from .sync import SyncOptions, sync

    key = signing.load_signing_key(args.key) if args.key else None
    options = SyncOptions(origin=args.origin, mirror=args.into, filters=tuple(args.filters), once=args.once,
                          batch=args.batch, max_batches=args.max_batches, wait=args.wait, token=args.token,
                          limits=Limits(args.max_document_bytes, args.max_tarball_bytes))

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)  # finish the batch in hand, then stop

        def batch(index: Index, digest: str) -> None:
            print(f"applied batch {digest[:16]}: seq {index.from_seq} -> {index.to_seq}, "
                  f"{len(index.packages)} packages, {index.tarball_count} tarballs", flush=True)

        report = await sync(options, key, stop=stop, on_batch=batch)
        print(f"mirror at seq {report.seq} after {report.batches} batch(es)")
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
