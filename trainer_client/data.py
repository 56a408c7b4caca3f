"""The recipe's data rows, read from parquet or JSONL.

A row (RECIPE.md, "Data rows") has `id`, `images` (a list), `problem` (text with `<image>`
markers), `answer` (a list of strings; several for OCR), `problem_type`, `answer_type`,
`source` and `prompt_type` (`normal` = answer-only, anything else = chain of thought).
Optional `choices` (option texts, A first) and `options` (verifier knobs) are passed on
to the reward server as they are.

An image may be given as raw bytes, a `{"bytes": ..., "path": ...}` struct (the Hugging
Face `datasets` image feature), a file path (relative paths are resolved against the data
file's folder), or a base64 string (with or without a `data:image/...;base64,` prefix).

Bad rows never stop a run: a row with no problem, no answer, an answer type the server
does not know, or an image that cannot be decoded is logged with its id, skipped, and
counted by reason in `LoadReport`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from trainer_client.errors import DataError
from trainer_client.prompts import ANSWER_ONLY_PROMPT_TYPE, build_messages, is_answer_only

log = logging.getLogger(__name__)

# An image reference after loading: encoded bytes, or a file to read when needed. Decoding
# is deferred so a 67K-row data set does not sit in memory as pixels.
ImageRef = bytes | Path

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


class BadRow(ValueError):
    """A row that cannot be trained on; `reason` is the short label counted in reports."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Row:
    id: str
    problem: str
    answer: Any
    answer_type: str
    problem_type: str | None = None
    prompt_type: str = ANSWER_ONLY_PROMPT_TYPE
    source: str = "unknown"
    images: tuple[ImageRef, ...] = ()
    choices: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Where the row came from, so curation can copy the original record unchanged.
    file: str = ""
    index: int = -1

    @property
    def answer_only(self) -> bool:
        return is_answer_only(self.prompt_type)

    def load_images(self) -> list[Image.Image]:
        return [open_image(ref) for ref in self.images]

    def messages(self, vision: bool) -> list[dict[str, Any]]:
        return build_messages(
            self.problem,
            prompt_type=self.prompt_type,
            problem_type=self.problem_type,
            num_images=len(self.images),
            vision=vision,
        )

    def score_item(self, response: str, item_id: str | None = None) -> dict[str, Any]:
        """The `/score` item for one response to this row (the service's item schema)."""
        item: dict[str, Any] = {
            "id": item_id if item_id is not None else self.id,
            "answer_type": self.answer_type,
            "response": response,
            "answer": self.answer,
            "problem_type": self.problem_type,
            "prompt_type": self.prompt_type,
        }
        if self.choices is not None:
            item["choices"] = list(self.choices)
        if self.options:
            item["options"] = dict(self.options)
        return item

    @property
    def first_answer(self) -> str:
        """One gold as text (used by the supervised format warm-up)."""
        if isinstance(self.answer, list) and self.answer and not _is_number(self.answer[0]):
            return str(self.answer[0])
        return json.dumps(self.answer) if isinstance(self.answer, list) else str(self.answer)


@dataclass
class LoadReport:
    total: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    bad_ids: list[tuple[str, str]] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return self.total - sum(self.skipped.values())

    def add_bad(self, row_id: str, error: BadRow) -> None:
        self.skipped[error.reason] += 1
        self.bad_ids.append((row_id, error.detail))
        log.warning("skipping row %s: %s", row_id, error)

    def merge(self, other: LoadReport) -> None:
        self.total += other.total
        self.skipped.update(other.skipped)
        self.bad_ids.extend(other.bad_ids)

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
        return f"rows read {self.total}, kept {self.kept}" + (
            f", skipped {sum(self.skipped.values())} ({reasons})" if self.skipped else ""
        )


@dataclass
class Dataset:
    rows: list[Row]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.rows)

    def answer_only(self) -> list[Row]:
        return [row for row in self.rows if row.answer_only]

    def chain_of_thought(self) -> list[Row]:
        return [row for row in self.rows if not row.answer_only]


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The raw records of a parquet or JSONL file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist", "check the --data / data: paths")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
                yield from batch.to_pylist()
        except pa.ArrowInvalid as exc:
            raise DataError(f"{path} is not a readable parquet file: {exc}") from None
    elif path.suffix.lower() in JSONL_SUFFIXES:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    # Keep the line's place so the row is reported, not silently lost.
                    record = {"__invalid__": f"line {number}: {exc.msg}"}
                yield record if isinstance(record, dict) else {"__invalid__": f"line {number}"}
    else:
        raise DataError(
            f"{path}: unknown data format {path.suffix!r}",
            f"use one of {', '.join(PARQUET_SUFFIXES + JSONL_SUFFIXES)}",
        )


