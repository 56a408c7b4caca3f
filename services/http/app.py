"""The FastAPI app: thin routes that translate HTTP to `reward_server.Engine` calls.

Errors have one shape: `{"message": one line}`, plus for a 422 `detail`, a list of
`{"loc", "msg", "type"}` naming the item index and field (`["body", "items", 3,
"response"]`). Every malformed body is a 422, whatever failed: the JSON syntax, its
encoding, its nesting or a number too long to read. A request over the limits is a 413;
a body over `REWARD_MAX_BODY_BYTES` is refused as it streams in, before it is parsed.
Model output never causes an HTTP error: it gets a per-item `status`.

(No `from __future__ import annotations` here: FastAPI must read the annotation of the
request model, which is built from the registry at runtime.)
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import reward_server
from reward_server import registry
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import valid_unicode
from reward_server.validation import RequestInvalid, RequestTooLarge, loc_text
from services.http.body import JSONBodyRoute
from services.http.frameworks import framework_router
from services.http.limits import BodyLimit
from services.http.schemas import ScoreResponse, request_models
from services.http.scoring import parse_items, score_items

log = logging.getLogger(__name__)

# A 422 lists this many wrong fields at most (its message counts them all).
MAX_REPORTED_ERRORS = 100


def _loc_text(loc: tuple[Any, ...] | list[Any]) -> str:
    return loc_text([p for p in loc if p != "body"])


def _clean(value: Any) -> Any:
    """Strings of an error's location or message made encodable (they can quote the client)."""
    return valid_unicode(value) if isinstance(value, str) else value


def build_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The HTTP app. Given an `engine` (shared with the gRPC server), the app uses it and
    leaves closing it to its owner; otherwise the app's lifespan starts and closes one."""
    settings = settings or Settings()
    item_model, request_model = request_models(registry.names())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is not None:
            app.state.engine = engine
            yield
            return
        app.state.engine = Engine(settings)
        try:
            yield
        finally:
            app.state.engine.close()

    app = FastAPI(
        title="Reward server",
        version=reward_server.__version__,
        description="Rule-based rewards for RL post-training of vision-language models.",
        lifespan=lifespan,
    )
    app.router.route_class = JSONBodyRoute
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.body_limit_bytes)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        message = f"{_loc_text(first['loc'])}: {first['msg']}"
        if first.get("type") == "json_invalid":
            reason = first.get("ctx", {}).get("error", "")
            message = f"the request body is not valid JSON: {reason}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        detail = [
            {"loc": [_clean(p) for p in e["loc"]], "msg": _clean(e["msg"]),
             "type": e.get("type", "value_error")}
            for e in errors[:MAX_REPORTED_ERRORS]
        ]
        return JSONResponse(
            status_code=422, content={"message": _clean(message), "detail": detail}
        )

    @app.exception_handler(HTTPException)
    async def on_http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"message": str(exc.detail)}, headers=exc.headers
        )

    @app.exception_handler(RequestInvalid)
    async def on_invalid_items(_: Request, exc: RequestInvalid) -> JSONResponse:
        detail = [
            {"loc": ["body", *e.loc], "msg": e.message, "type": "value_error"}
            for e in exc.errors[:MAX_REPORTED_ERRORS]
        ]
        return JSONResponse(status_code=422, content={"message": exc.message, "detail": detail})

    @app.exception_handler(RequestTooLarge)
    async def on_too_large(_: Request, exc: RequestTooLarge) -> JSONResponse:
        return JSONResponse(status_code=413, content={"message": exc.message})

    @app.post("/score", response_model=ScoreResponse)
    async def score(body: request_model) -> dict[str, Any]:  # type: ignore[valid-type]
        mode = body.invalid  # type: ignore[attr-defined]
        parsed, ids = parse_items(body.items, item_model, mode)  # type: ignore[attr-defined]
        results = await score_items(app.state.engine, settings, parsed, ids, mode)
        return {"results": [r.to_dict() for r in results]}

    app.include_router(framework_router(settings))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": reward_server.__version__,
                **app.state.engine.health()}

    @app.get("/answer-types")
    async def answer_types() -> dict[str, Any]:
        return {"answer_types": registry.describe()}

    return app
