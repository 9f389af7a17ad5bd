"""Observability hooks. Core code calls a :class:`Reporter` (no-op by default); the
Prometheus implementation plugs in there, so nothing else imports a metrics library."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["PROMETHEUS_CONTENT_TYPE", "PrometheusReporter", "Reporter"]


class Reporter:
    """Every hook, doing nothing."""

    def request(self, route: str, method: str, status: int, seconds: float, size: int) -> None: ...

    def published(self, size: int) -> None: ...

    def rendered_cache(self, hit: bool) -> None: ...

    def feed_clients(self, delta: int) -> None: ...

    def feed_page(self, events: int) -> None:
        """An SSE stream read one page of ``events`` from the changes table."""

    def set_seq(self, seq: int) -> None: ...

    def change_delivered(self, subscriber: str, events: int) -> None:
        """The change dispatcher (feed.py) handed ``events`` committed events to ``subscriber``."""

    def resolve_pulled(self, walked: int, retried: int, seconds: float) -> None:
        """A build made names present through ``fetch_missing``: ``walked`` before it ran,
        ``retried`` after a build found them missing, in ``seconds`` (walk, fetches, builds)."""

    def uplink_fetch(self, uplink: str, what: str, status: int) -> None:
        """One request to ``uplink`` for a ``packument`` or a ``tarball`` got HTTP ``status``."""

    def uplink_hit(self, uplink: str) -> None:
        """A pulled package was served from the store with no upstream request."""

    def uplink_refresh(self, uplink: str, result: str) -> None:
        """A stored packument was revalidated: ``200`` (a new document) or ``304``."""

    def uplink_error(self, uplink: str, kind: str) -> None:
        """A failed upstream attempt: timeout, connect, status, too_large, integrity, down, bad_document."""

    def uplink_bytes(self, uplink: str, size: int) -> None: ...

    def uplink_stale(self, uplink: str) -> None:
        """A stored copy was served because its uplink failed or was too slow (stale-if-error)."""

    def uplink_refresher(self, refreshed: int, revealed: int, failed: int, behind: float) -> None:
        """One cycle of the background refresher: packages ``refreshed`` (revalidated upstream),
        ``revealed`` (the pull policy applied again when a cooled-down version's time came, no
        upstream request), ``failed``; ``behind``: how many seconds past its max age the oldest
        due package was when the cycle began (0 when none was due)."""

    def exposition(self) -> bytes:
        return b""


class PrometheusReporter(Reporter):
    """One private registry per app: tests can run many origins in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter("eghact_origin_requests", "HTTP requests", ["route", "method", "status"],
                                 registry=self.registry)
        self._latency = Histogram("eghact_origin_request_seconds", "Request latency", ["route"],
                                  registry=self.registry,
                                  buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self._bytes = Counter("eghact_origin_response_bytes", "Response bytes sent (status line, headers, body)",
                              ["route"], registry=self.registry)
        self._published = Counter("eghact_origin_publishes", "Versions published", registry=self.registry)
        self._published_bytes = Counter("eghact_origin_published_bytes", "Tarball bytes published",
                                        registry=self.registry)
        self._cache = Counter("eghact_origin_rendered_cache", "Rendered-bytes cache lookups", ["result"],
                              registry=self.registry)
        self._feed_clients = Gauge("eghact_origin_feed_clients", "Open long-poll and SSE feed clients",
                                   registry=self.registry)
        self._feed_pages = Histogram("eghact_origin_feed_page_events", "Events per page an SSE stream read",
                                     registry=self.registry, buckets=(1, 10, 50, 100, 250, 500, 1000, 5000))
        # Events delivered per subscriber: equal to the events committed since start when each
        # is delivered once (a publish used to reach resolutions twice: locally, then by the poll).
        self._delivered = Counter("eghact_origin_change_deliveries", "Change events delivered, by subscriber",
                                  ["subscriber"], registry=self.registry)
        self._seq = Gauge("eghact_origin_change_seq", "Last change seq seen", registry=self.registry)
        self._pulled = Counter("eghact_origin_resolve_pulled_names",
                               "Names resolutions made present through uplinks, by phase (walk, retry)",
                               ["phase"], registry=self.registry)
        self._pull_seconds = Histogram("eghact_origin_resolve_pull_seconds",
                                       "Time a resolution spent making its dependencies present",
                                       registry=self.registry,
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self._uplink_fetches = Counter("eghact_origin_uplink_fetches", "Requests made to uplinks",
                                       ["uplink", "what", "status"], registry=self.registry)
        self._uplink_hits = Counter("eghact_origin_uplink_hits", "Pulled packages served with no upstream request",
                                    ["uplink"], registry=self.registry)
        self._uplink_refreshes = Counter("eghact_origin_uplink_refreshes", "Revalidations of pulled packuments",
                                         ["uplink", "result"], registry=self.registry)
        self._uplink_errors = Counter("eghact_origin_uplink_errors", "Failed upstream attempts, by kind",
                                      ["uplink", "kind"], registry=self.registry)
        self._uplink_bytes = Counter("eghact_origin_uplink_bytes", "Bytes read from uplinks", ["uplink"],
                                     registry=self.registry)
        self._uplink_stale = Counter("eghact_origin_uplink_stale_serves",
                                     "Stored copies served because the uplink failed or was slow", ["uplink"],
                                     registry=self.registry)
        self._refresher_cycles = Counter("eghact_origin_uplink_refresher_cycles",
                                         "Cycles of the uplinks' background refresher", registry=self.registry)
        self._refresher_packages = Counter("eghact_origin_uplink_refresher_packages",
                                           "Pulled packages the background refresher handled, by result "
                                           "(refreshed, revealed, failed)", ["result"], registry=self.registry)
        self._refresher_behind = Gauge("eghact_origin_uplink_refresher_behind_seconds",
                                       "How far past its max age the oldest due pulled package was at the last "
                                       "refresher cycle (0: none was due)", registry=self.registry)

    def request(self, route: str, method: str, status: int, seconds: float, size: int) -> None:
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route).observe(seconds)
        self._bytes.labels(route).inc(size)

    def published(self, size: int) -> None:
        self._published.inc()
        self._published_bytes.inc(size)

    def rendered_cache(self, hit: bool) -> None:
        self._cache.labels("hit" if hit else "miss").inc()

    def feed_clients(self, delta: int) -> None:
        self._feed_clients.inc(delta)

    def feed_page(self, events: int) -> None:
        self._feed_pages.observe(events)

    def set_seq(self, seq: int) -> None:
        self._seq.set(seq)

    def change_delivered(self, subscriber: str, events: int) -> None:
        self._delivered.labels(subscriber).inc(events)

    def resolve_pulled(self, walked: int, retried: int, seconds: float) -> None:
        self._pulled.labels("walk").inc(walked)
        self._pulled.labels("retry").inc(retried)
        self._pull_seconds.observe(seconds)

    def uplink_fetch(self, uplink: str, what: str, status: int) -> None:
        self._uplink_fetches.labels(uplink, what, str(status)).inc()

    def uplink_hit(self, uplink: str) -> None:
        self._uplink_hits.labels(uplink).inc()

    def uplink_refresh(self, uplink: str, result: str) -> None:
        self._uplink_refreshes.labels(uplink, result).inc()

    def uplink_error(self, uplink: str, kind: str) -> None:
        self._uplink_errors.labels(uplink, kind).inc()

    def uplink_bytes(self, uplink: str, size: int) -> None:
        self._uplink_bytes.labels(uplink).inc(size)

    def uplink_stale(self, uplink: str) -> None:
        self._uplink_stale.labels(uplink).inc()

    def uplink_refresher(self, refreshed: int, revealed: int, failed: int, behind: float) -> None:
        self._refresher_cycles.inc()
        for result, count in (("refreshed", refreshed), ("revealed", revealed), ("failed", failed)):
            if count:
                self._refresher_packages.labels(result).inc(count)
        self._refresher_behind.set(behind)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
