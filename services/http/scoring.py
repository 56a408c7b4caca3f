"""Scoring a request's items over HTTP, whole or item by item (`invalid: "item"`).

Shared by `POST /score` and the framework endpoints (`/openrlhf`, `/slime`). The wire
model validates each item's structure; `reward_server.validation` everything else. In
`request` mode any invalid item makes the request a 422 naming it; in `item` mode an
invalid item's result is `status: "invalid"` with the reason in `error`, and the other
items are scored as usual, in request order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ScoreItem, ScoreResult
from reward_server.validation import (
    FieldError,
    RequestInvalid,
    item_problems,
)
from services.http.schemas import item_errors_in_order

InvalidMode = Literal["request", "item"]


def parse_items(
    raw_items: Sequence[Any], item_model: TypeAdapter[ScoreItem], mode: InvalidMode
) -> tuple[list[ScoreItem | FieldError], list[str | None]]:
    """Each item, or its first structural error; and the ids (also of invalid items).

    The request model has read every well-formed item into a `ScoreItem` already; the
    others (raw objects, the union's `dict` arm) are validated again, alone, for their
    errors."""
    if dict not in set(map(type, raw_items)):  # all well-formed: the usual request
        return list(raw_items), [item.id for item in raw_items]
    parsed: list[ScoreItem | FieldError] = []
    ids: list[str | None] = []
    wire_errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_items):
        if isinstance(raw, ScoreItem):
            parsed.append(raw)
            ids.append(raw.id)
            continue
        try:
            item = item_model.validate_python(raw)
        except ValidationError as exc:
            errors = item_errors_in_order(exc.errors())
            parsed.append(FieldError(index, tuple(errors[0]["loc"]), errors[0]["msg"]))
            raw_id = raw.get("id")
            ids.append(str(raw_id)[:256] if isinstance(raw_id, str | int) else None)
            wire_errors.extend({**e, "loc": ("body", "items", index, *e["loc"])} for e in errors)
            continue
        parsed.append(item)
        ids.append(item.id)
    if wire_errors and mode == "request":
        raise RequestValidationError(wire_errors)
    return parsed, ids


async def score_items(engine: Engine, settings: Settings,
                      parsed: Sequence[ScoreItem | FieldError], ids: Sequence[str | None],
                      mode: InvalidMode, size_bound: int | None = None) -> list[ScoreResult]:
    """Validate, score the valid items, and put every result back in request order.
    `size_bound`: the request body's length, if known (see `Engine.score`)."""
    problems = item_problems(parsed, settings)
    if problems and mode == "request":
        raise RequestInvalid([error for found in problems.values() for error in found])
    if not problems:
        return await engine.score(parsed, size_bound)  # type: ignore[arg-type]
    valid = [item for index, item in enumerate(parsed) if index not in problems]
    scored = iter(await engine.score(valid, size_bound))  # type: ignore[arg-type]
    return [
        invalid_result(ids[index], problems[index][0]) if index in problems else next(scored)
        for index in range(len(parsed))
    ]


def invalid_result(item_id: str | None, error: FieldError) -> ScoreResult:
    return ScoreResult(item_id, 0.0, 0.0, 0.0, {}, None, "invalid", str(error))
