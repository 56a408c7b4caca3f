"""Between the proto messages of `reward.v1` and the core's `ScoreItem`/`ScoreResult`.

Only the wire form is checked here (an answer that is null or a struct, which JSON-like
`Value`s allow and references do not); every other rule is `reward_server.validation`'s,
so HTTP and gRPC refuse the same requests with the same messages. Conversion problems are
`FieldError`s like the rest.

Numbers: `google.protobuf.Value` carries doubles only, so an integral number is read as an
int (`12.0` -> `12`, `reward_client._values`), as JSON's `12` arrives over HTTP; the
verifiers and the verdict cache then see the same reference from both transports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward_client._proto.reward.v1 import reward_pb2
from reward_client._values import from_struct, from_value, to_value
from reward_server.types import ScoreItem, ScoreResult
from reward_server.validation import FieldError, RequestInvalid


def _answer(index: int, item: reward_pb2.ScoreItem, errors: list[FieldError]) -> Any:
    if not item.HasField("answer") or item.answer.WhichOneof("kind") in (None, "null_value"):
        errors.append(FieldError(index, ("answer",), "answer is required (the reference)"))
        return ""
    if item.answer.WhichOneof("kind") == "struct_value":
        errors.append(FieldError(
            index, ("answer",), "must be a string, a number or a list of them, not a struct"
        ))
        return ""
    return from_value(item.answer)


def to_items(messages: Sequence[reward_pb2.ScoreItem], first_index: int = 0) -> list[ScoreItem]:
    """The core's items; raise `RequestInvalid` for answers no JSON request could carry.

    `first_index` is the index of `messages[0]` in the whole request (a stream), so that
    errors name the item as the caller counts it.
    """
    errors: list[FieldError] = []
    items = []
    for index, message in enumerate(messages, first_index):
        items.append(ScoreItem(
            answer_type=message.answer_type,
            response=message.response,
            answer=_answer(index, message, errors),
            id=message.id if message.HasField("id") else None,
            problem_type=message.problem_type if message.HasField("problem_type") else None,
            prompt_type=message.prompt_type if message.HasField("prompt_type") else None,
            choices=tuple(message.choices) or None,
            options=from_struct(message.options),
        ))
    if errors:
        raise RequestInvalid(errors)
    return items


def to_result(result: ScoreResult, index: int) -> reward_pb2.ScoreResult:
    message = reward_pb2.ScoreResult(
        index=index,
        reward=result.reward,
        acc_reward=result.acc_reward,
        format_reward=result.format_reward,
        components=result.components,
        status=result.status,
        cached=result.cached,
    )
    if result.id is not None:
        message.id = result.id
    if result.extracted is not None:
        message.extracted = result.extracted
    if result.error is not None:
        message.error = result.error
    return message


def answer_types(rows: list[dict[str, Any]]) -> reward_pb2.ListAnswerTypesResponse:
    """`registry.describe()` as the proto's answer types."""
    response = reward_pb2.ListAnswerTypesResponse()
    for row in rows:
        entry = response.answer_types.add(
            name=row["name"], description=row["description"], expects=row["expects"]
        )
        for name, option in row["options"].items():
            entry.options[name].CopyFrom(reward_pb2.AnswerTypeOption(
                default=to_value(option["default"]), type=option["type"], help=option["help"]
            ))
    return response
