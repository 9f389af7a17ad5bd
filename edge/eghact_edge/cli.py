"""``eghact-edge``: run an edge cache node, or a whole local network.

    eghact-edge serve --upstream URL --data DIR --region NAME [--host 127.0.0.1] [--port N]
                      [--public-url URL] [--parent URL] [--memory-bytes N] [--disk-bytes N]
                      [--token T | EGHACT_EDGE_TOKEN] [--workers N] [...]
    eghact-edge network [--data DIR] [--port N] [--plugins N]    (what `./dev up` runs)

Errors print one line to stderr and exit 2 (usage) or 1 (refused).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from eghact_common.serving import run

from .settings import EdgeSettings


def _size(text: str) -> int:
    """``256M``, ``4G``, ``1048576``."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eghact-edge", description="Eghact edge cache node")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve as an edge cache in front of an upstream")
    serve.add_argument("--upstream", required=True, help="the origin (or any npm-compatible registry)")
    serve.add_argument("--data", type=Path, required=True, help="data dir: disk tier, feed.seq, popularity")
    serve.add_argument("--region", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--public-url", help="base URL clients use to reach this edge (tarball URLs point here)")
    serve.add_argument("--parent", help="another edge to fetch misses from (a shield)")
    serve.add_argument("--memory-bytes", type=_size, default=256 << 20)
    serve.add_argument("--disk-bytes", type=_size, default=4 << 30)
    serve.add_argument("--admission", choices=("tinylfu", "lru"), default="tinylfu")
    serve.add_argument("--upstream-timeout", type=float, default=10.0)
    serve.add_argument("--stream-budget", type=int, default=32,
                       help="long-polls and SSE streams passed through at once (child edges' feeds count)")
    serve.add_argument("--stream-per-client", type=int, default=4, help="... of them per client address")
    serve.add_argument("--max-longpoll", type=float, default=30.0,
                       help="cap, in seconds, on the timeout= of a long-poll passed through")
    serve.add_argument("--max-ttl", type=float, help="cap header freshness lifetimes at this many seconds")
    serve.add_argument("--default-ttl", type=float, default=300.0,
                       help="lifetime of responses that state none (at most; 10%% of their Last-Modified age "
                            "when shorter); 0: do not cache them")
    serve.add_argument("--feed-lifetime", type=float, default=86_400.0,
                       help="freshness of event-covered entries while the feed is followed")
    serve.add_argument("--rate", type=float, default=500.0, help="per-client requests per second (0: no limit)")
    serve.add_argument("--burst", type=float, default=1000.0)
    serve.add_argument("--max-request-bytes", type=_size, default=70 << 20)
    serve.add_argument("--header-timeout", type=float, default=15.0,
                       help="seconds a client has to send a whole request head (then 408 and close)")
    serve.add_argument("--warm-top", type=int, default=500, help="popular keys warmed at start")
    serve.add_argument("--no-warm", action="store_true", help="do not warm the origin's popular list at start")
    serve.add_argument("--warm-concurrency", type=int, default=16,
                       help="warming workers (4 keep going under client load, the rest step aside)")
    serve.add_argument("--stats-interval", type=float, default=10.0)
    serve.add_argument("--token", default=os.environ.get("EGHACT_EDGE_TOKEN"),
                       help="token with scope edge (registration and stats); default $EGHACT_EDGE_TOKEN")
    serve.add_argument("--id", dest="edge_id")
    serve.add_argument("--workers", type=int, default=1, help="processes sharing the port and the disk tier")
    serve.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    serve.add_argument("--verbose", action="store_true")

    network = sub.add_parser("network", help="origin + two edges in two regions, with a demo universe")
    network.add_argument("--data", type=Path, default=Path("data/demo"))
    network.add_argument("--port", type=int, default=4873, help="origin port; edges take the next two")
    network.add_argument("--plugins", type=int, default=300)
    return parser


def settings_from(args: argparse.Namespace) -> EdgeSettings:
    for flag in ("upstream", "parent", "public_url"):
        value = getattr(args, flag)
        if value and not value.startswith(("http://", "https://")):
            raise SystemExit(f"eghact-edge: --{flag.replace('_', '-')} takes an http(s) URL, not {value!r}")
    if args.stream_budget < 1 or args.stream_per_client < 1 or not args.max_longpoll > 0:
        raise SystemExit("eghact-edge: --stream-budget and --stream-per-client take at least 1, "
                         "--max-longpoll a positive number of seconds")
    if args.default_ttl < 0:
        raise SystemExit(f"eghact-edge: --default-ttl takes seconds >= 0, not {args.default_ttl}")
    return EdgeSettings(
        upstream=args.upstream, data_dir=args.data, region=args.region, host=args.host, port=args.port,
        public_url=args.public_url, parent=args.parent, memory_bytes=args.memory_bytes, disk_bytes=args.disk_bytes,
        admission=args.admission, upstream_timeout=args.upstream_timeout, max_ttl=args.max_ttl,
        stream_budget=args.stream_budget, stream_per_client=args.stream_per_client, max_longpoll=args.max_longpoll,
        default_ttl=args.default_ttl,
        feed_lifetime=args.feed_lifetime, rate=args.rate, burst=args.burst, max_request_bytes=args.max_request_bytes,
        header_timeout=args.header_timeout,
        warm_top=args.warm_top, warm_concurrency=args.warm_concurrency, warm=not args.no_warm,
        stats_interval=args.stats_interval, token=args.token,
        edge_id=args.edge_id, workers=args.workers, worker_index=args.worker_index, quiet=not args.verbose,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "network":
        from .network import run_network

        return run_network(args.data, port=args.port, plugins=args.plugins)
    settings = settings_from(args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s",
                        stream=sys.stderr)
    if settings.workers > 1 and settings.worker_index == 0:
        from .workers import serve_workers

        return serve_workers(settings, sys.argv[1:] if argv is None else argv)
    from .front_serving import serve

    run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
