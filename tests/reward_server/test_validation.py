"""Core request validation: typed errors that name the item index and field."""

from __future__ import annotations

import dataclasses
import math
import random
import re

import pytest

from reward_server import registry
from reward_server.settings import Settings
from reward_server.types import ScoreItem, canonical_json
from reward_server.validation import (
    FieldError,
    RequestInvalid,
    RequestTooLarge,
    check_item_size,
    item_errors,
    json_size_bound,
    plainly_valid,
    reference_error,
    validate_items,
)

SETTINGS = Settings(workers=1, max_items=3, max_response_chars=10)


def item(**kw: object) -> ScoreItem:
    fields: dict[str, object] = {"answer_type": "test-fake", "response": "x", "answer": "7"}
    fields.update(kw)
    return ScoreItem(**fields)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fake(fake_answer_type: str) -> None:
    """Registers the test answer type."""


def test_a_valid_request_passes() -> None:
    validate_items([item(), item(options={"bonus": 0.5})], SETTINGS)


def test_too_many_items_names_the_setting() -> None:
    with pytest.raises(RequestTooLarge, match="REWARD_MAX_ITEMS"):
        validate_items([item()] * 4, SETTINGS)


@pytest.mark.parametrize("field", ["response", "answer"])
def test_a_long_text_names_the_item_and_field(field: str) -> None:
    with pytest.raises(RequestTooLarge) as info:
        validate_items([item(), item(**{field: "y" * 11})], SETTINGS)
    assert (info.value.index, info.value.field) == (1, field)
    assert f"items[1].{field}" in info.value.message


def test_an_item_over_a_limit_is_too_large_whatever_is_wrong_before_it() -> None:
    """The limits hold for the whole request: a later item over one makes it too large,
    though an earlier one is invalid; items are named by their index in the whole request
    (a stream's later messages start past 0)."""
    with pytest.raises(RequestTooLarge) as info:
        validate_items([item(answer_type="poetry"), item(), item(response="y" * 11)],
                       SETTINGS, first_index=5)
    assert (info.value.index, info.value.field) == (7, "response")


def test_every_invalid_item_among_plain_ones_is_named_in_order() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_items([item(answer_type="poetry"), item(), item(answer=float("nan"))],
                       SETTINGS, first_index=2)
    assert [(e.index, e.field) for e in info.value.errors] == [
        (2, ("answer_type",)), (4, ("answer",))]


def test_every_wrong_field_is_reported_in_item_order() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_items([item(answer_type="poetry"), item(), item(options={"colour": 1}),
                        item(answer={"a": 1})],  # type: ignore[arg-type]
                       Settings(workers=1, max_items=4, max_response_chars=10))
    errors = info.value.errors
    assert [(e.index, e.field) for e in errors] == [
        (0, ("answer_type",)), (2, ("options", "colour")), (3, ("answer",))]
    assert "known: " in errors[0].message and "test-fake" in errors[0].message


def test_request_invalid_message_names_the_first_field() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_items([item(), item(options={"bonus": "lots"})], SETTINGS)
    assert info.value.errors[0].loc == ("items", 1, "options", "bonus")
    assert info.value.message.startswith("items[1].options.bonus: ")


def test_field_error_path() -> None:
    assert FieldError(3, ("options", "rel_tol"), "bad").path == "items[3].options.rel_tol"


@pytest.mark.parametrize(
    "value,ok",
    [
        ("B", True), (3, True), (2.5, True), (True, True), ([0, 1, 2, 3], True),
        ([[0, 1, 2, 3], [1, 2, 3, 4]], True),
        (float("nan"), False), ([1, float("inf")], False),  # not finite
        ({"a": 1}, False), (None, False), ([[[[1]]]], False),  # not a reference shape
    ],
)
def test_reference_shapes(value: object, ok: bool) -> None:
    assert (reference_error(value) is None) is ok


# -- numeric options: finite and in their declared range, for every verifier -------------

def _numeric_fields() -> list[tuple[str, dataclasses.Field[object]]]:
    rows = []
    for name in registry.names():
        for f in dataclasses.fields(registry.get(name).load().Options):
            if re.search(r"\b(float|int)\b", str(f.type)):
                rows.append((name, f))
    return rows


def test_every_numeric_option_of_every_verifier_declares_bounds() -> None:
    fields = _numeric_fields()
    assert len(fields) > 20
    unbounded = [f"{name}.{f.name}" for name, f in fields if not f.metadata.get("bounds")]
    assert unbounded == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "nan", "Infinity"])
def test_every_numeric_option_refuses_non_finite_values(bad: object) -> None:
    for name, f in _numeric_fields():
        with pytest.raises(registry.OptionsError) as caught:
            registry.build_options(name, {f.name: bad})
        assert caught.value.field == f.name, (name, f.name)


def test_out_of_range_options_name_the_bound() -> None:
    with pytest.raises(registry.OptionsError, match=">= 0.0"):
        registry.build_options("number", {"rel_tol": -1})
    with pytest.raises(registry.OptionsError, match="> 0.0") as caught:
        registry.build_options("bbox", {"image_width": -1})
    assert caught.value.field == "image_width"
    with pytest.raises(registry.OptionsError, match="<= 1.0"):
        registry.build_options("bbox", {"iou_threshold": 1.5})
    assert registry.build_options("bbox", {"image_width": 640}).image_width == 640


