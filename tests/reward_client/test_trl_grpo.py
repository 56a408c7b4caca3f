"""TRL for real: a few `GRPOTrainer` steps on CPU with a tiny offline model, every reward
from the reward server through `reward_client.trl.reward_func`."""

from __future__ import annotations

from pathlib import Path

import httpx
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from reward_client.trl import reward_func
from tests.services.server_process import running_server
from trainer_client.tiny_models import build_tiny_text_model


def test_grpo_trainer_steps_with_server_rewards(tmp_path: Path) -> None:
    model_dir = build_tiny_text_model(tmp_path / "model")
    rows = [{"prompt": [{"role": "user", "content": f"How many dots: {'.' * n}?"}],
             "answer": str(n), "answer_type": "number"} for n in range(1, 9)]
    config = GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=4,
        max_completion_length=8, max_steps=2, logging_steps=1, report_to=[], use_cpu=True,
        save_strategy="no", learning_rate=1e-4, seed=0, dataloader_num_workers=0,
    )
    statuses: list[str] = []

    def log_extra(column: str, values: list[object]) -> None:
        if column == "reward_server_status":
            statuses.extend(str(v) for v in values)

    with running_server({"REWARD_WORKERS": "1"}) as url:
        trainer = GRPOTrainer(model=str(model_dir), reward_funcs=reward_func(url), args=config,
                              train_dataset=Dataset.from_list(rows))
        original = trainer._log_completion_extra  # noqa: SLF001 - observe what TRL is handed
        trainer._log_completion_extra = lambda c, v: (log_extra(c, v), original(c, v))  # type: ignore[method-assign]  # noqa: SLF001,E501
        trainer.train()
        assert httpx.get(url + "/health").status_code == 200
    # the server judged every completion of both steps (a random tiny model writes no
    # answer tags, so they are `no_answer`: a real, scored 0)
    assert len(statuses) == 2 * 4 and set(statuses) <= {"ok", "no_answer"}
    logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logged) == 2
    assert all("rewards/reward_server/mean" in entry for entry in logged)
    assert all(entry["reward_server/unscored"] == 0.0 for entry in logged)
