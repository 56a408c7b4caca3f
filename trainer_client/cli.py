"""`trainer-client`: curate, train, eval and plot from the command line.

    trainer-client curate --model M --data IN --out OUT [--samples 8] [--window 0.0,0.6]
    trainer-client train --stage 1|2 --config FILE [--resume] [--init-from DIR] [--set k=v]
    trainer-client eval --model M --data IN [--reward-url URL]
    trainer-client plot RUN_DIR [RUN_DIR ...] [--out PNG]
    trainer-client warmup --model M --data IN --out DIR [--steps N]   # tiny models only

Every verb that loads a model takes the model-loading knobs of the training config
(`--device`, `--trust-remote-code`, `--dtype`, `--attn-implementation`). Rewards always
come from a running reward server (`reward-server serve`).

Expected failures (a file or model that is not there, a server that does not answer, an
empty data set, a config value that cannot work) print one or two lines, what happened
and what to do, and exit with status 1; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from trainer_client.errors import TrainerClientError

PROG = "trainer-client"
DEFAULT_REWARD_URL = "http://127.0.0.1:8000"
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

log = logging.getLogger(__name__)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """`--help` shows each default and keeps the usage examples' line breaks."""


def _model_loading_arguments(parser: argparse.ArgumentParser, *, from_config: bool) -> None:
    """The config's model-loading knobs; for `train` they override the config's values
    (None = not given, keep the config's)."""
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--trust-remote-code", action=argparse.BooleanOptionalAction,
                        default=None if from_config else False,
                        help="allow the checkpoint's own modelling code (the recipe's needs it)")
    parser.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"],
                        default=None if from_config else "auto",
                        help="weights' dtype; auto = bfloat16 on a GPU, float32 on the CPU")
    parser.add_argument("--attn-implementation", default=None,
                        help="transformers attention kernel, e.g. sdpa, eager, "
                             "flash_attention_2 (default: the model's)")


def _reward_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reward-url", default=DEFAULT_REWARD_URL, help="reward server base URL")
    parser.add_argument("--reward-retries", type=int, default=5,
                        help="retries of a failed request to the reward server")


def _sampling_arguments(parser: argparse.ArgumentParser, samples: int, temperature: float) -> None:
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--data", required=True, nargs="+", help="parquet/JSONL files of rows")
    _model_loading_arguments(parser, from_config=False)
    _reward_arguments(parser)
    parser.add_argument("--samples", type=int, default=samples, help="responses per row")
    parser.add_argument("--temperature", type=float, default=temperature,
                        help="sampling temperature; 0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="longest response")
    parser.add_argument("--prompts-per-batch", type=int, default=8,
                        help="rows rolled out together")
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf", help="rollout engine")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--correct-threshold", type=float, default=1.0,
                        help="acc_reward at or above which a response counts as correct")


def _version() -> str:
    try:
        return metadata.version("reward-server")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of a failure instead of a short message")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, formatter_class=_Formatter)

    curate = command("curate", "keep rows whose mean reward is inside a window")
    _sampling_arguments(curate, samples=8, temperature=1.0)
    curate.add_argument("--out", required=True, help="output .parquet or .jsonl")
    curate.add_argument("--window", default="0.0,0.6",
                        help="keep rows with LOW < mean reward < HIGH")
    curate.add_argument("--source-window", action="append", default=[], metavar="SOURCE=LOW,HIGH",
                        help="a window for one source, e.g. infovqa=-1,2 keeps all its rows")

    train = command("train", "GRPO training of one stage")
    train.add_argument("--stage", type=int, choices=[1, 2], required=True, help="recipe stage")
    train.add_argument("--config", help="YAML file of the stage's config (configs/*.yaml)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint in output_dir")
    train.add_argument("--init-from", default=None, metavar="DIR",
                       help="stage 2: the stage-1 checkpoint to start from, e.g. "
                            "runs/stage1/best or runs/stage1/final (default: the config's)")
    train.add_argument("--keep", default=None, metavar="last,best",
                       help="checkpoints to keep: last (RUN/final) and/or best (RUN/best, by "
                            "held-out reward) (default: the config's)")
    _model_loading_arguments(train, from_config=True)
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (YAML value), e.g. --set lr=1e-6")
    train.add_argument("--help-config", action="store_true",
                       help="list the stage's config keys with defaults and help, then exit")

    evaluate = command("eval", "mean reward and Pass@1 per source")
    _sampling_arguments(evaluate, samples=1, temperature=0.0)
    evaluate.add_argument("--out", help="also write per-source numbers as JSON here")

    warmup = command(
        "warmup", "supervised format warm-up of a tiny model ('<answer>GOLD</answer>')"
    )
    warmup.add_argument("--model", required=True, help="model folder or hub id")
    warmup.add_argument("--data", required=True, nargs="+", help="rows whose golds are targets")
    warmup.add_argument("--out", required=True, help="folder to save the warmed-up model in")
    _model_loading_arguments(warmup, from_config=False)
    warmup.add_argument("--steps", type=int, default=30, help="optimizer steps")
    warmup.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate")
    warmup.add_argument("--batch-size", type=int, default=8, help="rows per step")
    warmup.add_argument("--seed", type=int, default=0, help="data order and initialisation seed")

    plot = command("plot", "PNG of reward, response length, clip fraction")
    plot.add_argument("run_dirs", nargs="+", help="run folder(s) with metrics.jsonl, in order")
    plot.add_argument("--out", help="PNG path (default: RUN_DIR/plot.png of the last run)")
    return parser