def load_rows(
    paths: str | Path | Sequence[str | Path],
    known_answer_types: Collection[str] | None = None,
    check_images: bool = True,
    require_rows: bool = True,
) -> Dataset:
    """Rows of one or more files; bad rows are logged, skipped and counted.

    No usable row at all raises `DataError` (unless `require_rows` is false), as does a
    file that does not exist.
    `known_answer_types` is normally the server's `/answer-types`; None accepts any type.
    `check_images` decodes each image once so unreadable ones are caught here rather than
    in the middle of a training step.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    rows: list[Row] = []
    report = LoadReport()
    seen: set[str] = set()
    for path in paths:
        path = Path(path)
        for index, record in enumerate(read_records(path)):
            report.total += 1
            row_id = _row_id(record, path, index)
            try:
                row = parse_row(record, path, index, known_answer_types, check_images)
                if row.id in seen:
                    raise BadRow("duplicate id", f"id {row.id!r} appears more than once")
            except BadRow as error:
                report.add_bad(row_id, error)
                continue
            seen.add(row.id)
            rows.append(row)
    log.info("%s", report.summary())
    if not rows and require_rows:
        names = ", ".join(str(p) for p in paths)
        raise DataError(
            f"no usable row in {names} ({report.summary()})",
            "an empty file, or a curate run that kept nothing? docs/trainer.md has the row schema",
        )
    return Dataset(rows, report)


def parse_row(
    record: dict[str, Any],
    path: Path,
    index: int,
    known_answer_types: Collection[str] | None = None,
    check_images: bool = True,
) -> Row:
    if "__invalid__" in record:
        raise BadRow("unreadable record", str(record["__invalid__"]))
    problem = record.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise BadRow("missing problem", "no problem text")
    answer = _normalize_answer(record.get("answer"))
    answer_type = record.get("answer_type")
    if not isinstance(answer_type, str) or not answer_type:
        raise BadRow("missing answer_type", "no answer_type")
    if known_answer_types is not None and answer_type not in known_answer_types:
        raise BadRow(
            "unknown answer_type",
            f"{answer_type!r} is not served (known: {', '.join(sorted(known_answer_types))})",
        )
    images = tuple(
        _image_ref(value, path.parent, check_images) for value in _as_list(record.get("images"))
    )
    choices = record.get("choices")
    options = record.get("options") or {}
    if not isinstance(options, dict):
        raise BadRow("bad options", "options must be a mapping")
    return Row(
        id=_row_id(record, path, index),
        problem=problem,
        answer=answer,
        answer_type=answer_type,
        problem_type=record.get("problem_type") or None,
        prompt_type=record.get("prompt_type") or ANSWER_ONLY_PROMPT_TYPE,
        source=str(record.get("source") or "unknown"),
        images=images,
        choices=tuple(str(c) for c in choices) if choices else None,
        options=dict(options),
        file=str(path),
        index=index,
    )


def _row_id(record: dict[str, Any], path: Path, index: int) -> str:
    value = record.get("id")
    return str(value) if value not in (None, "") else f"{path.name}:{index}"


def _normalize_answer(answer: Any) -> Any:
    """The reference as `/score` takes it; a one-element list of strings becomes the string.

    The recipe stores every answer as a list of strings; only OCR rows use several. Some
    verifiers (multiple-choice) expect one gold, and all accept a single string.
    """
    if hasattr(answer, "tolist"):  # numpy arrays from some parquet readers
        answer = answer.tolist()
    if answer is None or answer == "" or answer == []:
        raise BadRow("missing answer", "no reference answer")
    if isinstance(answer, list):
        if any(item is None or (isinstance(item, str) and not item.strip()) for item in answer):
            raise BadRow("missing answer", "an empty gold in the answer list")
        if len(answer) == 1 and isinstance(answer[0], str):
            return answer[0]
    elif isinstance(answer, str) and not answer.strip():
        raise BadRow("missing answer", "blank reference answer")
    return answer


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if hasattr(value, "tolist") and not isinstance(value, bytes):
        value = value.tolist()
    return list(value) if isinstance(value, list | tuple) else [value]


def _image_ref(value: Any, base: Path, check: bool) -> ImageRef:
    ref = _to_ref(value, base)
    if check:
        open_image(ref)
    return ref


def _to_ref(value: Any, base: Path) -> ImageRef:
    if isinstance(value, dict):
        if value.get("bytes"):
            return _to_ref(value["bytes"], base)
        if value.get("path"):
            return _to_ref(value["path"], base)
        raise BadRow("unreadable image", "image struct has neither bytes nor path")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        if value.startswith("data:"):
            return _b64(value.split(",", 1)[-1], value)
        # A short string naming an existing file is a path; anything else must be base64
        # (which may itself contain "/", so that is tried second, not ruled out).
        if len(value) < 4096:
            candidate = Path(value)
            candidate = candidate if candidate.is_absolute() else base / candidate
            if candidate.is_file():
                return candidate
        return _b64(value, value)
    raise BadRow("unreadable image", f"unsupported image value of type {type(value).__name__}")


def _b64(text: str, original: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        shown = original if len(original) <= 80 else original[:77] + "..."
        raise BadRow("unreadable image", f"neither an image file nor base64: {shown}") from None


def open_image(ref: ImageRef) -> Image.Image:
    """Decode an image reference to RGB; BadRow("unreadable image") when it cannot be."""
    try:
        source = io.BytesIO(ref) if isinstance(ref, bytes) else ref
        with Image.open(source) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        where = "bytes" if isinstance(ref, bytes) else str(ref)
        raise BadRow("unreadable image", f"cannot decode image ({where}): {exc}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
