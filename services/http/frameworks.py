"""Endpoints in the RL frameworks' own remote-reward shapes, so they need only a URL.

- `POST /openrlhf`: OpenRLHF's remote reward request (`--reward.remote_url
  http://HOST:8000/openrlhf`, older `--remote_rm_url`): `{"query": [prompt + response],
  "prompts": [prompt], "labels": [label]}` -> `{"rewards": [...], "scores": [...],
  "extra_logs": {"acc_reward": [...], "format_reward": [...], "scored": [...]}}`
  (`scores` is the accuracy in [0, 1], which OpenRLHF's dynamic filtering reads).
- `POST /slime`: slime's `remote_rm` request (`--rm-type remote_rm --rm-url
  http://HOST:8000/slime --reward-key reward`): `{"prompt", "response", "label"}` ->
  `{"reward", "acc_reward", "format_reward", "status", "error"}`.

A label is an answer or a label object with `answer` and `answer_type`
(`reward_client.items.parse_label`); `?answer_type=` names the type of plain labels.
Completions lose their trailing special tokens (`?clean_completion=false` keeps them).
Unscored items are `?unscored_value=` (default 0.0) in `rewards`/`reward`, with
`scored: 0` beside them. Invalid samples are a 422 naming them, or, with
`?invalid=item`, an unscored result each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from reward_client.client import UNSCORED_STATUSES
from reward_client.items import LabelError, make_item, parse_label
from reward_client.openrlhf import response_of
from reward_server.settings import Settings
from reward_server.types import ScoreItem, ScoreResult
from reward_server.validation import FieldError, reference_error
from services.http.body import JSONBodyRoute
from services.http.scoring import InvalidMode, score_items


class OpenRLHFRequest(BaseModel):
    query: list[str] = Field(description="Prompt + response texts, one per sample.")
    prompts: list[str] | None = Field(None, description="The prompts, to strip from `query`.")
    labels: list[Any] | None = Field(None, description="References (answers or label objects).")


class SlimeRequest(BaseModel):
    prompt: Any = Field(None, description="The prompt (text or chat messages); not scored.")
    response: str = Field(description="The model's response.")
    label: Any = Field(None, description="The reference (an answer or a label object).")
    metadata: dict[str, Any] | None = Field(None, description="answer_type, problem_type, ...")


def _item(index: int, response: str, label: Any, answer_type: str | None, clean: bool,
          metadata: dict[str, Any] | None = None) -> ScoreItem | FieldError:
    extra = {key: (metadata or {}).get(key)
             for key in ("problem_type", "prompt_type", "choices", "options")}
    try:
        fields = parse_label(label, (metadata or {}).get("answer_type") or answer_type)
    except LabelError as exc:
        return FieldError(index, ("label",), str(exc))
    wire = make_item(response, fields, clean, **extra)
    problem = reference_error(wire["answer"])
    if problem is not None:
        return FieldError(index, ("label", "answer"), problem)
    return ScoreItem(answer_type=str(wire["answer_type"]), response=wire["response"],
                     answer=wire["answer"], id=wire.get("id"),
                     problem_type=wire.get("problem_type"), prompt_type=wire.get("prompt_type"),
                     choices=tuple(wire["choices"]) if wire.get("choices") else None,
                     options=dict(wire.get("options") or {}))


def _reward(result: ScoreResult, unscored_value: float) -> float:
    return result.reward if _scored(result) else unscored_value


def _scored(result: ScoreResult) -> bool:
    return result.status not in UNSCORED_STATUSES


@dataclass
class FrameworkQuery:
    """The URL parameters of the framework endpoints."""

    answer_type: Annotated[str | None, Query(description="Answer type of plain labels.")] = None
    invalid: Annotated[InvalidMode, Query(description="request: a bad sample is a 422; "
                                          "item: an unscored result")] = "request"
    unscored_value: Annotated[float, Query(allow_inf_nan=False, description="Reward of "
                                           "items the server could not judge.")] = 0.0
    clean_completion: Annotated[bool, Query(description="Drop trailing special tokens.")] = True


def framework_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["frameworks"], route_class=JSONBodyRoute)

    @router.post("/openrlhf")
    async def openrlhf(
        body: OpenRLHFRequest, request: Request, query: Annotated[FrameworkQuery, Depends()]
    ) -> dict[str, Any]:
        prompts = body.prompts or [""] * len(body.query)
        labels = body.labels if body.labels is not None else [None] * len(body.query)
        if not len(prompts) == len(labels) == len(body.query):
            # the body is wrong, not one sample: named as the body's field, not an item's
            raise RequestValidationError([{
                "loc": ("body", "labels"), "type": "value_error",
                "msg": f"query, prompts and labels must have one entry per sample (got "
                       f"{len(body.query)}, {len(prompts)} and {len(labels)})",
            }])
        parsed = [_item(i, response_of(q, p), label, query.answer_type, query.clean_completion)
                  for i, (q, p, label) in enumerate(zip(body.query, prompts, labels,
                                                       strict=True))]
        results = await score_items(request.app.state.engine, settings, parsed,
                                    [None] * len(parsed), query.invalid)
        unscored = query.unscored_value
        return {
            "rewards": [_reward(r, unscored) for r in results],
            "scores": [r.acc_reward if _scored(r) else unscored for r in results],
            "extra_logs": {
                "acc_reward": [r.acc_reward for r in results],
                "format_reward": [r.format_reward for r in results],
                "scored": [1.0 if _scored(r) else 0.0 for r in results],
            },
        }

    @router.post("/slime")
    async def slime(
        body: SlimeRequest, request: Request, query: Annotated[FrameworkQuery, Depends()]
    ) -> dict[str, Any]:
        parsed = [_item(0, body.response, body.label, query.answer_type,
                        query.clean_completion, body.metadata)]
        (result,) = await score_items(request.app.state.engine, settings, parsed, [None],
                                      query.invalid)
        return {
            "reward": _reward(result, query.unscored_value),
            "acc_reward": result.acc_reward,
            "format_reward": result.format_reward,
            "status": result.status,
            "error": result.error,
        }

    return router
