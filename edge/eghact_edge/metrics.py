"""Observability hooks of the edge. Core code calls a :class:`Reporter` whose methods do
nothing; :class:`PrometheusReporter` plugs the Prometheus client in, so no other module
imports a metrics library. Hooks on the hit path take pre-bound label children."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["PROMETHEUS_CONTENT_TYPE", "PrometheusReporter", "Reporter"]

RESULTS = ("HIT-MEM", "HIT-DISK", "MISS", "STALE", "REVALIDATED", "PASS")


class Reporter:
    """Every hook, doing nothing."""

    def served(self, result: str, size: int) -> None: ...

    def tier_miss(self, tier: str) -> None: ...

    def coalesced_wait(self) -> None: ...

    def upstream_fetch(self, kind: str, status: int, seconds: float) -> None: ...

    def upstream_error(self, reason: str) -> None: ...

    def stale_served(self, reason: str) -> None: ...

    def invalidated(self, keys: int, lag_seconds: float | None) -> None: ...

    def feed_state(self, connected: bool, seq: int) -> None: ...

    def feed_gap(self) -> None: ...

    def warmed(self, source: str, count: int = 1) -> None: ...

    def evicted(self, tier: str, count: int = 1) -> None: ...

    def tier_bytes(self, tier: str, size: int, entries: int) -> None: ...

    def rate_limited(self) -> None: ...

    def integrity_failure(self) -> None: ...

    def exposition(self) -> bytes:
        return b""


class PrometheusReporter(Reporter):
    """One private registry per edge, so tests may run many edges in one process."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # The hit path bumps plain ints (a prometheus Counter takes a lock per inc); they are
        # read when scraped.
        self._served_counts = dict.fromkeys(RESULTS, 0)
        self._served_bytes = 0
        r.register(_ServedCollector(self))
        self._tier_miss = Counter("eghact_edge_tier_misses", "Look-ups a tier could not answer", ["tier"],
                                  registry=r)
        self._coalesced = Counter("eghact_edge_coalesced_waits", "Requests that waited on another's fetch",
                                  registry=r)
        self._fetches = Counter("eghact_edge_upstream_fetches", "Requests sent upstream", ["kind", "status"],
                                registry=r)
        self._fetch_seconds = Histogram("eghact_edge_upstream_seconds", "Upstream fetch latency", registry=r,
                                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self._errors = Counter("eghact_edge_upstream_errors", "Upstream failures", ["reason"], registry=r)
        self._stale = Counter("eghact_edge_stale_served", "Stale responses served", ["reason"], registry=r)
        self._invalidations = Counter("eghact_edge_invalidations", "Change events applied", registry=r)
        self._purged = Counter("eghact_edge_purged_entries", "Entries purged by events", registry=r)
        self._lag = Histogram("eghact_edge_invalidation_lag_seconds", "Event time to purged at this edge",
                              registry=r, buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
                                                   0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60))
        self._feed_connected = Gauge("eghact_edge_feed_connected", "1 while the changes feed is followed",
                                     registry=r)
        self._feed_seq = Gauge("eghact_edge_feed_seq", "Last change seq applied", registry=r)
        self._gaps = Counter("eghact_edge_feed_gaps", "Feed gaps (everything marked stale)", registry=r)
        self._warmed = Counter("eghact_edge_warmed", "Entries fetched ahead of demand", ["source"], registry=r)
        evicted = Counter("eghact_edge_evictions", "Entries evicted for space", ["tier"], registry=r)
        self._evicted = {"memory": evicted.labels("memory"), "disk": evicted.labels("disk")}
        self._tier_bytes = Gauge("eghact_edge_tier_bytes", "Bytes held per tier", ["tier"], registry=r)
        self._tier_entries = Gauge("eghact_edge_tier_entries", "Entries held per tier", ["tier"], registry=r)
        self._limited = Counter("eghact_edge_rate_limited", "Requests refused by the rate limit", registry=r)
        self._integrity = Counter("eghact_edge_integrity_failures", "Upstream bodies refused for a bad digest",
                                  registry=r)

    def served(self, result: str, size: int) -> None:
        self._served_counts[result] += 1
        self._served_bytes += size

    def tier_miss(self, tier: str) -> None:
        self._tier_miss.labels(tier).inc()

    def coalesced_wait(self) -> None:
        self._coalesced.inc()

    def upstream_fetch(self, kind: str, status: int, seconds: float) -> None:
        self._fetches.labels(kind, str(status)).inc()
        self._fetch_seconds.observe(seconds)

    def upstream_error(self, reason: str) -> None:
        self._errors.labels(reason).inc()

    def stale_served(self, reason: str) -> None:
        self._stale.labels(reason).inc()

    def invalidated(self, keys: int, lag_seconds: float | None) -> None:
        self._invalidations.inc()
        self._purged.inc(keys)
        if lag_seconds is not None:
            self._lag.observe(max(0.0, lag_seconds))

    def feed_state(self, connected: bool, seq: int) -> None:
        self._feed_connected.set(1 if connected else 0)
        self._feed_seq.set(seq)

    def feed_gap(self) -> None:
        self._gaps.inc()

    def warmed(self, source: str, count: int = 1) -> None:
        self._warmed.labels(source).inc(count)

    def evicted(self, tier: str, count: int = 1) -> None:
        self._evicted[tier].inc(count)

    def tier_bytes(self, tier: str, size: int, entries: int) -> None:
        self._tier_bytes.labels(tier).set(size)
        self._tier_entries.labels(tier).set(entries)

    def rate_limited(self) -> None:
        self._limited.inc()

    def integrity_failure(self) -> None:
        self._integrity.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ServedCollector(Collector):
    def __init__(self, reporter: PrometheusReporter):
        self._reporter = reporter

    def collect(self):
        family = CounterMetricFamily("eghact_edge_responses", "Cacheable responses by cache result",
                                     labels=["result"])
        for result, count in self._reporter._served_counts.items():
            family.add_metric([result], count)
        yield family
        yield CounterMetricFamily("eghact_edge_response_bytes", "Body bytes served from cacheable routes",
                                  value=self._reporter._served_bytes)
