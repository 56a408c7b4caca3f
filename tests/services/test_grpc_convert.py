"""Proto <-> core conversion: wire-form problems are FieldErrors, numbers mean the same as
over HTTP, and a stream's window bounds what one call holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from reward_client._proto.reward.v1 import reward_pb2
from reward_client._values import from_value, to_struct, to_value
from reward_server.settings import Settings
from reward_server.types import ScoreItem, ScoreResult
from reward_server.validation import RequestInvalid
from services.grpc import convert
from services.grpc.server import RewardService, _Stream, message_limit_bytes


def message(**fields: Any) -> reward_pb2.ScoreItem:
    out = reward_pb2.ScoreItem(answer_type=fields.pop("answer_type", "number"),
                               response=fields.pop("response", "<answer>3</answer>"))
    if "answer" in fields:
        out.answer.CopyFrom(to_value(fields.pop("answer")))
    if "options" in fields:
        out.options.CopyFrom(to_struct(fields.pop("options")))
    for key, value in fields.items():
        if key == "choices":
            out.choices.extend(value)
        else:
            setattr(out, key, value)
    return out


@pytest.mark.parametrize(
    "value,expected",
    [
        (12, 12),  # integral doubles come back as ints, as JSON's 12 over HTTP
        (2.5, 2.5),
        (-3.0, -3),
        (2.0**60, 2.0**60),  # beyond exact integers: stays a float
        ("B", "B"),
        (True, True),  # a bool is not the number 1
        ([0.1, 0.2, 1, 2], [0.1, 0.2, 1, 2]),
        ([["a", 1]], [["a", 1]]),
        ({"k": [1, None]}, {"k": [1, None]}),
        (None, None),
    ],
)
def test_values_round_trip(value: Any, expected: Any) -> None:
    back = from_value(to_value(value))
    assert back == expected and type(back) is type(expected)


def test_items_keep_every_field_and_unset_means_none() -> None:
    [full, bare] = convert.to_items([
        message(id="x", answer=[0, 0, 10, 10], answer_type="bbox", problem_type="grounding",
                prompt_type="normal", choices=["a", "b"], options={"iou_threshold": 0.5}),
        message(answer="3"),
    ])
    assert full == ScoreItem(answer_type="bbox", response="<answer>3</answer>",
                             answer=[0, 0, 10, 10], id="x", problem_type="grounding",
                             prompt_type="normal", choices=("a", "b"),
                             options={"iou_threshold": 0.5})
    assert (bare.id, bare.problem_type, bare.prompt_type, bare.choices, bare.options) == (
        None, None, None, None, {})


def test_answers_no_json_reference_has_are_field_errors() -> None:
    items = [message(answer={"a": 1}), message(), message(answer=None), message(answer="ok")]
    with pytest.raises(RequestInvalid) as caught:
        convert.to_items(items, first_index=10)
    assert [(e.index, e.field) for e in caught.value.errors] == [
        (10, ("answer",)), (11, ("answer",)), (12, ("answer",))]
    assert "struct" in caught.value.errors[0].message


def test_result_round_trip_keeps_unset_fields_unset() -> None:
    result = ScoreResult("r", 1.5, 1.0, 1.0, {"iou": 1.0, "spatial_bonus": 0.5}, None,
                         "ok", None, True)
    proto = convert.to_result(result, 7)
    assert proto.index == 7 and proto.HasField("id") and not proto.HasField("extracted")
    assert dict(proto.components) == {"iou": 1.0, "spatial_bonus": 0.5}


def test_message_limit_fits_any_request_within_the_item_limits() -> None:
    small = Settings(workers=1, max_items=10, max_response_chars=1000)
    assert message_limit_bytes(small) >= 10 * 2 * 4 * 1000  # every character 4 UTF-8 bytes
    assert message_limit_bytes(Settings(workers=1)) == 2**31 - 1  # gRPC's ceiling


class _GatedEngine:
    """Scores nothing until `gate` is set; counts how many items it was handed."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0

    async def score(self, items: Sequence[ScoreItem]) -> list[ScoreResult]:
        self.started += len(items)
        await self.gate.wait()
        return [ScoreResult(i.id, 1.0, 1.0, 1.0, {}, "3", "ok") for i in items]


def test_stream_stops_reading_while_the_window_is_full() -> None:
    settings = Settings(workers=1, max_items=8)
    engine = _GatedEngine()
    read = 0

    async def requests() -> AsyncIterator[reward_pb2.ScoreRequest]:
        nonlocal read
        for i in range(40):
            read += 1
            yield reward_pb2.ScoreRequest(items=[message(id=str(i), answer="3")])

    async def scenario() -> list[int]:
        stream = _Stream(RewardService(engine, settings), requests())  # type: ignore[arg-type]
        results = stream.results()
        first = asyncio.ensure_future(results.__anext__())
        await asyncio.sleep(0.3)
        assert engine.started == 8 and read <= 9  # blocked on the 9th item: nothing more read
        engine.gate.set()
        indices = [(await first).index]
        indices += [r.index async for r in results]
        return indices

    indices = asyncio.run(scenario())
    assert sorted(indices) == list(range(40))
    assert read == 40
