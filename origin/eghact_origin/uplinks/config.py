"""Uplink configuration: which upstream registries the origin pulls public packages from, and
which names may go to which.

    --uplink URL                 the uplink named ``default``
    --uplink NAME=URL            a named uplink (repeatable; the first one is the default route)
    --route PATTERN=NAME|local   names matching PATTERN (fnmatch) go to uplink NAME, or never
                                 leave (``local``); first match wins; no match: the first uplink
    --uplink-max-age 5m          a stored packument is revalidated after this long
    --uplink-timeout 10s         connect and read timeout of one upstream request

This module is pure (values and parsing); :meth:`UplinkConfig.route` is where a name's
uplink is chosen, and the service's one gate (``service.UplinkService._gate``) adds the
store's answer (a name published here is local forever) and private scopes before any
upstream request is made.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from eghact_common.durations import parse_duration

LOCAL = "local"
DEFAULT = "default"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Uplink:
    name: str
    url: str  # without a trailing slash


@dataclass(frozen=True)
class Route:
    pattern: str
    target: str  # an uplink's name, or LOCAL

    def matches(self, package: str) -> bool:
        return fnmatch.fnmatchcase(package, self.pattern)


@dataclass(frozen=True)
class UplinkConfig:
    uplinks: tuple[Uplink, ...]
    routes: tuple[Route, ...] = ()
    max_age: float = 300.0
    timeout: float = 10.0
    # How long an upstream 404 is believed, and how many such answers are kept in memory.
    negative_ttl: float = 60.0
    negative_max: int = 10_000
    # Attempts per upstream request (the first included), and the backoff before the second.
    attempts: int = 3
    backoff: float = 0.2
    # After ``fail_limit`` failed requests in a row an uplink is down for ``cool_off`` seconds:
    # requests then serve what is stored, or fail at once, instead of all waiting on it.
    fail_limit: int = 2
    cool_off: float = 30.0
    # A refresh slower than this serves the stored copy (stale-if-error covers slowness too);
    # the refresh goes on in the background and its result is stored when it comes.
    refresh_deadline: float = 3.0
    # The background refresher (refresher.py): a cycle every ``refresh_interval`` seconds (None:
    # a quarter of max_age, between 0.5 and 30 s), at most ``refresh_batch`` packages of each
    # uplink per cycle, ``refresh_concurrency`` upstream requests at once (all of them 304s in
    # the usual case: see the refresher's docstring for what that keeps fresh).
    refresh_interval: float | None = None
    refresh_batch: int = 256
    refresh_concurrency: int = 4
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def refresh_every(self) -> float:
        """Seconds between two cycles of the background refresher."""
        if self.refresh_interval is not None:
            return self.refresh_interval
        return min(30.0, max(0.5, self.max_age / 4))

    def uplink(self, name: str) -> Uplink:
        return next(u for u in self.uplinks if u.name == name)

    def route(self, package: str) -> Uplink | None:
        """The uplink ``package`` may be pulled from by routing alone (None: ``local``). The
        caller still asks the store and the private scopes: see the service's gate."""
        for route in self.routes:
            if route.matches(package):
                return None if route.target == LOCAL else self.uplink(route.target)
        return self.uplinks[0]


def parse_uplinks(uplinks: Sequence[str], routes: Sequence[str] = (), *, max_age: str = "5m",
                  timeout: str = "10s", negative_ttl: str = "60s") -> UplinkConfig | None:
    """The command line's ``--uplink``/``--route``/durations as a config; None without uplinks
    (then no route may be given). Raises ValueError naming what is wrong."""
    if not uplinks:
        if routes:
            raise ValueError("--route needs at least one --uplink")
        return None
    parsed: list[Uplink] = []
    for spec in uplinks:
        name, sep, url = spec.partition("=")
        if not sep or "://" in name:
            name, url = DEFAULT, spec
        if not _NAME.fullmatch(name) or name == LOCAL:
            raise ValueError(f"--uplink {spec!r}: a name is lowercase letters, digits, - and _, and not {LOCAL!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"--uplink {spec!r}: the URL must be http(s)://host[:port][/path]")
        if any(u.name == name for u in parsed):
            raise ValueError(f"--uplink {name!r} is given twice")
        parsed.append(Uplink(name, url.rstrip("/")))
    known = {u.name for u in parsed} | {LOCAL}
    parsed_routes = []
    for spec in routes:
        pattern, sep, target = spec.rpartition("=")
        if not sep or not pattern or target not in known:
            raise ValueError(f"--route {spec!r}: PATTERN=NAME with NAME one of {sorted(known)}")
        parsed_routes.append(Route(pattern, target))
    durations = {}
    for option, text in (("--uplink-max-age", max_age), ("--uplink-timeout", timeout),
                         ("--uplink-negative-ttl", negative_ttl)):
        try:
            durations[option] = parse_duration(text)
        except ValueError as exc:
            raise ValueError(f"{option}: {exc}") from exc
    if durations["--uplink-timeout"] <= 0:
        raise ValueError("--uplink-timeout must be more than 0")
    return UplinkConfig(tuple(parsed), tuple(parsed_routes), max_age=durations["--uplink-max-age"],
                        timeout=durations["--uplink-timeout"], negative_ttl=durations["--uplink-negative-ttl"])