def _load_policy(args: argparse.Namespace) -> Any:
    from trainer_client.policy import load_policy

    return load_policy(args.model, args.device, trust_remote_code=args.trust_remote_code,
                       dtype=args.dtype, attn_implementation=args.attn_implementation)


def _rollout_setup(args: argparse.Namespace):  # -> (policy, engine, client, dataset)
    from reward_client import RewardClient
    from trainer_client.data import load_rows
    from trainer_client.rollout import make_engine

    client = RewardClient(args.reward_url, retries=args.reward_retries)
    dataset = load_rows(args.data, known_answer_types=client.answer_types())
    policy = _load_policy(args)
    options = {"trust_remote_code": args.trust_remote_code} if args.engine == "vllm" else {}
    engine = make_engine(args.engine, policy, **options)
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


def _window(text: str, flag: str) -> tuple[float, float]:
    from trainer_client.curate import parse_window

    try:
        return parse_window(text)
    except ValueError as exc:
        raise TrainerClientError(f"{flag}: {exc}") from None


def run_curate(args: argparse.Namespace) -> int:
    from trainer_client.curate import select, summary, write_curated
    from trainer_client.evaluate import score_rows

    window = _window(args.window, "--window")
    source_windows = {}
    for entry in args.source_window:
        source, sep, text = entry.partition("=")
        if not sep:
            raise TrainerClientError(f"--source-window {entry!r} must look like SOURCE=LOW,HIGH",
                                     "e.g. --source-window infovqa=-1,2")
        source_windows[source] = _window(text, "--source-window")
    policy, engine, client, dataset = _rollout_setup(args)
    stats = score_rows(policy, engine, client, dataset.rows, _sampling_options(args),
                       desc="curation rollouts")
    result = select(stats, window, source_windows)
    print(summary(result, dataset.report))
    if not result.kept:
        raise TrainerClientError(
            f"curate kept 0 of {len(stats)} rows (window {args.window}); nothing written",
            "widen --window, give a --source-window, or raise --samples",
        )
    out = write_curated(result.kept, args.out, args.samples)
    print(f"\nwrote {len(result.kept)} rows to {out}")
    return 0


def _train_overrides(args: argparse.Namespace) -> list[str]:
    """`--set` entries for the train flags that override config keys."""
    overrides = []
    if args.init_from is not None:
        if args.stage != 2:
            raise TrainerClientError("--init-from is for stage 2",
                                     "stage 1 starts from the config's `model`")
        overrides.append(f"init_from={json.dumps(args.init_from)}")
    if args.keep is not None:
        overrides.append(f"keep={json.dumps(args.keep)}")
    for flag in ("device", "dtype", "attn_implementation"):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{flag}={json.dumps(value)}")
    if args.trust_remote_code is not None:
        overrides.append(f"trust_remote_code={json.dumps(args.trust_remote_code)}")
    return overrides + args.set


def run_train(args: argparse.Namespace) -> int:
    from trainer_client.config import describe, load_config

    if args.help_config:
        print(describe(args.stage))
        return 0
    if not args.config:
        raise TrainerClientError("train: --config FILE is required",
                                 "start from configs/stage1.yaml or configs/stage2.yaml")
    from trainer_client.train import train

    config = load_config(args.config, args.stage, overrides=_train_overrides(args))
    result = train(config, resume=args.resume)
    if result.final is not None:
        print(f"last checkpoint: {result.final}")
    if result.best is not None:
        print(f"best checkpoint: {result.best} (held-out reward {result.best_eval:.3f} "
              f"at step {result.best_step})")
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

    try:
        print(plot_runs(args.run_dirs, args.out))
    except ValueError as exc:
        raise TrainerClientError(str(exc), "give run folders that `train` wrote") from None
    return 0


def run_warmup(args: argparse.Namespace) -> int:
    from trainer_client.checkpoint import seed_everything
    from trainer_client.data import load_rows
    from trainer_client.train import supervised_warmup

    if args.steps < 1:
        raise TrainerClientError("warmup: --steps must be at least 1")
    seed_everything(args.seed)
    dataset = load_rows(args.data)
    policy = _load_policy(args)
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


def explain(exc: BaseException) -> tuple[str, str] | None:
    """(what happened, what to do) for an expected failure; None for a bug."""
    from reward_client import RewardRequestError, RewardServerError

    if isinstance(exc, TrainerClientError):
        return exc.message, exc.hint
    if isinstance(exc, RewardServerError):
        return (f"the reward server did not answer: {exc}",
                "start one with `reward-server serve` (or `make serve`), or point "
                "--reward-url / reward_url at it")
    if isinstance(exc, RewardRequestError):
        return (f"the reward server refused the items: {exc}",
                "the rows do not fit the service's schema; see docs/trainer.md")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001  # sorted into expected failures and bugs below
        explained = explain(exc)
        if explained is None or args.debug:
            raise
        message, hint = explained
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        if hint:
            print(f"  {hint}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
