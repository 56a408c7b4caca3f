"""The FastAPI app: thin routes that translate HTTP to `reward_server.Engine` calls.

Errors: a malformed request is a 422 whose `detail` names the item index and field
(`loc: ["body", "items", 3, "response"]`) and whose `message` says it in one line; a
request over the limits is a 413. Model output never causes an HTTP error: it gets a
per-item `status`.

`GET /metrics` is the engine's Prometheus registry (`reward_server.metrics`); this app
adds the request latency of `POST /score` (transport `http`).

(No `from __future__ import annotations` here: FastAPI must read the annotation of the
request model, which is built from the registry at runtime.)
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import reward_server
from reward_server import registry
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import canonical_json
from services.http.schemas import ScoreResponse, request_models

log = logging.getLogger(__name__)


class RequestTooLarge(Exception):  # noqa: N818 - named for the HTTP status it maps to
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _loc_text(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    _, request_model = request_models(registry.names())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = Engine(settings)
        try:
            yield
        finally:
            await app.state.engine.aclose()

    app = FastAPI(
        title="Reward server",
        version=reward_server.__version__,
        description="Rule-based rewards for RL post-training of vision-language models.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        message = f"{_loc_text(first['loc'])}: {first['msg']}"
        detail = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e.get("type", "value_error")}
            for e in errors
        ]
        return JSONResponse(status_code=422, content={"message": message, "detail": detail})

    @app.exception_handler(RequestTooLarge)
    async def on_too_large(_: Request, exc: RequestTooLarge) -> JSONResponse:
        return JSONResponse(status_code=413, content={"message": exc.message})

    @app.post("/score", response_model=ScoreResponse)
    async def score(body: request_model) -> dict[str, Any]:  # type: ignore[valid-type]
        engine: Engine = app.state.engine
        with engine.metrics.request_seconds.labels("http").time():
            items = body.items  # type: ignore[attr-defined]
            _check_limits(items, settings)
            _check_options(items)
            results = await engine.score([item.to_item() for item in items])
            return {"results": [r.to_dict() for r in results]}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": reward_server.__version__,
                **app.state.engine.health()}

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(app.state.engine.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    @app.get("/answer-types")
    async def answer_types() -> dict[str, Any]:
        return {"answer_types": registry.describe()}

    return app


def _check_limits(items: list[Any], settings: Settings) -> None:
    if len(items) > settings.max_items:
        raise RequestTooLarge(
            f"{len(items)} items in one request; the limit is {settings.max_items} "
            "(REWARD_MAX_ITEMS): split the batch"
        )
    limit = settings.max_response_chars
    for index, item in enumerate(items):
        if len(item.response) > limit:
            raise RequestTooLarge(
                f"items[{index}].response has {len(item.response)} characters; the limit is "
                f"{limit} (REWARD_MAX_RESPONSE_CHARS)"
            )
        answer = item.answer if isinstance(item.answer, str) else canonical_json(item.answer)
        if len(answer) > limit:
            raise RequestTooLarge(f"items[{index}].answer is longer than {limit} characters")


def _check_options(items: list[Any]) -> None:
    errors = []
    for index, item in enumerate(items):
        try:
            registry.build_options(item.answer_type, item.options)
        except registry.OptionsError as exc:
            errors.append(
                {
                    "loc": ("body", "items", index, "options", *exc.field.split(".")),
                    "msg": exc.message,
                    "type": "value_error",
                }
            )
    if errors:
        raise RequestValidationError(errors)
