"""End to end: GRPO against a real reward server process, on tiny offline models.

The synthetic task (`trainer_client.synthetic`): the prompt shows a digit, the answer is
that digit, the server's `number` verifier scores it. `warm_model` (conftest) has learned
the `<answer>D</answer>` layout but not the copying, so rewards start low and GRPO has to
raise them. Every run is seeded; the tiny configs are the shipped `configs/tiny-*.yaml`
with paths overridden.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from trainer_client.checkpoint import BEST, FINAL, STATE_FILE, load_state
from trainer_client.config import load_config
from trainer_client.errors import ModelLoadError
from trainer_client.metrics import read_metrics
from trainer_client.policy import load_policy
from trainer_client.train import train

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGE1_YAML = REPO_ROOT / "configs" / "tiny-stage1.yaml"
STAGE2_YAML = REPO_ROOT / "configs" / "tiny-stage2.yaml"


def stage1_config(reward_server: str, model: Path, data: Path, out: Path, *extra: str):
    return load_config(STAGE1_YAML, 1, overrides=[
        f"model={model}", f"data=[{data}]", f"output_dir={out}",
        f"reward_url={reward_server}", "eval_data=[]", *extra,
    ])


@pytest.fixture(scope="module")
def stage1_run(
    reward_server: str, warm_model: Path, demo_data: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    out = tmp_path_factory.mktemp("stage1")
    config = stage1_config(reward_server, warm_model, demo_data["stage1"], out,
                           f"eval_data=[{demo_data['heldout']}]", "eval_every=5")
    result = train(config, progress=False)
    assert result.final == out / FINAL and result.best == out / BEST
    return out


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_grpo_raises_mean_reward(stage1_run: Path) -> None:
    records = read_metrics(stage1_run)
    assert [r["step"] for r in records] == list(range(1, 21))
    rewards = [r["reward/mean"] for r in records]
    start, end = mean(rewards[:3]), mean(rewards[-5:])
    # Seeded run: the copy-the-digit reward climbs from chance level (~0.1) to ~0.4.
    assert start < 0.25, rewards
    assert end > start + 0.15, rewards
    last = records[-1]
    for key in ("reward/digits", "acc_reward/mean", "format_reward/mean", "component/accuracy",
                "response_length/mean", "clip_fraction", "approx_kl", "entropy", "grad_norm",
                "zero_signal_groups", "groups", "unscored", "time/rollout_s", "time/scoring_s",
                "time/update_s", "prompts/answer_only"):
        assert key in last, key
    assert last["groups"] == 8 and last["unscored"] == 0
    assert last["entropy"] > 0
    assert last["skipped_optimizer_steps"] == 0 and last["lr"] == 2e-3  # no warm-up of 20


def test_held_out_eval_keeps_the_best_checkpoint(stage1_run: Path) -> None:
    records = read_metrics(stage1_run)
    evaluated = {r["step"]: r["eval/reward/mean"] for r in records if "eval/reward/mean" in r}
    assert sorted(evaluated) == [5, 10, 15, 20]  # every eval_every steps and the last
    assert all("eval/reward/digits" in r for r in records if r["step"] in evaluated)
    best_step = max(evaluated, key=lambda step: (evaluated[step], -step))  # first of the top
    best = load_state(stage1_run / BEST)
    assert best["step"] == best_step and best["best_eval"] == evaluated[best_step]
    assert load_state(stage1_run / FINAL)["best_step"] == best_step
    assert evaluated[best_step] > evaluated[5] or best_step == 5


def test_same_seed_same_curve(
    reward_server: str, warm_model: Path, demo_data: dict[str, Path], tmp_path: Path
) -> None:
    runs = []
    for name in ("first", "second"):
        config = stage1_config(reward_server, warm_model, demo_data["stage1"], tmp_path / name,
                               "total_steps=3", f"eval_data=[{demo_data['heldout']}]",
                               "eval_every=3", "save_every=100")
        train(config, progress=False)
        runs.append([{k: v for k, v in r.items() if not k.startswith("time/")}
                     for r in read_metrics(tmp_path / name)])
    assert runs[0] == runs[1]  # every reward, loss, grad norm and held-out reward, exactly
    assert runs[0][-1]["loss"] != 0.0  # and the steps did train

def test_checkpoints_hold_everything_to_resume(stage1_run: Path) -> None:
    final = stage1_run / FINAL
    state = load_state(final)
    assert state["step"] == 20 and state["stage"] == 1
    assert state["optimizer"]["state"], "AdamW moments are saved"
    assert state["sampler"]["batches"] == 20
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    # one step checkpoint (save_every 10, the last step goes to `final`)
    assert (stage1_run / "checkpoints" / "step_000010" / STATE_FILE).is_file()
    policy = load_policy(final, "cpu")  # weights + tokenizer load like a hub checkpoint
    assert policy.tokenizer.chat_template


def test_resume_reproduces_the_same_next_step(
    reward_server: str, warm_model: Path, demo_data: dict[str, Path], tmp_path: Path
) -> None:
    # Two optimizer steps per batch (old log-probs recomputed, clipping active) and a KL
    # term to a frozen reference, so the resumed state has every moving part. It starts
    # from the warmed-up model, not stage 1's final one: a policy that GRPO has already
    # sharpened answers alike in every group, leaving no signal and no update to compare.
    extra = ["save_every=2", "mini_batches_per_step=2", "kl_coef=0.05", "lr=1.0e-3"]
    model = warm_model
    straight = stage1_config(reward_server, model, demo_data["stage1"], tmp_path / "straight",
                             "total_steps=3", *extra)
    train(straight, progress=False)
    interrupted = stage1_config(reward_server, model, demo_data["stage1"], tmp_path / "resumed",
                                "total_steps=2", *extra)
    train(interrupted, progress=False)
    resumed = stage1_config(reward_server, model, demo_data["stage1"], tmp_path / "resumed",
                            "total_steps=3", *extra)
    train(resumed, resume=True, progress=False)

    a, b = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "resumed")
    assert [r["step"] for r in b] == [1, 2, 3]
    assert a[2]["reward/mean"] == b[2]["reward/mean"]
    assert a[2]["trained_samples"] == b[2]["trained_samples"]
    for key in ("loss", "grad_norm", "kl_ref", "approx_kl"):
        assert a[2][key] == pytest.approx(b[2][key], rel=1e-4, abs=1e-6), key
    assert a[2]["approx_kl"] > 0  # the second mini-batch saw moved weights
    wa = load_policy(tmp_path / "straight" / FINAL, "cpu").model.state_dict()
    wb = load_policy(tmp_path / "resumed" / FINAL, "cpu").model.state_dict()
    for name, tensor in wa.items():
        torch.testing.assert_close(tensor, wb[name], rtol=1e-5, atol=1e-6, msg=name)


def test_stage2_mixes_the_configured_share(
    reward_server: str, stage1_run: Path, demo_data: dict[str, Path], tmp_path: Path
) -> None:
    config = load_config(STAGE2_YAML, 2, overrides=[
        f"init_from={stage1_run / BEST}", f"data=[{demo_data['stage2']}]", "eval_data=[]",
        f"normal_data=[{demo_data['stage1']}]", f"sft_warmup_data=[{demo_data['warmup_cot']}]",
        f"output_dir={tmp_path}", f"reward_url={reward_server}",
        "normal_share=0.25", "prompts_per_step=4", "group_size=4", "total_steps=6",
        "sft_warmup_steps=5",
    ])
    train(config, progress=False)
    records = read_metrics(tmp_path)
    answer_only = [r["prompts/answer_only"] for r in records]
    cot = [r["prompts/chain_of_thought"] for r in records]
    assert sum(answer_only) == 6 and sum(cot) == 18  # 25% of 6 x 4 prompts
    assert all(a + c == 4 for a, c in zip(answer_only, cot, strict=True))
    assert {"reward/digits", "reward/digits-cot"} <= set().union(*records)
    assert load_state(tmp_path / FINAL)["stage"] == 2
    assert not (tmp_path / BEST).exists()  # no held-out rows: no best to keep


def test_stage2_names_a_missing_stage1_checkpoint(tmp_path: Path) -> None:
    config = load_config(STAGE2_YAML, 2, overrides=[
        f"init_from={tmp_path / 'stage1' / BEST}", f"output_dir={tmp_path / 'run'}",
    ])
    with pytest.raises(ModelLoadError, match="stage-1 checkpoint .* does not exist") as error:
        train(config, progress=False)
    assert "--init-from" in error.value.hint


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_tiny_vlm_trains_one_step_with_an_image(
    reward_server: str, tiny_vlm: Path, tmp_path: Path
) -> None:
    rows = [
        {"id": f"img-{i}", "images": [png(color)], "problem": "<image>\nHow many dots?",
         "answer": [str(i)], "problem_type": "counting", "answer_type": "number",
         "source": "pixmo", "prompt_type": "normal"}
        for i, color in enumerate(["red", "blue"])
    ]
    data = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    config = stage1_config(
        reward_server, tiny_vlm, data, tmp_path / "run", "total_steps=1", "prompts_per_step=2",
        "group_size=2", "max_new_tokens=4", "sft_warmup_steps=1",
        # a random model rarely earns a reward; train on the (zero) advantages anyway so the
        # image-conditioned forward and backward pass runs
        "skip_zero_signal_groups=false",
    )
    train(config, progress=False)
    record = read_metrics(tmp_path / "run")[0]
    assert record["trained_samples"] == 4 and record["tokens_trained"] > 0
    assert record["entropy"] > 0
    policy = load_policy(tmp_path / "run" / FINAL, "cpu")
    assert policy.is_vision


def test_unknown_answer_types_are_skipped_not_fatal(
    reward_server: str, warm_model: Path, tmp_path: Path
) -> None:
    rows = [json.dumps({"id": "ok", "problem": "Copy the digit: 3.", "answer": ["3"],
                        "answer_type": "number", "prompt_type": "normal"}),
            json.dumps({"id": "bad", "problem": "?", "answer": ["3"],
                        "answer_type": "telepathy", "prompt_type": "normal"})]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(rows) + "\n")
    config = stage1_config(reward_server, warm_model, data, tmp_path / "run", "total_steps=1",
                           "prompts_per_step=1", "group_size=2")
    train(config, progress=False)
    assert len(read_metrics(tmp_path / "run")) == 1
