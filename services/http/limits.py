"""Limits on what a client can make the HTTP server hold: body bytes, connections, time.

- `BodyLimit` (ASGI middleware) refuses a request body larger than its limit with a 413,
  counting bytes as they stream in, before anything parses them: at once when the
  `Content-Length` says so, else as soon as the chunks received pass the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
                    raise HTTPException(413, body_too_large_message(self.max_bytes))
            return message

        await self.app(scope, counted_receive, send)
