#!/usr/bin/env bash
# The trainer end to end on a CPU, in about five minutes: a tiny model built offline, a
# reward server started here, then warm-up -> curate -> stage 1 -> stage 2 -> plot.
#
#   bash scripts/demo.sh            (or: make demo)
#
# Everything goes to runs/demo/, the plot to runs/demo/plot.png (docs/demo_plot.png is a
# committed copy of one run, shown in docs/trainer.md). PYTHON (default .venv/bin/python)
# and DEMO_PORT (default 8765) can be set. The run is seeded: on one machine it draws the
# same curves every time.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
PORT=${DEMO_PORT:-8765}
URL="http://127.0.0.1:${PORT}"
DEMO=runs/demo
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

rm -rf "$DEMO"
mkdir -p "$DEMO"

echo "== tiny model and synthetic data (copy the digit shown)"
"$PY" -m trainer_client.tiny_models "$DEMO/tiny-model"
"$PY" -m trainer_client.synthetic "$DEMO/data" --rows 64

echo "== reward server on $URL"
"$PY" -m services.cli serve --host 127.0.0.1 --port "$PORT" >"$DEMO/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if "$PY" -c "import httpx, sys; sys.exit(httpx.get('$URL/health').status_code != 200)" \
      2>/dev/null; then
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DEMO/server.log"; exit 1; }
  sleep 0.2
done

echo "== format warm-up: the tiny model learns to answer <answer>D</answer>"
"$PY" -m trainer_client.cli warmup --model "$DEMO/tiny-model" \
  --data "$DEMO/data/warmup.jsonl" --out "$DEMO/warm-model" --steps 60 --lr 1e-2

echo "== curate: 8 rollouts per row, keep rows with mean reward in (0.0, 0.6)"
"$PY" -m trainer_client.cli curate --model "$DEMO/warm-model" --data "$DEMO/data/pool.jsonl" \
  --out "$DEMO/curated.jsonl" --samples 8 --window 0.0,0.6 --max-new-tokens 6 \
  --reward-url "$URL"

echo "== stage 1: answer-only GRPO"
"$PY" -m trainer_client.cli train --stage 1 --config configs/tiny-stage1.yaml \
  --set "reward_url=$URL"

echo "== stage 2: chain-of-thought GRPO from stage 1's best checkpoint, 25% answer-only rows"
"$PY" -m trainer_client.cli train --stage 2 --config configs/tiny-stage2.yaml \
  --init-from "$DEMO/stage1/best" --set "reward_url=$URL"

echo "== eval of stage 2's best model (greedy)"
"$PY" -m trainer_client.cli eval --model "$DEMO/stage2/best" \
  --data "$DEMO/data/stage1.jsonl" "$DEMO/data/stage2.jsonl" --max-new-tokens 10 \
  --reward-url "$URL"

echo "== plot"
"$PY" -m trainer_client.cli plot "$DEMO/stage1" "$DEMO/stage2" --out "$DEMO/plot.png"
