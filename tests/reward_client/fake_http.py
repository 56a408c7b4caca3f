"""A scripted HTTP server on a loopback port, for the client's tests: each request is
handed to a plain function, whose answer is sent back (or the connection dropped, or the
answer held back), so the client is tested over a real socket with its real transport.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """An answer: `status` with `body` as JSON (or `text` as it is)."""

    status: int = 200
    body: Any = None
    text: str | None = None


class Drop(Exception):  # noqa: N818 - what the server does
    """Raised by a handler: the connection is closed without an answer."""


@dataclass(frozen=True)
class Stall:
    """Returned by a handler: no answer for `seconds` (then an empty 200)."""

    seconds: float


Handler = Callable[[Seen], Reply | Stall]


@contextmanager
def fake_server(handler: Handler) -> Iterator[str]:
    """Serve `handler` on a free loopback port until the block ends; yields the base URL."""
    loop = asyncio.new_event_loop()

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        seen = Seen(request.method, request.path, headers, await request.read())
        try:
            reply = handler(seen)
        except Drop:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError from None
        if isinstance(reply, Stall):
            await asyncio.sleep(reply.seconds)
            return web.json_response({})
        if reply.text is not None:
            return web.Response(status=reply.status, text=reply.text)
        return web.json_response(reply.body, status=reply.status)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", answer)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    address: list[str] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        address.append(f"http://{host}:{port}")

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield address[0]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
