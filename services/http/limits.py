"""Limits on what a client can make the HTTP server hold: body bytes, connections, time.

- `BodyLimit` (ASGI middleware) refuses a request body larger than its limit with a 413,
  counting bytes as they stream in, before anything parses them: at once when the
  `Content-Length` says so, else as soon as the chunks received pass the limit.
- `guarded_protocol(settings)` is uvicorn's httptools protocol (a C parser: uvicorn's
  pure-Python h11 one used about twice its CPU a request here) with the deadlines uvicorn
  lacks (it only times out a keep-alive connection after a response, and any byte cancels
  that): a connection must deliver its request line and headers within
  `header_timeout_s` of opening or of its previous response, and then its body within
  `body_timeout_s`; else it is closed. A request's line and headers may hold
  `MAX_HEAD_BYTES` (more is a 431). A connection beyond `max_connections` is answered 503
  and closed at once, so silent or dripping clients cannot exhaust the open files.
- `log_resource_exhaustion(loop)` reports "out of file descriptors" (EMFILE and kin on
  accept) once per interval with a count, instead of once per attempt; and
  `fit_open_file_limit(settings)` keeps `max_connections` under the open-file limit, so
  client connections alone never reach it.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import resource
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reward_server.settings import Settings

log = logging.getLogger(__name__)

# How often a repeated resource condition is logged.
REPORT_INTERVAL_S = 10.0
_EXHAUSTION_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _closing_response(status: bytes, message: str) -> bytes:
    """A whole HTTP response, in the one error shape, that ends its connection: for a
    protocol to write itself, before (or instead of) any request reaching the app."""
    body = json.dumps({"message": message}).encode()
    return (b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (status, len(body), body))


_SERVICE_UNAVAILABLE = _closing_response(b"503 Service Unavailable",
                                         "too many open connections: retry shortly")
# A request's line and headers may hold this many bytes (h11, uvicorn's other protocol,
# allows 16 KiB); more is answered 431 and the connection closed.
MAX_HEAD_BYTES = 64 * 1024
_HEAD_TOO_LARGE = _closing_response(
    b"431 Request Header Fields Too Large",
    f"the request line and headers are over {MAX_HEAD_BYTES} bytes")


def body_too_large_message(limit: int) -> str:
    return f"the request body is over {limit} bytes (REWARD_MAX_BODY_BYTES): split the batch"


class BodyLimit:
    """Refuse request bodies over `max_bytes` (see the module docstring).

    A body found too large while the app reads it raises an `HTTPException(413)` from
    `receive`: the app's handler for HTTP errors answers it, in the one error shape.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(
                {"message": body_too_large_message(self.max_bytes)},
                status_code=413,
                headers={"connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # the rest of the body is not read: the connection ends
                    raise HTTPException(413, body_too_large_message(self.max_bytes),
                                        headers={"connection": "close"})
            return message

        await self.app(scope, counted_receive, send)


class OncePerInterval:
    """Lets a repeated condition through once per `interval_s`, counting the others."""

    def __init__(self, interval_s: float = REPORT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last = -float("inf")
        self.suppressed = 0

    def due(self) -> int | None:
        """The count suppressed since the last report when a report is due now, else None."""
        now = time.monotonic()
        if now - self._last < self.interval_s:
            self.suppressed += 1
            return None
        self._last, count, self.suppressed = now, self.suppressed, 0
        return count


def guarded_protocol(settings: Settings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the limits of `settings` (see the module
    docstring)."""
    refusals = OncePerInterval()

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _refused = False
        _in_request = False  # a request's first byte is in, its last is not
        _headers_in = False  # ... and its headers are
        _received = 0  # requests whose last byte is in
        _answered = 0  # responses sent
        _head_bytes = 0  # bytes received while waiting for a request's line and headers

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= settings.max_connections:
                self._refused = True
                transport.write(_SERVICE_UNAVAILABLE)
                transport.close()
                if (count := refusals.due()) is not None:
                    log.warning("connection limit (%d, REWARD_MAX_CONNECTIONS) reached: "
                                "refusing connections (%d more in the last %.0f s)",
                                settings.max_connections, count, refusals.interval_s)
                return
            super().connection_made(transport)
            self._arm(settings.header_timeout_s)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._headers_in:
                # Counted before parsing: httptools has no bound of its own, and joins a
                # long line or header piece by piece (its cost grows with the square of
                # the length). A read that also ends a body is counted whole: the bound
                # is at most one read (256 KiB) loose.
                self._head_bytes += len(data)
            super().data_received(data)
            if (not self._headers_in and self._head_bytes > MAX_HEAD_BYTES
                    and not self.transport.is_closing()):
                self.transport.write(_HEAD_TOO_LARGE)
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_request = True  # the headers' deadline (armed while idle) still runs

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._headers_in = True
            self._head_bytes = 0
            if self.pipeline:
                # queued behind a request being served, reading paused: the body is read
                # when the request starts (`on_response_complete` arms its deadline)
                self._disarm()
            else:
                self._arm(settings.body_timeout_s)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_request = self._headers_in = False
            self._received += 1
            if self._received <= self._answered:
                # answered before its body was in (a 404, a refusal): idle from now
                self._arm(settings.header_timeout_s)
            else:
                self._disarm()  # the request is in: the server's own work has no deadline

        def on_response_complete(self) -> None:
            super().on_response_complete()  # starts the next pipelined request, if any
            self._answered += 1
            if self.transport.is_closing():
                return
            if self._in_request and not self._headers_in:
                self._arm(settings.header_timeout_s)  # a pipelined request's headers drip
            elif self._in_request and not self.pipeline:
                self._arm(settings.body_timeout_s)  # it has started: its body must come
            elif not self._in_request and self._received == self._answered:
                self._arm(settings.header_timeout_s)  # idle: the next request's headers
            # else a pipelined request is in, or still queued: no deadline while served

        def _arm(self, delay_s: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(delay_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                what = "body" if self._headers_in else "request headers"
                log.debug("closing a connection whose %s did not arrive in time", what)
                self.transport.close()

    return GuardedHttpToolsProtocol


def log_resource_exhaustion(loop: asyncio.AbstractEventLoop) -> None:
    """Report out-of-descriptor (and kin) errors of `loop` once per interval.

    asyncio reports each failed accept through the loop's exception handler (with a
    traceback); under a flood that repeats for as long as the condition lasts. Other
    reports go to the handler that was there before.
    """
    previous = loop.get_exception_handler()
    limiter = OncePerInterval()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _EXHAUSTION_ERRNOS:
            if (count := limiter.due()) is not None:
                log.error("out of system resources (%s: %s); new connections wait "
                          "(%d more reports in the last %.0f s)", errno.errorcode.get(
                              exc.errno or 0, exc.errno), context.get("message", ""),
                          count, limiter.interval_s)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


# Descriptors kept for everything but client connections: the worker pool's pipes,
# Chromium's, gRPC, log files, the listening sockets.
_RESERVED_FILES = 256


def fit_open_file_limit(settings: Settings) -> Settings:
    """Raise the soft open-file limit to the hard one, and keep `max_connections` under it
    (a connection is a descriptor: past the limit, accept fails for everyone)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    room = max(1, soft - _RESERVED_FILES)
    if settings.max_connections <= room:
        return settings
    log.warning("REWARD_MAX_CONNECTIONS=%d does not fit the open-file limit %d: using %d",
                settings.max_connections, soft, room)
    return settings.model_copy(update={"max_connections": room})
