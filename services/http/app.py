"""The FastAPI app: thin routes that translate HTTP to `reward_server.Engine` calls.

Errors have one shape: `{"message": one line}`, plus for a 422 `detail`, a list of
`{"loc", "msg", "type"}` naming the item index and field (`["body", "items", 3,
"response"]`). Every malformed body is a 422, whatever failed: the JSON syntax, its
encoding, its nesting or a number too long to read. A request over the limits is a 413;
a body over `REWARD_MAX_BODY_BYTES` is refused as it streams in, before it is parsed.
Model output never causes an HTTP error: it gets a per-item `status`.

The warm path is kept thin, since a GRPO step's repeats are answered from the verdict
cache and the HTTP layer is then most of the cost: the body is parsed and validated in
one pass by pydantic-core (`model_validate_json`, not `json.loads` then validation), and
the results are written with orjson straight from the engine's dataclasses, without
FastAPI validating and re-encoding a response model. `ScoreRequest`/`ScoreResponse`
still document the contract in the OpenAPI schema.

`GET /metrics` is the engine's Prometheus registry (`reward_server.metrics`); this app
adds the request latency of `POST /score` (transport `http`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import reward_server
from reward_server import registry
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import valid_unicode
from reward_server.validation import RequestInvalid, RequestTooLarge, check_count, loc_text
from services.http.body import JSONBodyRoute, parse_json_body
from services.http.frameworks import framework_router
from services.http.limits import BodyLimit
from services.http.schemas import ScoreResponse, in_model_words, request_models
from services.http.scoring import parse_items, score_items

log = logging.getLogger(__name__)

# A 422 lists this many wrong fields at most (its message counts them all).
MAX_REPORTED_ERRORS = 100


def _loc_text(loc: tuple[Any, ...] | list[Any]) -> str:
    return loc_text([p for p in loc if p != "body"])


def _clean(value: Any) -> Any:
    """Strings of an error's location or message made encodable (they can quote the client)."""
    return valid_unicode(value) if isinstance(value, str) else value


class RewardApp(FastAPI):
    """FastAPI, with `POST /score` (the route every trainer step calls) served through a
    shorter stack: the app's error middleware, its own middleware and its exception
    handlers, as for every route, but not the router nor the per-request layers FastAPI
    adds for features this route does not use (OpenTelemetry spans, the app-wide body
    limit, the exit stack of dependencies): 0.16 of the server's 3.1 ms of CPU on a warm
    batch of 128 (measured without the socket). Every other request, and `/score` with
    any other method or a root path, goes through the whole stack. `fast_score = False`
    turns the short one off."""

    fast_score = True
    score_route: Route | None = None
    _score_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.fast_score and self.score_route is not None and scope["type"] == "http"
                and scope["path"] == self.score_route.path and scope["method"] == "POST"
                and not scope.get("root_path") and not self.root_path
                and not self._telemetry_on()):
            if self._score_stack is None:
                self._score_stack = self._build_score_stack(self.score_route)
            # what Starlette's app, router and route put in the scope on the way
            scope.update(app=self, router=self.router, route=self.score_route,
                         endpoint=self.score_route.endpoint, path_params={})
            await self._score_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _telemetry_on(self) -> bool:
        """Whether FastAPI's own OpenTelemetry is configured (then its layers trace
        `/score` too, through the whole stack)."""
        telemetry = getattr(self, "_native_telemetry", None)
        return telemetry is not None and bool(telemetry.enabled())

    def _build_score_stack(self, route: Route) -> ASGIApp:
        """What `build_middleware_stack` builds, with `route` in place of the router and
        without FastAPI's own layers."""
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        app: ASGIApp = ExceptionMiddleware(route.handle, handlers=handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)


def build_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The HTTP app. Given an `engine` (shared with the gRPC server), the app uses it and
    leaves closing it to its owner; otherwise the app's lifespan starts and closes one."""
    settings = settings or Settings()
    item_model, request_model = request_models(registry.names())
    item_adapter = TypeAdapter(item_model)

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
            await app.state.engine.aclose()

    app = RewardApp(
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

    async def score(request: Request) -> Response:
        engine: Engine = app.state.engine
        with engine.metrics.request_seconds.labels("http").time():
            raw = await request.body()
            try:
                body = request_model.model_validate_json(raw)
            except ValidationError:
                # The slow path, only for bodies the fast one refused: the item count first
                # (a million malformed items must not cost a million error reports), lone
                # surrogate escapes accepted (model text; results replace them), then the
                # errors in the one shape.
                parsed_json = parse_json_body(raw)
                if isinstance(parsed_json, dict) and isinstance(parsed_json.get("items"), list):
                    check_count(len(parsed_json["items"]), settings)
                try:
                    body = request_model.model_validate(parsed_json)
                except ValidationError as exc:
                    raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                                  for e in map(in_model_words, exc.errors())]
                                                 ) from None
            mode = body.invalid  # type: ignore[attr-defined]
            parsed, ids = parse_items(body.items, item_adapter, mode)  # type: ignore[attr-defined]
            results = await score_items(engine, settings, parsed, ids, mode, len(raw))
            # orjson writes the result dataclasses itself (their fields are the wire names)
            return Response(orjson.dumps({"results": results}),
                            media_type="application/json")

    # A plain Starlette route: FastAPI's own route would solve dependencies and wrap the
    # handler once more for every request, for a handler that takes the bare request
    # (about a twentieth of the server's time on a warm batch). The app's middleware and
    # exception handlers apply to it as to every route (through `RewardApp`'s short
    # stack); its OpenAPI entry comes from a FastAPI route made for the schema only
    # (`_openapi_with_request_body`).
    score_route = Route("/score", score, methods=["POST"])
    app.router.routes.append(score_route)
    app.score_route = score_route  # served through the app's short stack (`RewardApp`)
    schema_route = APIRoute("/score", score, methods=["POST"], response_model=ScoreResponse)

    app.openapi = lambda: _openapi_with_request_body(  # type: ignore[method-assign]
        app, request_model, score_route, schema_route)

    app.include_router(framework_router(settings))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        # in a thread: the first call probes the code sandbox (starts one), which must not
        # stall the requests the event loop serves meanwhile
        state = await asyncio.to_thread(app.state.engine.health)
        return {"status": "ok", "version": reward_server.__version__, **state}

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(app.state.engine.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    @app.get("/answer-types")
    async def answer_types() -> dict[str, Any]:
        return {"answer_types": registry.describe()}

    return app


def _openapi_with_request_body(app: FastAPI, request_model: type[BaseModel],
                               score_route: Route, schema_route: APIRoute) -> dict[str, Any]:
    """FastAPI's schema, `POST /score` documented in its place by its schema-only route,
    plus the request body the route parses itself."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description,
                             routes=[schema_route if r is score_route else r for r in app.routes])
        body = request_model.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components[request_model.__name__] = body
        schema["paths"]["/score"]["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{request_model.__name__}"}}},
        }
        app.openapi_schema = schema
    return app.openapi_schema
