"""The gRPC transport of `RewardClient` (`reward.v1.RewardService`, see `proto/`).

Imported only when a client uses gRPC (`grpc://host:port`), so the HTTP-only client does
not need grpcio. Items and results are the same dicts as over HTTP: an item dict is turned
into a `ScoreItem` message (`answer` as a `google.protobuf.Value`, `options` as a
`Struct`), a result message back into the HTTP result dict (streams add `index`).

A refused request (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) raises `RewardRequestError`
whose message lists the server's `google.rpc.BadRequest` field violations
(`items[3].answer_type: unknown answer_type ...`). UNAVAILABLE, DEADLINE_EXCEEDED,
INTERNAL, UNKNOWN and ABORTED are `Retryable` (the client retries batch calls).

`GrpcConnection` is the async connection `RewardClient` uses (one `grpc.aio` channel);
`stream_sync` is the blocking stream (a plain `grpc` channel, whose own thread sends the
items). Batch calls carry a deadline of `timeout_s`; a stream has none (it lasts as long
as its items do).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import message as protobuf_message
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reward_client._proto.reward.v1 import reward_pb2, reward_pb2_grpc
from reward_client._values import from_value, to_struct, to_value
from reward_client.client import Retryable, RewardRequestError, RewardServerError

SERVICE_NAME = reward_pb2.DESCRIPTOR.services_by_name["RewardService"].full_name
RETRYABLE_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
})
_REQUIRED = ("answer_type", "response", "answer")
_OPTIONAL = ("id", "problem_type", "prompt_type", "choices", "options")
# the server sizes its own limit from its settings; results of a big batch exceed 4 MB
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1),
                    ("grpc.max_send_message_length", -1)]


def to_message(index: int, item: dict[str, Any]) -> reward_pb2.ScoreItem:
    """An item dict (the HTTP item) as a `ScoreItem`; `RewardRequestError` names a bad field."""
    unknown = sorted(set(item) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise RewardRequestError(f"items[{index}]: unknown field(s) {', '.join(unknown)}")
    for field in _REQUIRED:
        if field not in item:
            raise RewardRequestError(f"items[{index}].{field}: field required")
    message = reward_pb2.ScoreItem()
    for field, value in item.items():
        if value is None and field in _OPTIONAL:
            continue
        try:
            if field == "answer":
                message.answer.CopyFrom(to_value(value))
            elif field == "options":
                message.options.CopyFrom(to_struct(value))
            elif field == "choices":
                message.choices.extend(value)
            elif field == "id":
                message.id = str(value)
            else:
                setattr(message, field, value)
        except (TypeError, ValueError, AttributeError, protobuf_message.Error) as exc:
            raise RewardRequestError(f"items[{index}].{field}: {exc}") from exc
    return message


def to_dict(result: reward_pb2.ScoreResult, with_index: bool = False) -> dict[str, Any]:
    """A `ScoreResult` as the HTTP result dict (plus `index` for streams)."""
    out: dict[str, Any] = {
        "id": result.id if result.HasField("id") else None,
        "reward": result.reward,
        "acc_reward": result.acc_reward,
        "format_reward": result.format_reward,
        "components": dict(result.components),
        "extracted": result.extracted if result.HasField("extracted") else None,
        "status": result.status,
        "error": result.error if result.HasField("error") else None,
        "cached": result.cached,
    }
    if with_index:
        out["index"] = result.index
    return out


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The `(field, description)` pairs of the error's `google.rpc.BadRequest`, if any."""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        violations = []
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                violations += [(v.field, v.description) for v in bad_request.field_violations]
        return violations
    return []


def translate(error: grpc.RpcError, what: str) -> Exception:
    """`Retryable` for a passing fault, else `RewardRequestError` with the server's words."""
    code = error.code()
    if code in RETRYABLE_CODES:
        return Retryable(f"gRPC {code.name}: {error.details()}")
    violations = field_violations(error)
    listed = "".join(f"\n  {field}: {description}" for field, description in violations[:20])
    return RewardRequestError(f"{what} refused the request (gRPC {code.name}): "
                              f"{error.details()}{listed}")


