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
from pydantic import BaseModel, ValidationError

from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ScoreItem, ScoreResult
from reward_server.validation import (
    FieldError,
    RequestInvalid,
    check_count,
    check_item_size,
    item_errors,
)

InvalidMode = Literal["request", "item"]


def parse_items(
    raw_items: Sequence[Any], item_model: type[BaseModel], mode: InvalidMode
) -> tuple[list[ScoreItem | FieldError], list[str | None]]:
    """Each item, or its first structural error; and the ids (also of invalid items)."""
    parsed: list[ScoreItem | FieldError] = []
    ids: list[str | None] = []
    wire_errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_items):
        try:
            item = raw if isinstance(raw, BaseModel) else item_model.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors()
            parsed.append(FieldError(index, tuple(errors[0]["loc"]), errors[0]["msg"]))
            raw_id = raw.get("id")
            ids.append(str(raw_id)[:256] if isinstance(raw_id, str | int) else None)
            wire_errors.extend({**e, "loc": ("body", "items", index, *e["loc"])} for e in errors)
            continue
        parsed.append(item.to_item())  # type: ignore[attr-defined]
        ids.append(parsed[-1].id)  # type: ignore[union-attr]
    if wire_errors and mode == "request":
        raise RequestValidationError(wire_errors)
    return parsed, ids


async def score_items(engine: Engine, settings: Settings,
                      parsed: Sequence[ScoreItem | FieldError], ids: Sequence[str | None],
                      mode: InvalidMode) -> list[ScoreResult]:
    """Validate, score the valid items, and put every result back in request order."""
    # The limits hold for the whole request, invalid items included, and name items by
    # their index in it.
    check_count(len(parsed), settings)
    for index, item in enumerate(parsed):
        if isinstance(item, ScoreItem):
            check_item_size(index, item, settings)
    problems: dict[int, FieldError] = {}
    every: list[FieldError] = []
    for index, item in enumerate(parsed):
        found = [item] if isinstance(item, FieldError) else item_errors(
            index, item, settings.max_id_chars
        )
        if found:
            problems[index] = found[0]
            every.extend(found)
    if every and mode == "request":
        raise RequestInvalid(every)
    valid = [item for index, item in enumerate(parsed) if index not in problems]
    scored = iter(await engine.score(valid))  # type: ignore[arg-type]
    return [
        invalid_result(ids[index], problems[index]) if index in problems else next(scored)
        for index in range(len(parsed))
    ]


def invalid_result(item_id: str | None, error: FieldError) -> ScoreResult:
    return ScoreResult(item_id, 0.0, 0.0, 0.0, {}, None, "invalid", str(error))
