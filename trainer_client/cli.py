"""`trainer-client`: curate, train, eval and plot from the command line.

    trainer-client curate --model M --data IN --out OUT --samples 8 --window 0.0,0.6 \
        --reward-url URL
    trainer-client train --stage 1|2 --config FILE [--resume] [--set key=value ...]
    trainer-client eval --model M --data IN [--reward-url URL]
    trainer-client plot RUN_DIR [RUN_DIR ...] [--out PNG]
    trainer-client warmup --model M --data IN --out DIR [--steps N]   # tiny models only

Rewards always come from a running reward server (`reward-server serve`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_REWARD_URL = "http://127.0.0.1:8000"


def _sampling_arguments(parser: argparse.ArgumentParser, samples: int, temperature: float) -> None:
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--data", required=True, nargs="+", help="parquet/JSONL files of rows")
    parser.add_argument("--reward-url", default=DEFAULT_REWARD_URL, help="reward server base URL")
    parser.add_argument("--samples", type=int, default=samples, help="responses per row")
    parser.add_argument("--temperature", type=float, default=temperature,
                        help="sampling temperature; 0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--prompts-per-batch", type=int, default=8,
                        help="rows rolled out together")
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf", help="rollout engine")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--correct-threshold", type=float, default=1.0,
                        help="acc_reward at or above which a response counts as correct")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainer-client", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    curate = commands.add_parser("curate", help="keep rows whose mean reward is inside a window")
    _sampling_arguments(curate, samples=8, temperature=1.0)
    curate.add_argument("--out", required=True, help="output .parquet or .jsonl")
    curate.add_argument("--window", default="0.0,0.6",
                        help="keep rows with LOW < mean reward < HIGH (default 0.0,0.6)")
    curate.add_argument("--source-window", action="append", default=[], metavar="SOURCE=LOW,HIGH",
                        help="a window for one source, e.g. infovqa=-1,2 keeps all its rows")

    train = commands.add_parser("train", help="GRPO training of one stage")
    train.add_argument("--stage", type=int, choices=[1, 2], required=True)
    train.add_argument("--config", help="YAML file of the stage's config")
    train.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint in output_dir")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (YAML value), e.g. --set lr=1e-6")
    train.add_argument("--help-config", action="store_true",
                       help="list the stage's config keys with defaults and help, then exit")

    evaluate = commands.add_parser("eval", help="mean reward and Pass@1 per source")
    _sampling_arguments(evaluate, samples=1, temperature=0.0)
    evaluate.add_argument("--out", help="also write per-source numbers as JSON here")

    warmup = commands.add_parser(
        "warmup", help="supervised format warm-up of a tiny model ('<answer>GOLD</answer>')"
    )
    warmup.add_argument("--model", required=True, help="model folder or hub id")
    warmup.add_argument("--data", required=True, nargs="+", help="rows whose golds are targets")
    warmup.add_argument("--out", required=True, help="folder to save the warmed-up model in")
    warmup.add_argument("--steps", type=int, default=30)
    warmup.add_argument("--lr", type=float, default=1e-2)
    warmup.add_argument("--batch-size", type=int, default=8)
    warmup.add_argument("--seed", type=int, default=0)
    warmup.add_argument("--device", default=None)

    plot = commands.add_parser("plot", help="PNG of reward, response length, clip fraction")
    plot.add_argument("run_dirs", nargs="+", help="run folder(s) with metrics.jsonl, in order")
    plot.add_argument("--out", help="PNG path (default: RUN_DIR/plot.png of the last run)")
    return parser


def _rollout_setup(args: argparse.Namespace):  # -> (policy, engine, client, dataset)
    from reward_client import RewardClient
    from trainer_client.data import load_rows
    from trainer_client.policy import load_policy
    from trainer_client.rollout import make_engine

    client = RewardClient(args.reward_url, progress=True)
    dataset = load_rows(args.data, known_answer_types=client.answer_types())
    policy = load_policy(args.model, args.device)
    engine = make_engine(args.engine, policy)
    return policy, engine, client, dataset


def _sampling_options(args: argparse.Namespace):
    from trainer_client.evaluate import SamplingOptions

    return SamplingOptions(
        samples=args.samples,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        prompts_per_batch=args.prompts_per_batch,
        seed=args.seed,
        correct_threshold=args.correct_threshold,
    )


def run_curate(args: argparse.Namespace) -> int:
    from trainer_client.curate import parse_window, select, summary, write_curated
    from trainer_client.evaluate import score_rows

    window = parse_window(args.window)
    source_windows = {}
    for entry in args.source_window:
        source, sep, text = entry.partition("=")
        if not sep:
            raise SystemExit(f"--source-window {entry!r} must look like SOURCE=LOW,HIGH")
        source_windows[source] = parse_window(text)
    policy, engine, client, dataset = _rollout_setup(args)
    stats = score_rows(policy, engine, client, dataset.rows, _sampling_options(args),
                       desc="curation rollouts")
    result = select(stats, window, source_windows)
    out = write_curated(result.kept, args.out, args.samples)
    print(summary(result, dataset.report))
    print(f"\nwrote {len(result.kept)} rows to {out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from trainer_client.config import describe, load_config

    if args.help_config:
        print(describe(args.stage))
        return 0
    if not args.config:
        raise SystemExit("train: --config FILE is required (see configs/*.yaml)")
    from trainer_client.train import train

    config = load_config(args.config, args.stage, overrides=args.set)
    final = train(config, resume=args.resume)
    print(f"final checkpoint: {final}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from trainer_client.evaluate import evaluation_table, per_source, score_rows

    policy, engine, client, dataset = _rollout_setup(args)
    stats = score_rows(policy, engine, client, dataset.rows, _sampling_options(args),
                       desc="eval rollouts")
    print(dataset.report.summary())
    print(evaluation_table(stats))
    if args.out:
        Path(args.out).write_text(json.dumps(per_source(stats), indent=2))
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from trainer_client.plot import plot_runs

    print(plot_runs(args.run_dirs, args.out))
    return 0


def run_warmup(args: argparse.Namespace) -> int:
    from trainer_client.checkpoint import seed_everything
    from trainer_client.data import load_rows
    from trainer_client.policy import load_policy
    from trainer_client.train import supervised_warmup

    if args.steps < 1:
        raise SystemExit("warmup: --steps must be at least 1")
    seed_everything(args.seed)
    dataset = load_rows(args.data)
    policy = load_policy(args.model, args.device)
    losses = supervised_warmup(policy, dataset.rows, args.steps, args.lr, args.batch_size,
                               args.seed)
    print(f"warm-up loss {losses[0]:.3f} -> {losses[-1]:.3f}; saved to {policy.save(args.out)}")
    return 0


COMMANDS = {
    "curate": run_curate,
    "train": run_train,
    "eval": run_eval,
    "plot": run_plot,
    "warmup": run_warmup,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO; a training run sends thousands.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
