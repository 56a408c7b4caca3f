"""`reward-server`: start the HTTP and gRPC service, or show the registry and the settings.

    reward-server serve --host 127.0.0.1 --port 8000 [--grpc-port 50051 | --no-grpc]
                        [--workers N] [--item-timeout-s S]
    reward-server answer-types
    reward-server settings        # the settings table, as Markdown (used in the README)
"""

from __future__ import annotations

import argparse
import json
import logging
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
    parser = argparse.ArgumentParser(prog="reward-server", description=__doc__.split("\n")[0])
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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    main()
