"""The edge's own refinements of the error tree of ``eghact_common.errors``: what an edge
can say that an origin never does (the upstream sent something we refuse to pass on, or
too many clients are already waiting on one fetch, or hold long-lived requests)."""

from __future__ import annotations

from typing import Any

from eghact_common.errors import EghactError, RateLimited, UpstreamUnavailable


class HeadersTooLarge(EghactError):
    """431 (RFC 6585): the request's header block, or its number of fields, is over the limit."""

    code = "headers_too_large"
    status = 431


class RequestTimeout(EghactError):
    """408 (RFC 9110 §15.5.9): the request head did not arrive whole in time."""

    code = "request_timeout"
    status = 408


class BadUpstreamContent(EghactError):
    """502: the upstream answered, but with a body we must not cache or serve (a tarball
    whose digest does not match its integrity)."""

    code = "upstream_integrity_mismatch"
    status = 502


class TooManyWaiters(UpstreamUnavailable):
    """503: the waiter cap of one coalesced fetch is reached; retry shortly."""

    code = "coalescing_overloaded"


class TooManyStreams(RateLimited):
    """429: this client already holds its share of long-lived pass-through requests
    (long-polls, SSE streams); one must end before another starts."""

    code = "too_many_streams"


class StreamsExhausted(UpstreamUnavailable):
    """503: the edge's budget of long-lived pass-through requests is in use; retry later.
    Cache reads, writes and the edge's own feed are not affected (their connections are
    in other pools)."""

    code = "streams_exhausted"

    def __init__(self, message: str, *, retry_after: float, detail: dict[str, Any] | None = None):
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class StreamsClosed(StreamsExhausted):
    """503: the edge is stopping; a long-poll it had not answered yet is ended, to be asked
    again (of another edge, or of this one once it is back)."""

    code = "edge_stopping"
