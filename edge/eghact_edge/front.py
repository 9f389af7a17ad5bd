"""The edge's front: an asyncio protocol that answers cache reads itself.

A warm hit must cost almost nothing (issue 4: at least 0.4x nginx's ``proxy_cache``).
aiohttp's server builds a request object, a response object and a header map for every
request, which caps a hit at about a third of nginx; llhttp (``httptools``, the parser of
Node.js) plus pre-encoded answers written straight to the transport removes all of that.

Each connection starts here. A request is framed by its ``\\r\\n\\r\\n``, so the front
always knows where the next one starts:

* GET or HEAD of a cacheable route, with no body: answered here, in order (pipelined
  requests wait their turn, and reading pauses when too many are buffered);
* anything else (writes, bodies, local endpoints, pass-through, upgrades): once its head
  is whole, the connection is handed to aiohttp, from the first byte of that request on,
  and stays there. Writes are rare, and aiohttp is the right tool for bodies and streaming.

Keep-alive follows HTTP/1.1 (``Connection: close``, HTTP/1.0), idle connections close
after ``keepalive`` seconds, a header block over the limit gets 431, a request llhttp
refuses gets 400 and the connection closes. A request head must be whole within
``header_timeout`` seconds of its first byte, or the connection gets 408 and closes: the
idle timer alone restarts at every byte, so a client dribbling a byte every few seconds
held its connection for ever (issue 11: 20 such clients held all 20 connections). On
shutdown, idle connections close at once and busy ones after their answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine
from typing import Any, cast

import httptools
from aiohttp import web

from eghact_common.errors import BadRequest, EghactError

from . import responses
from .errors import HeadersTooLarge, RequestTimeout
from .responses import Outgoing
from .server import EdgeHandler
from .target import check_method, origin_form

log = logging.getLogger("eghact.edge")

_MAX_HEADERS = 64
# Buffered pipelined bytes beyond which reading pauses until the answers catch up.
_PIPELINE_BYTES = 256 * 1024
# Idle keep-alive connections, here and in aiohttp once handed over (whose own default is an
# hour); nginx's default too.
KEEPALIVE = 75.0


def _check_request_line(line: bytes) -> None:
    """405 or 400 for a method or a target that the edge never serves (see :mod:`.target`);
    a line that is not ``METHOD TARGET VERSION`` is left for aiohttp's parser to refuse."""
    parts = line.split(b" ")
    if len(parts) == 3:
        check_method(parts[0].decode("latin-1"))
        origin_form(parts[1].decode("latin-1"))


class Front:
    """The listening socket, its connections, and the aiohttp server they may be handed to."""

    def __init__(self, handler: EdgeHandler, fallback: web.Server, *, max_header_bytes: int = 8190,
                 keepalive: float = KEEPALIVE, header_timeout: float = 15.0):
        self.handler = handler
        self.fallback = fallback
        self.max_header_bytes = max_header_bytes
        self.keepalive = keepalive
        self.header_timeout = header_timeout
        self.connections: set[FrontConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False,
                    sock: socket.socket | None = None) -> str:
        """Listen; the ``http://host:port`` actually bound."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(self._connection, sock=sock, backlog=1024)
        else:
            self._server = await loop.create_server(self._connection, host, port, reuse_address=True,
                                                    reuse_port=reuse_port or None, backlog=1024)
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        return f"http://{shown}:{bound_port}"

    def _connection(self) -> FrontConnection:
        return FrontConnection(self)

    async def close(self, timeout: float) -> None:
        """Stop listening, let answers in progress finish (up to ``timeout``), close the rest."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shut_down()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.abort()
        self.fallback.pre_shutdown()
        await self.fallback.shutdown(max(0.1, deadline - loop.time()))


