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
    """An `id` given as a number is echoed back as text (a whole float or a bool as the
    integer it equals, as this API always did); anything else is the type check's."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


WireId = Annotated[str | None, BeforeValidator(_id_text, json_schema_input_type=str | int | None)]


def item_model(answer_types: list[str]) -> type[ScoreItem]:
    """The wire item: a `ScoreItem` whose `answer_type` is one of `answer_types`."""
    names = Literal[tuple(answer_types)]  # type: ignore[valid-type]

    class WireScoreItem(ScoreItem):
        answer_type: names = Field(  # type: ignore[valid-type]
            description="Which verifier scores the item.")
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


# The wire item's fields in the order its errors are reported (the dataclass keeps its
# base's order; a request's fields read best in this one), and pydantic's words for a
# dataclass's errors in the words of its models, which this API's 422s always used.
_FIELD_ORDER = {name: rank for rank, name in enumerate(
    ("id", "answer_type", "response", "answer", "problem_type", "prompt_type", "choices",
     "options"))}
_MODEL_WORDS = {
    "missing_argument": ("missing", "Field required"),
    "unexpected_keyword_argument": ("extra_forbidden", "Extra inputs are not permitted"),
    "dataclass_type": ("model_type", "Input should be a valid dictionary or instance of "
                       "ScoreItem"),
    "tuple_type": ("list_type", "Input should be a valid list"),
}


def in_model_words(error: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error about a wire item, as pydantic's models would have worded it."""
    kind, message = _MODEL_WORDS.get(error["type"], (error["type"], error["msg"]))
    return {**error, "type": kind, "msg": message}


def item_errors_in_order(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A wire item's errors (locations from the item), worded as models word them, in
    field order."""
    def rank(error: dict[str, Any]) -> int:
        return _FIELD_ORDER.get(error["loc"][0], len(_FIELD_ORDER)) if error["loc"] else -1

    return sorted((in_model_words(e) for e in errors), key=rank)


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
