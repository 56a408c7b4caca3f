"""`reward-server`: start the HTTP service, or show the registry and the settings.

    reward-server serve --host 127.0.0.1 --port 8000 [--workers N] [--item-timeout-s S]
    reward-server answer-types
    reward-server settings        # the settings table, as Markdown (used in the README)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
from typing import Any

from reward_server import registry
from reward_server.settings import Settings

log = logging.getLogger(__name__)


def _settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default: Any = "one per CPU core" if field.default_factory else field.default
        if default is None:
            default = "from the item limits"
        rows.append(f"| `REWARD_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="reward-server", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (REWARD_HOST)")
    serve.add_argument("--port", type=int, help="bind port (REWARD_PORT)")
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

    import uvicorn

    from services.http import build_app
    from services.http.limits import guarded_protocol

    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "item_timeout_s": args.item_timeout_s,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _fit_open_file_limit(settings)
    config = uvicorn.Config(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        http=guarded_protocol(settings),
        timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]
        backlog=min(2048, settings.max_connections),
    )
    asyncio.run(_serve(uvicorn.Server(config)))


async def _serve(server: Any) -> None:
    from services.http.limits import log_resource_exhaustion

    log_resource_exhaustion(asyncio.get_running_loop())
    await server.serve()


# Descriptors kept for everything but client connections: the worker pool's pipes,
# Chromium's, log files, the listening socket.
_RESERVED_FILES = 256


def _fit_open_file_limit(settings: Settings) -> Settings:
    """Raise the soft open-file limit to the hard one, and keep `max_connections` under it
    (a connection is a descriptor: past the limit, accept fails for everyone)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    room = max(1, soft - _RESERVED_FILES)
    if settings.max_connections <= room:
        return settings
    log.warning("REWARD_MAX_CONNECTIONS=%d does not fit the open-file limit %d: using %d",
                settings.max_connections, soft, room)
    return settings.model_copy(update={"max_connections": room})


if __name__ == "__main__":
    main()
