"""Checkpoints a run can resume from exactly.

Layout of a run directory::

    RUN/metrics.jsonl                 one JSON object per step (see `metrics`)
    RUN/checkpoints/step_000050/      model weights + tokenizer/processor (`Policy.save`)
                    .../trainer_state.pt   optimizer state, step, data cursor, RNG states
    RUN/final/                        the same, after the last step (`keep: last`)
    RUN/best/                         the same, at the step with the highest held-out
                                      reward so far (`keep: best`; stage 2 starts here)

A checkpoint is written to `NAME.tmp` and renamed when complete, so a crash mid-save never
leaves a half checkpoint that `--resume` would pick. Only the newest `keep` step
checkpoints are kept. Restoring the RNG states (Python, NumPy, torch CPU and CUDA) along
with the weights, AdamW moments and the data cursor makes the next step after a resume
the same step the uninterrupted run would have taken.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
FINAL = "final"
BEST = "best"
_STEP_RE = re.compile(r"^step_(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(
    run_dir: Path, name: str, policy: Any, state: dict[str, Any], keep: int | None = None
) -> Path:
    """Write `policy` and `state` (plus RNG states) to RUN/checkpoints/NAME (or RUN/final)."""
    target = run_dir / name if name in (FINAL, BEST) else run_dir / "checkpoints" / name
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    policy.save(tmp)
    torch.save({**state, "rng": rng_state()}, tmp / STATE_FILE)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    log.info("checkpoint saved: %s", target)
    if keep is not None and name not in (FINAL, BEST):
        for old in step_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old)
    return target


def step_checkpoints(run_dir: Path) -> list[Path]:
    """Complete step checkpoints, oldest first."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := _STEP_RE.match(p.name)) and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The checkpoint with the highest step (the final one counts, the best one does not:
    a run continues from where it stopped), or None."""
    candidates = step_checkpoints(run_dir)
    if (run_dir / FINAL / STATE_FILE).is_file():
        candidates.append(run_dir / FINAL)
    best: Checkpoint | None = None
    for path in candidates:
        state = load_state(path)
        if best is None or int(state["step"]) > best.step:
            best = Checkpoint(path, state)
    return best


def load_state(path: Path) -> dict[str, Any]:
    # The state holds numpy RNG arrays and plain Python objects we wrote ourselves.
    return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
