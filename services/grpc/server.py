"""The gRPC service `reward.v1.RewardService` (grpc.aio) on an `Engine` shared with HTTP.

Thin, like the HTTP app: convert the proto to `ScoreItem`s (`services.grpc.convert`),
validate with `reward_server.validation` (the one path both transports use), score with
the engine, convert back. Errors map as the proto's header says: `RequestInvalid` is
INVALID_ARGUMENT with a `google.rpc.BadRequest` detail naming `items[i].field`,
`RequestTooLarge` is RESOURCE_EXHAUSTED. Model output never fails a call.

Beside it the server runs the standard `grpc.health.v1.Health` service (SERVING for ""
and for `reward.v1.RewardService`, NOT_SERVING once shutting down) and server reflection.

Deadlines and cancellation: grpc.aio cancels a call's handler when its deadline passes or
its client goes away; the engine then drops the verifications only that call waited for.

Message size: a request within the item limits (REWARD_MAX_ITEMS items of at most
REWARD_MAX_RESPONSE_CHARS each) always fits the transport's limit, so a too-large item is
refused by our validation with a message that names it, not by the transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import NoReturn, cast

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from reward_client._proto.reward.v1 import reward_pb2, reward_pb2_grpc
from reward_server import registry
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ScoreItem
from reward_server.validation import RequestInvalid, RequestTooLarge, validate_items
from services.grpc import convert

log = logging.getLogger(__name__)

SERVICE_NAME = reward_pb2.DESCRIPTOR.services_by_name["RewardService"].full_name
_MAX_MESSAGE_BYTES = 2**31 - 1  # gRPC's own ceiling (a signed 32-bit length)
_ITEM_OVERHEAD_BYTES = 64 * 1024  # id, types, choices, options and framing of one item
_UTF8_MAX_BYTES = 4  # bytes of one character, at most


def message_limit_bytes(settings: Settings) -> int:
    """The largest message accepted or sent: what the item limits allow, within gRPC's."""
    per_item = 2 * _UTF8_MAX_BYTES * settings.max_response_chars + _ITEM_OVERHEAD_BYTES
    return min(_MAX_MESSAGE_BYTES, settings.max_items * per_item)


async def _refuse(
    context: grpc.aio.ServicerContext, exc: RequestInvalid | RequestTooLarge
) -> NoReturn:
    """End the call with the code and the `BadRequest` detail of a refused request."""
    bad_request = error_details_pb2.BadRequest()
    if isinstance(exc, RequestInvalid):
        code = code_pb2.INVALID_ARGUMENT
        for error in exc.errors:
            bad_request.field_violations.add(field=error.path, description=error.message)
    else:
        code = code_pb2.RESOURCE_EXHAUSTED
        if exc.index is not None:
            bad_request.field_violations.add(
                field=f"items[{exc.index}].{exc.field}", description=exc.message
            )
    status = status_pb2.Status(code=code, message=exc.message)
    if bad_request.field_violations:
        status.details.add().Pack(bad_request)
    await context.abort_with_status(rpc_status.to_status(status))


class RewardService(reward_pb2_grpc.RewardServiceServicer):
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def validated_items(
        self, messages: Sequence[reward_pb2.ScoreItem], first_index: int = 0
    ) -> list[ScoreItem]:
        """Convert and validate; raises `RequestInvalid` or `RequestTooLarge`."""
        items = convert.to_items(messages, first_index)
        validate_items(items, self.settings, first_index)
        return items

    async def Score(  # noqa: N802 - the proto's method name
        self, request: reward_pb2.ScoreRequest, context: grpc.aio.ServicerContext
    ) -> reward_pb2.ScoreResponse:
        try:
            items = self.validated_items(request.items)
        except (RequestInvalid, RequestTooLarge) as exc:
            await _refuse(context, exc)
        with self.engine.metrics.request_seconds.labels("grpc").time():
            results = await self.engine.score(items)
        return reward_pb2.ScoreResponse(
            results=[convert.to_result(result, index) for index, result in enumerate(results)]
        )

    async def ScoreStream(  # noqa: N802
        self,
        request_iterator: AsyncIterator[reward_pb2.ScoreRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[reward_pb2.ScoreResult]:
        stream = _Stream(self, request_iterator)
        try:
            async for result in stream.results():
                yield result
        except (RequestInvalid, RequestTooLarge) as exc:
            await _refuse(context, exc)
        finally:
            stream.cancel()

    async def ListAnswerTypes(  # noqa: N802
        self, request: reward_pb2.ListAnswerTypesRequest, context: grpc.aio.ServicerContext
    ) -> reward_pb2.ListAnswerTypesResponse:
        return convert.answer_types(registry.describe())


_END = object()


class _Stream:
    """One ScoreStream call: reads messages while fewer than `max_items` items are pending,
    scores each message as its own engine call (so it is answered as soon as it is
    ready, whatever the others do), and hands the results out in completion order. A bad
    message stops the reading; the items accepted before it are still answered, then the
    error is raised."""

    def __init__(self, service: RewardService, requests: AsyncIterator[reward_pb2.ScoreRequest]):
        self.service = service
        self.requests = requests
        self.window = asyncio.Semaphore(service.settings.max_items)
        self.ready: asyncio.Queue[object] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.reader: asyncio.Task[None] | None = None

    async def results(self) -> AsyncIterator[reward_pb2.ScoreResult]:
        self.reader = asyncio.create_task(self._read())
        while True:
            got = await self.ready.get()
            if got is _END:
                return
            if isinstance(got, BaseException):
                raise got
            # resumes once the message is written: only then is its slot free
            yield cast(reward_pb2.ScoreResult, got)
            self.window.release()

    async def _read(self) -> None:
        count = 0
        failure: BaseException | None = None
        try:
            async for request in self.requests:
                items = self.service.validated_items(request.items, first_index=count)
                for _ in items:  # window full: stop reading, let flow control push back
                    await self.window.acquire()
                task = asyncio.create_task(self._score(count, items))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                count += len(items)
        except Exception as exc:  # noqa: BLE001 - a bad message or a broken stream ends the call
            failure = exc
        if self.tasks:
            await asyncio.wait(set(self.tasks))
        self.ready.put_nowait(failure if failure is not None else _END)

    async def _score(self, first_index: int, items: list[ScoreItem]) -> None:
        if not items:
            return
        try:
            results = await self.service.engine.score(items)
        except Exception as exc:  # noqa: BLE001 - a fault of ours: end the call with it
            log.exception("scoring stream items from %d failed", first_index)
            self.ready.put_nowait(exc)
            return
        for index, result in enumerate(results, first_index):
            self.ready.put_nowait(convert.to_result(result, index))

    def cancel(self) -> None:
        """Stop reading and drop what is still pending (the call ended or was cancelled)."""
        if self.reader is not None:
            self.reader.cancel()
        for task in list(self.tasks):
            task.cancel()


@dataclass
class GrpcServer:
    """A started grpc.aio server and its health service."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, refuse new calls, let running ones finish for `grace_s`."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_grpc_server(
    engine: Engine, settings: Settings, port: int | None = None
) -> GrpcServer:
    """Start serving `reward.v1.RewardService`, health and reflection on `settings.host`.

    `port` defaults to `settings.grpc_port`; 0 picks a free port (tests read `.port`).
    """
    limit = message_limit_bytes(settings)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
    ])
    reward_pb2_grpc.add_RewardServiceServicer_to_server(RewardService(engine, settings), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(
        _address(settings.host, settings.grpc_port if port is None else port)
    )
    await server.start()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC on %s", _address(settings.host, bound))
    return GrpcServer(server, health_servicer, bound)
