"""Reading the recipe's rows from parquet and JSONL; bad rows reported and skipped."""

from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from trainer_client.data import BadRow, load_rows, open_image
from trainer_client.errors import DataError

KNOWN = {"number", "multiple-choice", "ocrtext", "bbox"}


def png_bytes(color: str = "red", size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def row(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": "r1",
        "images": [],
        "problem": "<image>How many dots?",
        "answer": ["3"],
        "problem_type": "counting",
        "answer_type": "number",
        "source": "pixmo",
        "prompt_type": "normal",
    }
    return {**base, **overrides}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_parquet_rows_with_image_bytes_and_hf_structs(tmp_path: Path) -> None:
    image = png_bytes()
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.Table.from_pylist([row(id="a", images=[image])]), raw)
    # the Hugging Face `datasets` image feature stores {"bytes", "path"}
    hf = tmp_path / "hf.parquet"
    hf_row = row(id="b", images=[{"bytes": image, "path": None}], answer=["x", "y"],
                 answer_type="ocrtext", source="infovqa", prompt_type="long")
    pq.write_table(pa.Table.from_pylist([hf_row]), hf)
    data = load_rows([raw, hf], KNOWN)
    assert [r.id for r in data.rows] == ["a", "b"]
    first, second = data.rows
    assert first.answer == "3"  # a one-gold list becomes the gold itself
    assert second.answer == ["x", "y"]  # several OCR golds stay a list
    assert first.answer_only and not second.answer_only
    assert first.load_images()[0].size == (8, 6)
    assert second.load_images()[0].getpixel((0, 0)) == (255, 0, 0)
    assert data.report.kept == 2 and not data.report.skipped


def test_jsonl_images_as_paths_and_base64(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "dots.png").write_bytes(png_bytes("blue"))
    encoded = base64.b64encode(png_bytes("green")).decode()
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            row(id="rel", images=["img/dots.png"]),  # relative to the data file
            row(id="b64", images=[encoded]),
            row(id="uri", images=["data:image/png;base64," + encoded]),
        ],
    )
    data = load_rows(path, KNOWN)
    colors = [r.load_images()[0].getpixel((0, 0)) for r in data.rows]
    assert colors == [(0, 0, 255), (0, 128, 0), (0, 128, 0)]


def test_bad_rows_are_reported_by_id_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rows.jsonl"
    write_jsonl(
        path,
        [
            row(id="good"),
            row(id="no-answer", answer=[]),
            row(id="blank-answer", answer=[""]),
            row(id="bad-type", answer_type="telepathy"),
            row(id="bad-image", images=[b"not an image".hex()]),
            row(id="missing-file", images=["img/nothing.png"]),
            row(id="no-problem", problem=""),
            row(id="good"),  # duplicate id
        ],
    )
    with path.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    with caplog.at_level(logging.WARNING):
        data = load_rows(path, KNOWN)
    assert [r.id for r in data.rows] == ["good"]
    report = data.report
    assert report.total == 9 and report.kept == 1
    assert report.skipped == {
        "missing answer": 2,
        "unknown answer_type": 1,
        "unreadable image": 2,
        "missing problem": 1,
        "duplicate id": 1,
        "unreadable record": 1,
    }
    reported = {row_id for row_id, _ in report.bad_ids}
    assert {"no-answer", "bad-type", "bad-image", "missing-file", "rows.jsonl:8"} <= reported
    assert "bad-type" in caplog.text and "telepathy" in caplog.text
    assert "skipped 8" in report.summary()


def test_unknown_answer_types_pass_when_no_list_is_given(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [row(answer_type="new-type")])
    assert len(load_rows(path)) == 1


def test_score_item_follows_the_score_contract(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [row(answer=["B"], answer_type="multiple-choice", choices=["cat", "dog"],
             options={"strict_tags": False})],
    )
    item = load_rows(path, KNOWN).rows[0].score_item("<answer>B</answer>", item_id="r1#0")
    assert item == {
        "id": "r1#0",
        "answer_type": "multiple-choice",
        "response": "<answer>B</answer>",
        "answer": "B",
        "problem_type": "counting",
        "prompt_type": "normal",
        "choices": ["cat", "dog"],
        "options": {"strict_tags": False},
    }


def test_messages_follow_the_row_prompt_type(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [row(prompt_type="long", images=[])])
    messages = load_rows(path).rows[0].messages(vision=False)
    assert messages[1]["content"].startswith("Think and solve")
    assert messages[1]["content"].endswith("How many dots?")


def test_unknown_file_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id\n1\n")
    with pytest.raises(ValueError, match="unknown data format"):
        load_rows(path)


def test_missing_and_empty_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file .*nope.jsonl does not exist"):
        load_rows(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no usable row in .*empty.jsonl") as error:
        load_rows(empty)
    assert "row schema" in error.value.hint
    assert len(load_rows(empty, require_rows=False)) == 0


def test_open_image_rejects_garbage() -> None:
    with pytest.raises(BadRow, match="unreadable image"):
        open_image(b"\x89PNG garbage")
