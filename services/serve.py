"""`reward-server serve`: HTTP (uvicorn) and gRPC (grpc.aio) in one process, one event
loop, one `Engine`.

Connections: the HTTP server's deadlines, connection limit and resource log are those of
`services.http.limits`.

Shutdown: SIGTERM or SIGINT makes both servers stop accepting at once; HTTP finishes its
in-flight requests (uvicorn's graceful shutdown), gRPC lets running calls finish for up to
`GRPC_GRACE_S` (its health service says NOT_SERVING meanwhile); then the engine's worker
pool is stopped and the process exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable
from types import FrameType

# The worker pool forks verifier processes that never call gRPC: gRPC's fork handlers
# have nothing to do there (and log a line per fork). Read when grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import uvicorn  # noqa: E402

from reward_server.engine import Engine  # noqa: E402
from reward_server.settings import Settings  # noqa: E402
from services.grpc import start_grpc_server  # noqa: E402
from services.http import build_app  # noqa: E402
from services.http.limits import (  # noqa: E402
    fit_open_file_limit,
    guarded_protocol,
    log_resource_exhaustion,
)

log = logging.getLogger(__name__)

GRPC_GRACE_S = 30.0
# The youngest generation's collection threshold once the server has started (see `serve`).
GC_YOUNG_THRESHOLD = 10_000
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _HttpServer(uvicorn.Server):
    """uvicorn's server that also tells us when it was asked to exit."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.on_exit()


def _log_failure(future: asyncio.Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("the start-up health probe failed", exc_info=future.exception())


def serve(settings: Settings, log_level: str = "info") -> None:
    """Serve until SIGTERM/SIGINT; gRPC too unless `settings.grpc_port` is 0."""
    asyncio.run(_serve(settings, log_level))


async def _serve(settings: Settings, log_level: str) -> None:
    loop = asyncio.get_running_loop()
    log_resource_exhaustion(loop)
    settings = fit_open_file_limit(settings)
    stopping = asyncio.Event()

    def request_stop() -> None:
        loop.call_soon_threadsafe(stopping.set)

    # uvicorn swaps in its own handlers while it serves and, when done, restores these and
    # raises the signal again: these must then only (re)request the stop, not kill us
    # before gRPC has drained.
    for sig in _SIGNALS:
        signal.signal(sig, lambda _sig, _frame: request_stop())

    engine = Engine(settings)
    try:
        grpc_server = None
        if settings.grpc_port:
            grpc_server = await start_grpc_server(engine, settings)
        http = _HttpServer(
            uvicorn.Config(
                build_app(settings, engine=engine),
                host=settings.host,
                port=settings.port,
                log_level=log_level,
                http=guarded_protocol(settings),
                timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]
                backlog=min(2048, settings.max_connections),
            ),
            on_exit=request_stop,
        )

        async def stop_grpc() -> None:
            await stopping.wait()
            if grpc_server is not None:
                await grpc_server.stop(GRPC_GRACE_S)

        grpc_stopped = asyncio.create_task(stop_grpc())
        # What the imports and start-up made lives as long as the process: out of the
        # collector's sight, so that the garbage of each request is all it walks.
        gc.collect()
        gc.freeze()
        # A warm batch of 128 items allocates thousands of objects, nearly all freed by
        # reference counts: the default threshold (700) ran the youngest collection several
        # times a request, for little garbage.
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        # the first /health probes the code sandbox: do it now, before any client waits
        loop.run_in_executor(None, engine.health).add_done_callback(_log_failure)
        try:
            await http.serve()
        finally:
            request_stop()  # HTTP ended (signal, or failed to start): gRPC ends too
            await grpc_stopped
    finally:
        await engine.aclose()  # the shared cache's connections, then the worker pool
        log.info("reward server stopped")