class FrontConnection(asyncio.Protocol):
    """One client connection while the front answers it (see the module docstring)."""

    def __init__(self, front: Front):
        self._front = front
        self._handler = front.handler
        self._routes = front.handler.routes
        self._max_head = front.max_header_bytes
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._remote = "?"
        self._buffer = bytearray()
        self._parser = httptools.HttpRequestParser(self)
        self._task: asyncio.Task[None] | None = None
        self._write_paused = False
        self._read_paused = False
        self._closing = False
        self._last_active = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = None   # when the head being awaited began to be awaited
        self._head_timer: asyncio.TimerHandle | None = None
        # The request being parsed (filled by llhttp's callbacks).
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._complete = False
        self._keep_alive = True

    # -- llhttp callbacks -------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        known = self._headers.get(key)
        self._headers[key] = text if known is None else f"{known}, {text}"

    def on_headers_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self._complete = True

    # -- asyncio protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self._remote = str(peer[0])
        self._front.connections.add(self)
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.connections.discard(self)
        self._stop_timers()
        if self._task is not None:
            self._task.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._last_active = self._loop.time()
        self._process()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._process()

    # -- the requests ---------------------------------------------------------------------

    def _process(self) -> None:
        """Answer the buffered requests in order, while nothing holds them back."""
        while self._buffer and self._task is None and not self._write_paused and not self._closing:
            buffer = self._buffer
            end = buffer.find(b"\r\n\r\n", 0, self._max_head + 4)
            if end < 0:
                if len(buffer) > self._max_head:
                    self._fail(HeadersTooLarge(f"request headers are limited to {self._max_head} bytes"))
                else:
                    self._await_head()
                return
            self._head_since = None
            # Whatever the method, aiohttp gets a connection only with a whole head, so the
            # head deadline holds for every request that starts a connection; and only with
            # a method and target the edge serves, so that none of them reaches the upstream.
            if not (buffer.startswith(b"GET ") or buffer.startswith(b"HEAD ")):
                try:
                    _check_request_line(bytes(buffer[:buffer.find(b"\r\n")]))
                except EghactError as error:
                    self._fail(error)
                    return
                self._hand_off()
                return
            size = end + 4
            self._url = b""
            self._headers = {}
            self._header_count = 0
            self._complete = False
            try:
                self._parser.feed_data(bytes(buffer[:size]))
            except httptools.HttpParserUpgrade:
                self._hand_off()
                return
            except httptools.HttpParserError as exc:
                self._fail(BadRequest(f"malformed HTTP request: {exc}", code="bad_http_request"))
                return
            if not self._complete:
                self._hand_off()   # a body follows: aiohttp reads bodies
                return
            if self._header_count > _MAX_HEADERS:
                self._fail(HeadersTooLarge(f"at most {_MAX_HEADERS} request headers"))
                return
            head_only = buffer[0] == 0x48   # "HEAD", the other method framed here being "GET"
            try:
                route = self._routes.get(self._url.decode("utf-8", "surrogateescape"))
            except EghactError as error:
                del buffer[:size]
                self._send(responses.from_error(error), head_only=head_only, keep_alive=self._keep_alive)
                continue
            if route.kind is None:
                self._hand_off()
                return
            del buffer[:size]
            keep_alive = self._keep_alive
            answer = self._handler.read(route, self._headers, self._remote)
            if isinstance(answer, Outgoing):
                self._send(answer, head_only=head_only, keep_alive=keep_alive)
            else:
                self._task = self._loop.create_task(self._finish(answer, head_only, keep_alive))
        if len(self._buffer) > _PIPELINE_BYTES and not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()
        elif self._read_paused and len(self._buffer) <= _PIPELINE_BYTES and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()

    async def _finish(self, answer: Coroutine[Any, Any, Outgoing], head_only: bool, keep_alive: bool) -> None:
        try:
            out = await answer
        except asyncio.CancelledError:
            raise
        except Exception:   # read() turns errors into answers; this is a last resort
            log.exception("unhandled error on the edge's read path")
            out = responses.from_error(EghactError("internal error; the incident is logged"))
        self._task = None
        if self._transport is None:
            return
        self._send(out, head_only=head_only, keep_alive=keep_alive)
        self._process()

    def _send(self, out: Outgoing, *, head_only: bool, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        keep_alive = keep_alive and not self._closing
        transport.writelines(responses.encode(out, head_only=head_only, keep_alive=keep_alive))
        self._last_active = self._loop.time()
        if not keep_alive:
            self._closing = True
            transport.close()

    def _fail(self, error: EghactError) -> None:
        """Answer an unframeable request, then close: nothing after it can be trusted."""
        head_only = self._buffer.startswith(b"HEAD ")
        self._buffer.clear()
        self._send(responses.from_error(error), head_only=head_only, keep_alive=False)

    def _hand_off(self) -> None:
        """From here on aiohttp owns the connection, starting with the buffered bytes."""
        transport = self._transport
        if transport is None:
            return
        self._front.connections.discard(self)
        self._stop_timers()
        self._transport = None
        protocol = self._front.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data = bytes(self._buffer)
        self._buffer.clear()
        if data:
            protocol.data_received(data)
        if self._read_paused:
            transport.resume_reading()

    # -- slow heads, idle connections and shutdown -------------------------------------------

    def _await_head(self) -> None:
        """A head has begun and is not whole yet: it has ``header_timeout`` from now."""
        if self._head_since is None:
            self._head_since = self._loop.time()
        if self._head_timer is None:
            self._head_timer = self._loop.call_later(self._front.header_timeout, self._check_head)

    def _check_head(self) -> None:
        """One timer per connection, re-armed lazily like the idle timer."""
        self._head_timer = None
        if self._transport is None or self._head_since is None:
            return
        waited = self._loop.time() - self._head_since
        if waited >= self._front.header_timeout:
            self._fail(RequestTimeout(f"the request head was not complete within {self._front.header_timeout:g} s",
                                      detail={"header_timeout_seconds": self._front.header_timeout}))
            return
        self._head_timer = self._loop.call_later(self._front.header_timeout - waited, self._check_head)

    def _stop_timers(self) -> None:
        for timer in (self._idle_timer, self._head_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._head_timer = None

    def _touch(self) -> None:
        self._last_active = self._loop.time()
        self._idle_timer = self._loop.call_later(self._front.keepalive, self._check_idle)

    def _check_idle(self) -> None:
        """One timer per connection, re-armed lazily: activity only updates a timestamp."""
        if self._transport is None:
            return
        idle_for = self._loop.time() - self._last_active
        if self._task is None and idle_for >= self._front.keepalive:
            self._transport.close()
            return
        self._idle_timer = self._loop.call_later(max(0.1, self._front.keepalive - idle_for), self._check_idle)

    def shut_down(self) -> None:
        self._closing = True
        if self._task is None and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.abort()
