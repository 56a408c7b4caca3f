"""The HTTP contract of `POST /score` as pydantic models.

The `answer_type` enum is made from the verifier registry when the app is built, so the
OpenAPI schema, `/answer-types` and validation never list the names a second time.

The wire item is a pydantic dataclass that subclasses `reward_server.types.ScoreItem`:
pydantic-core reads a request body straight into the `ScoreItem`s the engine scores, in
one pass (JSON parse, type checks, `id` as text, `choices` as a tuple), with no model
object per item to convert afterwards.
"""

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic.dataclasses import dataclass as wire_dataclass

from reward_server.types import ScoreItem, Status

Reference = str | bool | int | float | list[Any]


def _id_text(value: Any) -> Any:
    """An integer `id` is echoed back as text; anything else is the type check's."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


WireId = Annotated[str | None, BeforeValidator(_id_text, json_schema_input_type=str | int | None)]


def item_model(answer_types: list[str]) -> type[ScoreItem]:
    """The wire item: a `ScoreItem` whose `answer_type` is one of `answer_types`."""
    names = Literal[tuple(answer_types)]  # type: ignore[valid-type]

    class WireScoreItem(ScoreItem):
        answer_type: names = Field(  # type: ignore[valid-type]
            description="Which verifier scores the item (see /answer-types).")
        response: str = Field(description="The model's full completion text.")
        answer: Reference = Field(
            description="The reference: a string or number, or a list of acceptable ones "
            "(OCR gives several golds; a box is a list of four numbers).")
        id: WireId = Field(
            None,
            description="Echoed back in the result (at most REWARD_MAX_ID_CHARS characters).")
        problem_type: str | None = Field(None, description="e.g. spatial-reasoning (bonus rule).")
        prompt_type: str | None = Field(
            None, description="normal = answer-only; anything else = chain of thought.")
        choices: tuple[str, ...] | None = Field(None, description="Option texts, A first.")
        options: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={
            "description": "Verifier knobs (see /answer-types)."})

    WireScoreItem.__name__ = WireScoreItem.__qualname__ = "ScoreItem"  # the schema's name
    return wire_dataclass(frozen=True, config=ConfigDict(extra="forbid"))(WireScoreItem)


class ScoreResultModel(BaseModel):
    id: str | None
    reward: float = Field(description="acc_reward + spatial bonus + format_weight x format_reward")
    acc_reward: float = Field(description="The verifier's score in [0, 1].")
    format_reward: float = Field(description="1 when the completion has the stage's layout.")
    components: dict[str, float]
    extracted: str | None = Field(description="The answer text that was verified.")
    status: Status
    error: str | None
    cached: bool


class ScoreResponse(BaseModel):
    results: list[ScoreResultModel]


def request_models(answer_types: list[str]) -> tuple[type[ScoreItem], type[BaseModel]]:
    """The item and request models, with `answer_type` restricted to the registry's names."""
    wire_item = item_model(answer_types)
    # An item that fails validation is kept as its raw object (the union's second arm) and
    # validated again on its own, so that `invalid: "item"` can score the rest.
    items_type = list[Annotated[wire_item | dict[str, Any], Field(union_mode="left_to_right")]]
    request_model = create_model(
        "ScoreRequest",
        __config__=ConfigDict(extra="forbid"),
        items=(items_type, Field(description="The items to score (ScoreItem objects).")),
        invalid=(
            Literal["request", "item"],
            Field("request", description="request: any invalid item makes the request a "
                  "422 (the default); item: invalid items come back with status `invalid` "
                  "and the others are scored."),
        ),
    )
    return wire_item, request_model
