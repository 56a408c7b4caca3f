"""Request validation, one path for every transport.

A transport (HTTP, gRPC) turns its wire form into `ScoreItem`s, reporting its own type
errors (a missing field, a number where text belongs); everything else a request can get
wrong is checked here, once: the size limits, the length of the `id`, the answer type
against the registry, the options against the verifier's `Options` (numbers finite and
inside their bounds, see `registry.build_options`), the shape of the reference. The byte
size of the whole request is the transport's to bound as it arrives
(`Settings.body_limit_bytes`: HTTP counts body bytes, gRPC sets its message size limit).
Problems are raised as typed errors that each transport maps to its own codes:

- `RequestTooLarge`: the request exceeds a limit of the settings (HTTP 413, gRPC
  `RESOURCE_EXHAUSTED`); the whole request is refused, whatever `invalid` mode is asked.
- `RequestInvalid`: one or more items are wrong (HTTP 422, gRPC `INVALID_ARGUMENT`); each
  `FieldError` names the item index and the field path inside the item.

Model output (`response`) is never a reason to refuse a request: only its size is checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reward_server import registry
from reward_server.settings import Settings
from reward_server.types import ScoreItem, canonical_json, valid_unicode

FieldPath = tuple[str | int, ...]

# For callers without settings at hand; transports pass `Settings.max_id_chars`.
DEFAULT_MAX_ID_CHARS: int = Settings.model_fields["max_id_chars"].default


@dataclass(frozen=True)
class FieldError:
    """One wrong field: `items[index].<field...>` and what is wrong with it."""

    index: int
    field: FieldPath
    message: str

    def __post_init__(self) -> None:
        # Messages and paths can quote client text (an option's name): keep them encodable.
        object.__setattr__(self, "message", valid_unicode(self.message))
        object.__setattr__(
            self, "field", tuple(valid_unicode(p) if isinstance(p, str) else p for p in self.field)
        )

    @property
    def loc(self) -> FieldPath:
        """The location from the request's root: `("items", 3, "options", "rel_tol")`."""
        return ("items", self.index, *self.field)

    @property
    def path(self) -> str:
        """The location as text: `items[3].options.rel_tol`."""
        return loc_text(self.loc)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class RequestInvalid(ValueError):  # noqa: N818 - named for what the request is
    """Items of the request are wrong; `errors` has one entry per wrong field."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError("RequestInvalid needs at least one FieldError")
        self.errors = list(errors)
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        self.message = f"{self.errors[0]}{more}"
        super().__init__(self.message)


class RequestTooLarge(ValueError):  # noqa: N818 - named for the HTTP status it maps to
    """The request exceeds a size limit; `index`/`field` name the item when one is to blame."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.field = field


