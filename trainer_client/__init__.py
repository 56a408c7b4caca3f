"""A lean GRPO trainer for the LLaVA-OneVision-1.5-RL recipe.

The trainer owns the model, the rollouts and the two-stage curriculum; every reward comes
from the reward server through the `reward_client` package (HTTP `POST /score` or gRPC),
so the two halves can run on different machines. Modules:

- `prompts`: the recipe's verbatim instructions and the chat messages built from a row;
- `data`: the recipe's row schema from parquet or JSONL, bad rows reported and skipped;
- `config`: one dataclass per training stage, loaded from YAML;
- `errors`: the expected failures, each with what to do (the CLI prints them in two lines);
- `grpo`, `policy`, `rollout`, `tiny_models`: the model side (pure GRPO functions, the HF
  model wrapper, the `hf`/`vllm` rollout engines, tiny offline models for tests);
- `metrics`, `checkpoint`, `curriculum`: step metrics, resumable checkpoints (last, best),
  the stages' batches;
- `train`, `curate`, `evaluate`, `plot`, `cli`: the programs (`trainer-client ...`).
"""
