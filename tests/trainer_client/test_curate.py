"""Discrepancy-driven curation: the window rule, the written rows, the summary, and a run
scored by the real reward server."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from reward_client import RewardClient
from trainer_client.curate import histogram, parse_window, select, summary, write_curated
from trainer_client.data import LoadReport, Row, load_rows
from trainer_client.evaluate import RowStats, SamplingOptions, row_stats, score_rows
from trainer_client.policy import PromptInputs, load_policy
from trainer_client.rollout import Rollout


def stats(row_id: str, mean_reward: float, scored: int = 8, source: str = "s") -> RowStats:
    row = Row(id=row_id, problem="p", answer="1", answer_type="number", source=source)
    return RowStats(row, scored, mean_reward, mean_reward, float(mean_reward > 0))


def test_window_drops_always_and_never_solved_rows() -> None:
    result = select([stats("never", 0.0), stats("always", 1.0), stats("latent", 0.25),
                     stats("edge", 0.6), stats("lost", math.nan, scored=0)])
    assert [s.row.id for s in result.kept] == ["latent"]
    assert result.reasons == {"never solved (at or below window)": 1,
                              "too easy (at or above window)": 2, "unscored": 1}


def test_rejected_responses_make_a_row_never_solved_not_unscored() -> None:
    row = Row(id="r", problem="p", answer="1", answer_type="number")
    rejected = {"status": "rejected", "reward": 0.0, "acc_reward": 0.0,
                "error": "the verifier refused the response"}
    s = row_stats(row, [rejected, rejected, {"status": "timeout", "reward": 0.0}], 1.0, ())
    assert (s.scored, s.mean_reward, s.pass_at_1, s.pass_at_n) == (2, 0.0, 0.0, 0.0)
    assert select([s]).reasons == {"never solved (at or below window)": 1}


def test_a_source_window_keeps_everything_of_that_source() -> None:
    rows = [stats("a", 0.0, source="ocr"), stats("b", 1.0, source="ocr"), stats("c", 1.0)]
    kept = select(rows, (0.0, 0.6), {"ocr": parse_window("-1,2")}).kept
    assert [s.row.id for s in kept] == ["a", "b"]


@pytest.mark.parametrize("text", ["0.6,0.0", "abc", "0.1", "0.1,0.2,0.3"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(text)


def test_kept_rows_are_written_with_their_columns(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    records = [{"id": f"r{i}", "problem": "p", "answer": ["1"], "answer_type": "number",
                "source": "s", "extra": i} for i in range(3)]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = load_rows(source).rows
    kept = [RowStats(rows[2], 8, 0.25, 0.25, 1.0), RowStats(rows[0], 8, 0.5, 0.375, 1.0)]
    out = write_curated(kept, tmp_path / "out.jsonl", samples=8)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["id"] for w in written] == ["r0", "r2"]  # file order
    assert written[0] == {**records[0], "mean_reward": 0.5, "pass_at_1": 0.375,
                          "pass_at_n": 1.0, "num_samples": 8}
    pq_out = write_curated(kept, tmp_path / "out.parquet", samples=8)
    assert pq.read_table(pq_out).column("mean_reward").to_pylist() == [0.5, 0.25]


def test_image_rows_round_trip_from_parquet_to_jsonl(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    record = {"id": "img", "images": [buffer.getvalue()], "problem": "<image>How many?",
              "answer": ["2"], "answer_type": "number", "source": "pixmo"}
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([record]), source)
    row = load_rows(source).rows[0]
    out = write_curated([RowStats(row, 4, 0.25, 0.25, 1.0)], tmp_path / "out.jsonl", samples=4)
    # JSONL has no bytes: images are written as base64, which the loader reads back
    assert json.loads(out.read_text())["images"] == [base64.b64encode(buffer.getvalue()).decode()]
    again = load_rows(out).rows[0]
    assert again.load_images()[0].getpixel((0, 0)) == (255, 0, 0)


def test_summary_counts_rows_per_source_and_type() -> None:
    result = select([stats("a", 0.0, source="pixmo"), stats("b", 0.3, source="pixmo"),
                     stats("c", 0.5, source="ai2d")])
    report = LoadReport(total=4)
    report.skipped["missing answer"] = 1
    text = summary(result, report)
    assert "rows read 4, kept 3, skipped 1 (missing answer 1)" in text
    assert "pixmo" in text and "ai2d" in text and "answer_type" in text
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert lines["pixmo"][1:3] == ["2", "1"] and lines["all"][1:3] == ["3", "2"]
    assert "never solved (at or below window) 1" in text


def test_histogram_bins() -> None:
    text = histogram([0.0, 0.05, 0.55, 1.0, 1.5], bins=10)
    lines = text.splitlines()
    assert lines[1].split()[2] == "2"  # [0.0, 0.1)
    assert lines[6].split()[2] == "1"  # [0.5, 0.6)
    assert lines[10].split()[2] == "1"  # [0.9, 1.0]
    assert lines[11].startswith("(1.0, 1.5]")  # spatial bonus above 1


class ScriptedEngine:
    """A rollout engine that answers from a script: the model side is not under test here,
    the server's scoring and the curation rule are."""

    def __init__(self, script: list[list[str]]) -> None:
        self.script = list(script)  # responses of each prompt, in the order prompts come

    def generate(self, prompts: list[PromptInputs], n: int, **_: object) -> list[Rollout]:
        rollouts = []
        for i, prompt in enumerate(prompts):
            texts = self.script.pop(0)
            assert len(texts) == n
            rollouts += [Rollout(i, prompt, torch.tensor([1]), text, "stop") for text in texts]
        return rollouts

    def sync_weights(self, policy: object) -> None:
        del policy


def test_curation_with_real_scores(reward_server: str, tiny_text_model: Path,
                                   tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(
        json.dumps({"id": name, "problem": "Copy the digit: 3.", "answer": ["3"],
                    "answer_type": "number", "source": "digits", "prompt_type": "normal"}) + "\n"
        for name in ("always", "never", "latent")))
    right, wrong = "<answer>3</answer>", "<answer>8</answer>"
    engine = ScriptedEngine([[right] * 4, [wrong, "no tag 3"] * 2,
                             [wrong, right, wrong, "<answer>three</answer>"]])
    client = RewardClient(reward_server)
    rows = load_rows(data, known_answer_types=client.answer_types()).rows
    policy = load_policy(tiny_text_model, "cpu")
    options = SamplingOptions(samples=4, prompts_per_batch=2)
    scored = score_rows(policy, engine, client, rows, options)
    by_id = {s.row.id: s for s in scored}
    assert by_id["always"].mean_reward == 1.0 and by_id["never"].mean_reward == 0.0
    assert by_id["latent"].mean_reward == 0.5  # "three" counts as 3 for the number verifier
    assert by_id["latent"].pass_at_1 == 0.5 and by_id["latent"].pass_at_n == 1.0
    assert by_id["never"].pass_at_n == 0.0
    result = select(scored, parse_window("0.0,0.6"))
    assert [s.row.id for s in result.kept] == ["latent"]
