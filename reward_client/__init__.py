"""The light client of the reward service: no torch, no verifier imports.

`RewardClient(url)` scores items over HTTP (`http://host:8000`, `POST /score`) or gRPC
(`grpc://host:50051`, `reward.v1.RewardService`; grpcio is imported only then), with
batching, retries and timeouts (`score`/`ascore`) or as a stream (`stream`/`astream`);
`is_scored` tells a real reward from a service fault.
"""

from reward_client.client import (
    UNSCORED_STATUSES,
    RewardClient,
    RewardRequestError,
    RewardServerError,
    is_scored,
)

__all__ = [
    "UNSCORED_STATUSES",
    "RewardClient",
    "RewardRequestError",
    "RewardServerError",
    "is_scored",
]