def loc_text(loc: Sequence[Any]) -> str:
    """`("items", 3, "options", "x")` as `items[3].options.x`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "request"


def check_count(count: int, settings: Settings) -> None:
    """Raise `RequestTooLarge` when `count` items are more than one request may hold."""
    if count > settings.max_items:
        raise RequestTooLarge(
            f"{count} items in one request; the limit is {settings.max_items} "
            "(REWARD_MAX_ITEMS): split the batch"
        )


def check_item_size(index: int, item: ScoreItem, settings: Settings) -> None:
    """Raise `RequestTooLarge` naming `items[index]` when its response or answer is too long."""
    limit = settings.max_response_chars
    if len(item.response) > limit:
        raise RequestTooLarge(
            f"items[{index}].response has {len(item.response)} characters; the limit is "
            f"{limit} (REWARD_MAX_RESPONSE_CHARS)",
            index,
            "response",
        )
    if isinstance(item.answer, str):
        answer = item.answer
    elif json_size_bound(item.answer) <= limit:
        return  # the text cannot be over the limit: not worth writing it to measure it
    else:
        answer = canonical_json(item.answer)
    if len(answer) > limit:
        raise RequestTooLarge(
            f"items[{index}].answer has {len(answer)} characters; the limit is {limit} "
            "(REWARD_MAX_RESPONSE_CHARS)",
            index,
            "answer",
        )


def json_size_bound(value: Any) -> float:
    """At least as many characters as `canonical_json(value)` has (infinite for a value
    it does not bound): a character of text is at most 6 (`\\u001f`), a float at most
    24 (`-2.2250738585072014e-308`), an int at most a third of its bits plus a sign."""
    if isinstance(value, str):
        return 6 * len(value) + 2
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 24
    if isinstance(value, list | tuple):
        return 2 + sum(json_size_bound(element) + 1 for element in value)
    if isinstance(value, dict):
        return 2 + sum(json_size_bound(str(key)) + json_size_bound(element) + 2
                       for key, element in value.items())
    return math.inf


def plainly_valid(item: ScoreItem, settings: Settings) -> bool:
    """A cheap test that is True only for an item `check_item_size` and `item_errors`
    pass: a registered type, no options, a text or finite number answer or a flat list of
    them (a box, OCR's golds), each text within its limit. False decides nothing: the
    full checks then run (most requests are such items, and the full checks cost the
    warm path more than this)."""
    limit = settings.max_response_chars
    answer = item.answer
    kind = type(answer)
    if kind is str:
        plain_answer = len(answer) <= limit
    elif kind is list:
        plain_answer = _plain_list(answer, limit)
    elif kind is int:
        plain_answer = answer.bit_length() // 3 + 2 <= limit  # `json_size_bound`'s
    else:
        plain_answer = kind is float and math.isfinite(answer)
    return (plain_answer and not item.options and len(item.response) <= limit
            and (item.id is None or len(item.id) <= settings.max_id_chars)
            and registry.is_registered(item.answer_type))


# `plainly_valid`'s list answers: at most this many elements.
PLAIN_LIST_LENGTH = 64


def _plain_list(answer: list[Any], limit: int) -> bool:
    """Whether `answer` is at most `PLAIN_LIST_LENGTH` texts, ints and finite floats whose
    JSON is within `limit` characters by `json_size_bound` (one pass, no recursion)."""
    if len(answer) > PLAIN_LIST_LENGTH:
        return False
    size = 2
    for element in answer:
        kind = type(element)
        if kind is str:
            size += 6 * len(element) + 3
        elif kind is int:
            size += element.bit_length() // 3 + 3
        elif kind is float and math.isfinite(element):
            size += 25
        else:
            return False
    return size <= limit


def reference_error(value: Any, depth: int = 0) -> str | None:
    """Why `value` is not a reference (a string, number, bool or a list of them), or None."""
    if isinstance(value, bool | str | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, list | tuple):
        if depth >= 3:
            return "nested more than 3 lists deep"
        for element in value:
            error = reference_error(element, depth + 1)
            if error is not None:
                return error
        return None
    return f"must be a string, a number or a list of them, not {type(value).__name__}"


def item_errors(
    index: int, item: ScoreItem, max_id_chars: int = DEFAULT_MAX_ID_CHARS
) -> list[FieldError]:
    """Every problem of one item (empty when it is valid)."""
    errors = []
    if item.id is not None and len(item.id) > max_id_chars:
        errors.append(
            FieldError(
                index,
                ("id",),
                f"id has {len(item.id)} characters; the limit is {max_id_chars} "
                "(REWARD_MAX_ID_CHARS)",
            )
        )
    if not registry.is_registered(item.answer_type):
        errors.append(
            FieldError(
                index,
                ("answer_type",),
                f"unknown answer_type {item.answer_type!r}; known: {', '.join(registry.names())}",
            )
        )
    else:
        try:
            registry.build_options(item.answer_type, item.options)
        except registry.OptionsError as exc:
            errors.append(FieldError(index, ("options", *exc.field.split(".")), exc.message))
    reference = reference_error(item.answer)
    if reference is not None:
        errors.append(FieldError(index, ("answer",), reference))
    return errors


def item_problems(
    items: Sequence[ScoreItem | FieldError], settings: Settings, first_index: int = 0
) -> dict[int, list[FieldError]]:
    """Every invalid item's errors by its index, in item order (empty when all are valid).

    The limits hold for the whole request, invalid items included: the first item over
    one raises `RequestTooLarge`, whatever else is wrong with it or with other items.
    Plainly valid items (`plainly_valid`) skip the full checks. A `FieldError` in `items`
    stands for an item the transport could not parse. `first_index`: the index of
    `items[0]` in the whole request (a stream's later messages), for errors that name it.
    """
    check_count(len(items), settings)
    problems: dict[int, list[FieldError]] = {}
    for index, item in enumerate(items, first_index):
        if isinstance(item, FieldError):
            problems[index] = [item]
        elif not plainly_valid(item, settings):
            check_item_size(index, item, settings)
            found = item_errors(index, item, settings.max_id_chars)
            if found:
                problems[index] = found
    return problems


def validate_items(items: Sequence[ScoreItem], settings: Settings, first_index: int = 0) -> None:
    """Raise `RequestTooLarge` or `RequestInvalid` unless the whole request can be scored
    (see `item_problems`)."""
    problems = item_problems(items, settings, first_index)
    if problems:
        raise RequestInvalid([error for found in problems.values() for error in found])
