"""``eghact-origin resolve``: ask a registry (origin or edge) to resolve, write the lockfile.

Exit codes: 0 lockfile written; 1 unresolvable (the explanation is printed); 2 bad
arguments or request; 3 ``version=prompt`` returned open choices (printed as JSON);
4 the registry could not be reached or answered something else; 5 the registry speaks a wire
protocol this client does not read (``eghact_common.protocol``).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from eghact_common import protocol
from eghact_common.durable import write_atomic

STRATEGY_KEYS = ("version", "duplicate", "security")


def parse_spec(spec: str) -> tuple[str, str]:
    """``name@range`` with scoped names (``@s/n@^1``); a bare name means any version."""
    at = spec.rfind("@")
    if at <= 0:
        return spec, "*"
    return spec[:at], spec[at + 1:] or "*"


def parse_strategy(text: str) -> dict[str, str]:
    strategy: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in STRATEGY_KEYS:
            raise ValueError(f"--strategy takes {'/'.join(STRATEGY_KEYS)}=VALUE pairs, not {part!r}")
        strategy[key] = value
    return strategy


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = {"dependencies": dict(parse_spec(s) for s in args.specs), "eager": args.eager,
                               "strategy": parse_strategy(args.strategy)}
    if args.policy:
        request["policy"] = json.loads(args.policy.read_text())
    if args.framework:
        request["framework"] = args.framework
    return request


def _write_atomically(path: Path, data: bytes) -> None:
    # No fsync: a lockfile lost to a power cut is written again by running the command again.
    # 0600 as the mkstemp this replaced created it.
    write_atomic(path, data, mode=0o600, fsync=False)


def _protocol_refusal(registry: str) -> str | None:
    """Why the registry's stated protocol (``/-/v1/feed``, which an edge passes on from its
    origin) is one this client cannot read; None when it can, or states none."""
    try:
        with urllib.request.urlopen(registry.rstrip("/") + "/-/v1/feed", timeout=30) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None  # no feed (an npm registry), or unreachable: the resolve request tells which
    return protocol.incompatibility(body.get("protocol")) if isinstance(body, dict) else None


def run_resolve(args: argparse.Namespace) -> int:
    try:
        request = build_request(args)
    except (ValueError, OSError) as error:
        print(f"eghact-origin: {error}", file=sys.stderr)
        return 2
    refusal = _protocol_refusal(args.registry)
    if refusal is not None:
        print(f"eghact-origin: cannot resolve through {args.registry}: {refusal}", file=sys.stderr)
        return 5
    http = urllib.request.Request(args.registry.rstrip("/") + "/-/v1/resolve", data=json.dumps(request).encode(),
                                  method="POST", headers={"Content-Type": "application/json"})
    if args.token:
        http.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(http, timeout=120) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}")
        print(f"eghact-origin: {detail.get('message', error.reason)}", file=sys.stderr)
        # 413: more roots or bytes than the registry takes, a bad request like a 400 (issue 11)
        return 1 if error.code == 422 else 2 if error.code in (400, 413) else 4
    except (urllib.error.URLError, TimeoutError) as error:
        print(f"eghact-origin: cannot reach {args.registry}: {error}", file=sys.stderr)
        return 4
    answer = json.loads(body)
    if answer.get("prompt"):
        print(json.dumps(answer["choices"], indent=2))
        return 3
    _write_atomically(args.output, body)
    print(f"wrote {args.output}: {len(answer['packages'])} packages, {len(answer['loadPlan']['chunks'])} chunks, "
          f"{len(answer['warnings'])} warnings (resolution {answer['hash'][:12]})")
    return 0
