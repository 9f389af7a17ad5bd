"""The fuzz pass of the HTTP API from its own description (issue 11).

schemathesis generates requests from the OpenAPI documents (``eghact_common.openapi``) and
sends them to a real origin process (private scope ``@acme``, published packages, tokens)
and to a real edge process in front of it. Every answer must pass four checks: no 5xx, a
documented status, a documented content type, and a body that matches the documented JSON
schema. Package names are generated valid (positive mode: npm's pattern) and invalid
(negative mode), and the documents' examples name the packages published here, so reads
also reach their 200s.

Bounds, for CI: at most MAX_EXAMPLES examples per operation in the fuzzing phase
(CHANGES_EXAMPLES for the feed), while the examples and coverage phases add a fixed number of
cases that the documents decide: about 1,350 requests per document in all, 2,731 measured,
66-73 s of pytest time on the shared two-core machine (most of it waiting: SSE quiet periods,
long-polls, the two servers' start). Derandomized, so that every run sends the same requests;
no example database. The SSE feed is read only up to its first bytes and long-polls wait at
most LONGPOLL_MS, so no request can hang the pass. The edge is fuzzed anonymously (the
cache's path; writes get their 401 through it), the origin with an admin token, so that
write paths get past 401 and run.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis

from eghact_common import openapi

from .edge.support import EdgeProcess
from .support import OriginProcess, cli, escaped, manifest, publish_body

MAX_EXAMPLES = 10
CHANGES_EXAMPLES = 60
LONGPOLL_MS = 50
TIMEOUT = 15.0
SSE_QUIET = 0.2

CONFIG = schemathesis.Config.from_dict({
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    # The feed is three operations in one (paged, long-poll, SSE) and the one with the most parameters.
    "operations": [{"include-operation-id": "changes", "generation": {"max-examples": CHANGES_EXAMPLES}}],
})
ORIGIN = schemathesis.openapi.from_dict(openapi.origin_document(), config=CONFIG)
EDGE = schemathesis.openapi.from_dict(openapi.edge_document(), config=CONFIG)
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance]

# What the documents' examples name (components.parameters of origin.yaml): a public package
# with two versions, a private one, and one that the unpublish operations may remove.
PACKAGES = (("fuzz-lib", "1.0.0"), ("fuzz-lib", "1.1.0"), ("@acme/fuzz-lib", "1.0.0"), ("fuzz-gone", "1.0.0"))


@dataclass
class Network:
    origin: OriginProcess
    edge: EdgeProcess
    admin: str


def _publish(base: str, token: str, name: str, version: str) -> None:
    request = urllib.request.Request(
        f"{base}/{escaped(name)}", method="PUT", data=json.dumps(publish_body(manifest(name, version))).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    data = root / "origin"
    admin = cli("token", "create", "--data", str(data), "--name", "admin", "--scope", "admin").stdout.splitlines()[-1]
    origin = OriginProcess(data, ("--private-scope", "@acme")).start()
    edge = None
    try:
        for name, version in PACKAGES:
            _publish(origin.url, admin, name, version)
        # No rate limit: the fuzzer is one client sending ~1,300 requests as fast as it can.
        edge = EdgeProcess(origin.url, root / "edge", args=("--no-warm", "--rate", "0")).start()
        yield Network(origin, edge, admin)
    finally:
        if edge is not None and edge.proc is not None:
            edge.stop()
        origin.stop()


def _send(case: schemathesis.Case, base_url: str, headers: dict[str, str]) -> None:
    query = case.query if isinstance(case.query, dict) else None
    if query and query.get("feed") == "sse":
        _send_sse(case, base_url, headers)
        return
    if query and query.get("feed") == "longpoll" and isinstance(query.get("timeout", 0), int):
        # A long-poll waits 30 s unless told, up to 5 minutes: far too long for nothing to happen.
        query["timeout"] = min(query.get("timeout", LONGPOLL_MS), LONGPOLL_MS)
    case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=TIMEOUT)


def _send_sse(case: schemathesis.Case, base_url: str, headers: dict[str, str]) -> None:
    """An SSE answer never ends on its own: its head and first bytes are checked, then it is
    read until it has been quiet for SSE_QUIET seconds, and must still be open (a server
    error after the 200 can only show as a stream cut short). http.client, because the wait
    for the first bytes and the quiet period need different socket timeouts."""
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=base_url, headers=headers)
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in _REQUEST_FIELDS}).prepare()
    url = urlsplit(prepared.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=TIMEOUT)
    try:
        connection.request(str(prepared.method), prepared.path_url, body=prepared.body, headers=dict(prepared.headers))
        response = connection.getresponse()
        if response.status != 200:
            # An error is a plain answer that ends: checked as any other (asked again).
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=TIMEOUT)
            return
        assert response.getheader("Content-Type", "").startswith("text/event-stream"), response.getheaders()
        received = response.read1(64)
        assert received.startswith(b"retry:"), received
        assert connection.sock is not None
        connection.sock.settimeout(SSE_QUIET)
        try:
            while chunk := response.read1(65536):
                received += chunk
        except TimeoutError:
            return  # quiet and still open: what a healthy stream does
        except http.client.HTTPException as exc:
            raise AssertionError(f"the event stream was cut after {received[-300:]!r}") from exc
        raise AssertionError(f"the event stream ended after {received[-300:]!r}")
    finally:
        connection.close()


_REQUEST_FIELDS = frozenset({"method", "url", "headers", "params", "data", "json", "cookies", "files", "auth"})


@EDGE.parametrize()
def test_edge_answers_as_documented(case: schemathesis.Case, network: Network) -> None:
    _send(case, network.edge.url, {})


@ORIGIN.parametrize()
def test_origin_answers_as_documented(case: schemathesis.Case, network: Network) -> None:
    _send(case, network.origin.url, {"Authorization": f"Bearer {network.admin}"})
