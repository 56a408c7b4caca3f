"""The HTTP contract of `POST /score` as pydantic models.

The `answer_type` enum is made from the verifier registry when the app is built, so the
OpenAPI schema, `/answer-types` and validation never list the names a second time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from reward_server.types import ScoreItem, Status

Reference = str | bool | int | float | list[Any]


class ScoreItemBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | int | None = Field(
        None, description="Echoed back in the result (at most REWARD_MAX_ID_CHARS characters)."
    )
    answer_type: str = Field(description="Which verifier scores the item (see /answer-types).")
    response: str = Field(description="The model's full completion text.")
    answer: Reference = Field(
        description="The reference: a string or number, or a list of acceptable ones "
        "(OCR gives several golds; a box is a list of four numbers)."
    )
    problem_type: str | None = Field(None, description="e.g. spatial-reasoning (bonus rule).")
    prompt_type: str | None = Field(
        None, description="normal = answer-only; anything else = chain of thought."
    )
    choices: list[str] | None = Field(None, description="Option texts, A first.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Verifier knobs (see /answer-types)."
    )

    def to_item(self) -> ScoreItem:
        return ScoreItem(
            answer_type=self.answer_type,
            response=self.response,
            answer=self.answer,
            id=None if self.id is None else str(self.id),
            problem_type=self.problem_type,
            prompt_type=self.prompt_type,
            choices=None if self.choices is None else tuple(self.choices),
            options=dict(self.options),
        )


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


def request_models(answer_types: list[str]) -> tuple[type[ScoreItemBase], type[BaseModel]]:
    """The item and request models, with `answer_type` restricted to the registry's names."""
    names = Literal[tuple(answer_types)]  # type: ignore[valid-type]
    item_model = create_model(
        "ScoreItem",
        __base__=ScoreItemBase,
        answer_type=(names, Field(description="Which verifier scores the item.")),
    )
    # An item that fails validation is kept as its raw object (the union's second arm) and
    # validated again on its own, so that `invalid: "item"` can score the rest.
    items_type = list[Annotated[item_model | dict[str, Any], Field(union_mode="left_to_right")]]
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
    return item_model, request_model
