"""Request targets (RFC 9112 §3.2): the edge takes origin-form only.

The edge is a cache in front of one upstream, not a proxy. Upstream URLs are the
upstream's base URL followed by the request's path, so a target that is not a plain
absolute path could name another host: ``CONNECT @127.0.0.1:PORT`` appended to
``http://origin:4873`` made ``http://origin:4873@127.0.0.1:PORT`` (issue 11: the edge
relayed requests to other hosts with the client's headers, and its 503s for closed ports
made it a port scanner). So every target is checked here before it is routed or sent up:

* origin-form only: ``/`` then a path, optionally ``?query``. Absolute-form
  (``http://host/x``, with or without userinfo), authority-form (``CONNECT host:port``)
  and asterisk-form (``OPTIONS *``) are refused, as is ``//host/x`` (a network-path
  reference to any URL joiner);
* no dot segments, spelled or percent-encoded (``/..``, ``/%2e%2E``): no registry path
  has one, and a normaliser upstream would make the path mean something else than what
  the edge routed and cached;
* only printable ASCII, no backslash (some parsers read it as ``/``), no fragment, and
  well-formed percent escapes.

Anything else is 400 ``bad_request_target``. CONNECT and TRACE are refused whatever their
target (405): the edge tunnels nothing and reflects nothing.
"""

from __future__ import annotations

import re

from eghact_common.errors import BadRequest, MethodNotAllowed

# What may be passed up: everything else (CONNECT, TRACE, made-up methods) is answered here.
PASSED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

# The path: printable ASCII but "#", backslash and "?" (which starts the query), "%" only
# as an escape; the query: printable ASCII but "#" and backslash.
_SHAPE = re.compile(r'/(?!/)(?:[!-"$&->@-\[\]-~]|%[0-9A-Fa-f]{2})*(?:\?[!-"$-\[\]-~]*)?')
_DOT_SEGMENT = re.compile(r"/(?:\.|%2[eE]){1,2}(?=/|\?|$)")


def origin_form(raw: str) -> str:
    """``raw`` itself when it is an origin-form target the edge may route and send to its
    upstream (see the module docstring); 400 ``bad_request_target`` otherwise."""
    path = raw.split("?", 1)[0]
    if not _SHAPE.fullmatch(raw) or _DOT_SEGMENT.search(path):
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        raise BadRequest("the request target must be an absolute path (origin-form, RFC 9112 §3.2.1) "
                         "without dot segments; this is a cache, not a proxy",
                         code="bad_request_target", detail={"target": shown})
    return raw


def check_method(method: str) -> None:
    """405 for a method the edge never passes up."""
    if method not in PASSED_METHODS:
        raise MethodNotAllowed(f"{method[:20]} is not served here: this is a cache, not a proxy",
                               detail={"allowed": sorted(PASSED_METHODS)})