def test_an_id_over_the_limit_names_the_field() -> None:
    with pytest.raises(RequestInvalid) as caught:
        validate_items([item(), item(id="x" * 300)], Settings(workers=1, max_id_chars=256))
    assert caught.value.errors[0].loc == ("items", 1, "id")
    assert "REWARD_MAX_ID_CHARS" in caught.value.message


def test_errors_quoting_lone_surrogates_stay_encodable() -> None:
    with pytest.raises(RequestInvalid) as caught:
        validate_items([item(options={"\ud800": 1})], SETTINGS)
    caught.value.errors[0].message.encode("utf-8")
    str(caught.value.errors[0].loc).encode("utf-8")
def test_later_messages_of_a_stream_name_items_by_their_stream_index() -> None:
    with pytest.raises(RequestInvalid) as caught:
        validate_items([item(), item(answer_type="haiku")], SETTINGS, first_index=40)
    assert [e.path for e in caught.value.errors] == ["items[41].answer_type"]
    with pytest.raises(RequestTooLarge) as too_large:
        validate_items([item(response="y" * 11)], SETTINGS, first_index=7)
    assert (too_large.value.index, too_large.value.field) == (7, "response")
    assert too_large.value.message.startswith("items[7].response")


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.choice(["text", "int", "big", "float", "bool", "none", "list", "dict"]
                      if depth < 3 else ["text", "int", "float"])
    if kind == "text":
        alphabet = 'ab"\\\n\x00\x1f\u00e9\u4e2d\U0001f600\ud800 '
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if kind == "int":
        return rng.randint(-(10**6), 10**6)
    if kind == "big":
        return rng.choice([-1, 1]) * rng.randint(0, 10 ** rng.randint(1, 300))
    if kind == "float":
        return rng.choice([rng.uniform(-1e308, 1e308), -2.2250738585072014e-308, 5e-324,
                           -1.0 / 3.0, float("inf"), float("-inf"), float("nan")])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {str(_random_value(rng, 3)): _random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def test_the_json_size_bound_is_never_below_the_size() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        value = _random_value(rng)
        assert json_size_bound(value) >= len(canonical_json(value)), value


def test_a_list_answer_over_the_limit_is_too_large_and_one_within_it_is_not() -> None:
    # the bound lets a short list through unwritten; a longer one is measured exactly
    check_item_size(0, item(answer=[1, 2]), SETTINGS)  # bound 8: not written
    check_item_size(0, item(answer=["a", "b"]), SETTINGS)  # bound 20, written 9
    with pytest.raises(RequestTooLarge) as info:
        check_item_size(1, item(answer=["ab", "cd"]), SETTINGS)  # 11 characters
    assert (info.value.index, info.value.field) == (1, "answer")


def test_an_item_plainly_valid_passes_every_check() -> None:
    """`plainly_valid` lets the HTTP layer skip the full checks: it must never say yes to
    an item they would refuse (and it says yes to the common one)."""
    rng = random.Random(3)
    settings = Settings(workers=1, max_response_chars=10, max_id_chars=4)
    scalars = ["a", "z" * 9, "\x01", 7, 10**12, 0.25, float("nan"), float("inf"), True, None]

    def answer() -> object:
        return rng.choice([
            "7", "z" * rng.randint(9, 12), 7, 7.5, ["a"], [float("nan")], [["a"]], ("a",),
            [rng.choice(scalars) for _ in range(rng.randint(0, 4))],
        ])

    said_yes = said_yes_to_a_list = 0
    for _ in range(3000):
        candidate = item(
            answer_type=rng.choice(["test-fake", "number", "poetry"]),
            response="y" * rng.randint(0, 12),
            answer=answer(),
            id=rng.choice([None, "abcd", "abcde"]),
            options=rng.choice([{}, {}, {"bonus": 0.5}, {"colour": 1}]),
        )
        if not plainly_valid(candidate, settings):
            continue
        said_yes += 1
        said_yes_to_a_list += isinstance(candidate.answer, list)
        check_item_size(0, candidate, settings)
        assert item_errors(0, candidate, settings.max_id_chars) == []
    assert said_yes > 100 and said_yes_to_a_list > 10
    assert plainly_valid(item(), settings)
    assert plainly_valid(item(answer=[1, 2]), settings)
    assert plainly_valid(item(answer=7), settings) and plainly_valid(item(answer=7.5), settings)
    for refused in (float("nan"), float("-inf"), True, 10**40, None):
        assert not plainly_valid(item(answer=refused), settings)


def test_a_list_answer_plainly_valid_passes_every_check() -> None:
    """The same for list answers, under a limit that lets most of them through: never
    yes to a list the full checks refuse (non-finite numbers, nesting, bools, None,
    tuples, too long as JSON)."""
    rng = random.Random(4)
    settings = Settings(workers=1, max_response_chars=200)
    scalars = ["a", "z" * 30, "\x01" * 10, 7, 10**40, -0.25, float("nan"), float("-inf"),
               True, None, [1], ("a",)]
    said_yes = 0
    for _ in range(3000):
        answer = [rng.choice(scalars) for _ in range(rng.randint(0, 8))]
        candidate = item(answer=answer)
        if not plainly_valid(candidate, settings):
            continue
        said_yes += 1
        check_item_size(0, candidate, settings)
        assert item_errors(0, candidate, settings.max_id_chars) == []
    assert said_yes > 300
    for refused in ([float("nan")], [float("inf")], [[1]], ["a", None], [True], [1] * 65):
        assert not plainly_valid(item(answer=refused), settings)
    assert not plainly_valid(item(answer=("a",)), settings)