class GrpcConnection:
    """One `grpc.aio` channel to `target` (`host:port`), used by `RewardClient`."""

    def __init__(self, target: str, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel: aio.Channel | None = None
        self._stub: reward_pb2_grpc.RewardServiceStub | None = None

    async def __aenter__(self) -> GrpcConnection:
        self._channel = aio.insecure_channel(self.target, options=_CHANNEL_OPTIONS)
        self._stub = reward_pb2_grpc.RewardServiceStub(self._channel)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._channel is not None:
            await self._channel.close()

    @property
    def stub(self) -> reward_pb2_grpc.RewardServiceStub:
        if self._stub is None:
            raise RuntimeError("use GrpcConnection in `async with`")
        return self._stub

    async def score(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        request = reward_pb2.ScoreRequest(
            items=[to_message(index, item) for index, item in enumerate(chunk)]
        )
        try:
            response = await self.stub.Score(request, timeout=self.timeout_s)
        except aio.AioRpcError as exc:
            raise translate(exc, "Score") from exc
        return [to_dict(result) for result in response.results]

    async def stream(
        self, items: AsyncIterable[dict[str, Any]], per_message: int = 1
    ) -> AsyncIterator[dict[str, Any]]:
        """ScoreStream; `per_message` items go in each message (and come back together)."""
        failure: list[Exception] = []

        async def requests() -> AsyncIterator[reward_pb2.ScoreRequest]:
            index, group = 0, reward_pb2.ScoreRequest()
            try:
                async for item in items:
                    group.items.append(to_message(index, item))
                    index += 1
                    if len(group.items) == per_message:
                        yield group
                        group = reward_pb2.ScoreRequest()
                if group.items:
                    yield group
            except Exception as exc:  # noqa: BLE001 - raised to the caller after the results
                failure.append(exc)

        call = self.stub.ScoreStream(requests())
        try:
            async for result in call:
                yield to_dict(result, with_index=True)
        except aio.AioRpcError as exc:
            raise translate(exc, "ScoreStream") from exc
        finally:
            call.cancel()  # no-op when finished; stops the call when the caller stops early
        if failure:
            raise failure[0]

    async def health(self) -> dict[str, Any]:
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=self.timeout_s
            )
        except aio.AioRpcError as exc:
            raise translate(exc, "Health.Check") from exc
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return {"status": "ok" if status == "SERVING" else status.lower()}

    async def answer_types(self) -> list[dict[str, Any]]:
        try:
            response = await self.stub.ListAnswerTypes(
                reward_pb2.ListAnswerTypesRequest(), timeout=self.timeout_s
            )
        except aio.AioRpcError as exc:
            raise translate(exc, "ListAnswerTypes") from exc
        return [
            {"name": row.name, "description": row.description, "expects": row.expects,
             "options": {name: {"default": from_value(option.default), "type": option.type,
                                "help": option.help}
                         for name, option in sorted(row.options.items())}}
            for row in response.answer_types
        ]


def stream_sync(
    target: str, items: Iterable[dict[str, Any]], per_message: int = 1
) -> Iterator[dict[str, Any]]:
    """Blocking ScoreStream: results (with `index`) as they are ready; `per_message` items
    go in each message (and come back together).

    Raises `RewardRequestError` for a refused item, `RewardServerError` for a fault.
    """
    failure: list[Exception] = []

    def requests() -> Iterator[reward_pb2.ScoreRequest]:
        # runs in grpc's sending thread: a bad item ends the stream, then is raised here
        iterator, index = iter(items), 0
        try:
            while group := list(itertools.islice(iterator, per_message)):
                yield reward_pb2.ScoreRequest(
                    items=[to_message(index + j, item) for j, item in enumerate(group)]
                )
                index += len(group)
        except Exception as exc:  # noqa: BLE001
            failure.append(exc)

    with grpc.insecure_channel(target, options=_CHANNEL_OPTIONS) as channel:
        call = reward_pb2_grpc.RewardServiceStub(channel).ScoreStream(requests())
        try:
            for result in call:
                yield to_dict(result, with_index=True)
        except grpc.RpcError as exc:
            error = translate(exc, "ScoreStream")
            if isinstance(error, Retryable):
                raise RewardServerError(f"stream to {target} failed: {error}") from exc
            raise error from exc
        finally:
            call.cancel()
    if failure:
        raise failure[0]
