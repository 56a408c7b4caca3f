"""`reward-server`: start the HTTP and gRPC service, show the registry and the settings,
or validate a deployment against the known answers.

    reward-server serve --host 127.0.0.1 --port 8000 [--grpc-port 50051 | --no-grpc]
                        [--workers N] [--item-timeout-s S]
    reward-server answer-types
    reward-server settings        # the settings table, as Markdown (used in the README)
    reward-server validate --url URL [--answer-types T ...] [--transport http|grpc]
                           [--timeout S] [--retries N] [--min-agreement [TYPE=]FRACTION]
                           [--rows PATH] [--json]

`validate` exits 0 when every answer type meets its threshold, 1 when one does not, and
2 when the suite cannot run (the service does not answer its health check).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from reward_server import registry
from reward_server.settings import Settings


def _settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default: Any = "one per CPU core" if field.default_factory else field.default
        rows.append(f"| `REWARD_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="reward-server",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP and gRPC service")
    serve.add_argument("--host", help="bind address (REWARD_HOST)")
    serve.add_argument("--port", type=int, help="HTTP port (REWARD_PORT)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port, 0 = off (REWARD_GRPC_PORT)")
    serve.add_argument("--no-grpc", action="store_true", help="serve HTTP only")
    serve.add_argument("--workers", type=int, help="verifier processes (REWARD_WORKERS)")
    serve.add_argument(
        "--item-timeout-s", type=float, help="per-item limit (REWARD_ITEM_TIMEOUT_S)"
    )
    serve.add_argument("--log-level", default="info")
    commands.add_parser("answer-types", help="print the registry as JSON")
    commands.add_parser("settings", help="print the settings table (Markdown)")
    _add_validate(commands)
    args = parser.parse_args(argv)

    if args.command == "validate":
        raise SystemExit(_validate(args))

    if args.command == "answer-types":
        print(json.dumps(registry.describe(), indent=2, default=str))
        return
    if args.command == "settings":
        print(_settings_table())
        return

    from services.serve import serve

    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "grpc_port": 0 if args.no_grpc else args.grpc_port,
            "workers": args.workers,
            "item_timeout_s": args.item_timeout_s,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(settings, log_level=args.log_level)


def _add_validate(commands: Any) -> None:
    from services.validate_defaults import (
        DEFAULT_CONCURRENCY,
        DEFAULT_RETRIES,
        DEFAULT_TIMEOUT_S,
        TRANSPORTS,
    )

    validate = commands.add_parser(
        "validate", help="send the known answers to a deployment and report its agreement"
    )
    validate.add_argument("--url", required=True,
                          help="the deployment: http://host:8000 or grpc://host:50051")
    validate.add_argument("--answer-types", nargs="+", choices=registry.names(),
                          metavar="TYPE", help="only these answer types (default: all)")
    validate.add_argument("--transport", choices=TRANSPORTS,
                          help="default: gRPC for a grpc:// URL, else HTTP")
    validate.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                          help="limit of one request, in seconds")
    validate.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                          help="requests in flight at once")
    validate.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                          help="times an item that timed out or failed in transport is resent")
    validate.add_argument(
        "--min-agreement", action="append", default=[], metavar="[TYPE=]FRACTION",
        help="pass a type (or all) when this share of its rows agrees, instead of the "
        "default: every row this version gets right; repeatable",
    )
    validate.add_argument("--rows", action="append", type=Path, metavar="PATH",
                          help="rows files or directories to send instead of the built-in ones")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")


def _rows_files(paths: list[Path] | None) -> list[Path] | None:
    if not paths:
        return None
    files = []
    for path in paths:
        files += sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return files


def _validate(args: argparse.Namespace) -> int:
    from reward_server.known_answers import RowError
    from services.validate import ValidationUnavailable, parse_min_agreement, run_validation

    try:
        min_agreement = parse_min_agreement(args.min_agreement)
    except ValueError as exc:
        print(f"reward-server validate: {exc}", file=sys.stderr)
        return 2
    try:
        report = run_validation(
            args.url,
            answer_types=args.answer_types,
            transport=args.transport,
            timeout_s=args.timeout,
            concurrency=args.concurrency,
            min_agreement=min_agreement,
            files=_rows_files(args.rows),
            retries=args.retries,
        )
    except (ValidationUnavailable, RowError, OSError) as exc:
        print(f"reward-server validate: cannot run: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.text())
    return 0 if report.passed else 1


if __name__ == "__main__":
    main()
