"""Reading a JSON request body so that every malformed body is a 422, never a 400.

FastAPI parses a body with `json.loads` and answers anything but `JSONDecodeError` with a
bare `400 "There was an error parsing the body"`. `JSONBodyRoute` (the route class of the
app and of its routers) gives its handlers a `JSONBodyRequest`, whose every parse failure
is a `JSONDecodeError` (FastAPI's 422 for invalid JSON), and refuses a request with more
items than a request may hold before FastAPI checks each one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from reward_server.validation import check_count


def loads_json(body: bytes) -> Any:
    """`json.loads`, whose every failure is a `json.JSONDecodeError`.

    `json.loads` also raises RecursionError (deep nesting), UnicodeDecodeError (a body
    that is not UTF-8) and ValueError (an integer of thousands of digits); FastAPI turns
    those into a bare 400, a `JSONDecodeError` into its 422 for invalid JSON.
    """
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise json.JSONDecodeError(reason, "", 0) from None


def parse_json_body(body: bytes) -> Any:
    """The JSON value of a request body; every failure is a `RequestValidationError` of
    type `json_invalid` (a 422) in the shape FastAPI gives its own, never another
    exception."""
    try:
        return loads_json(body)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
            "input": {}, "ctx": {"error": exc.msg},
        }]) from None


class JSONBodyRequest(Request):
    """A request whose JSON body fails only with `json.JSONDecodeError` (`loads_json`)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_json(await self.body())
        return self._json


class JSONBodyRoute(APIRoute):
    """Routes whose JSON body is parsed by `JSONBodyRequest`, and whose item count is
    checked before FastAPI checks each item (see `check_count`)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def parse_safely(request: Request) -> Response:
            request = JSONBodyRequest(request.scope, request.receive)
            try:
                body = await request.json()  # kept: FastAPI reads the same parsed body
            except json.JSONDecodeError:
                pass  # FastAPI answers it (422)
            else:
                if isinstance(body, dict) and isinstance(body.get("items"), list):
                    check_count(len(body["items"]), request.app.state.settings)
            return await handler(request)

        return parse_safely
