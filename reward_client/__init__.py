"""The light client of the reward service: no torch, no verifier imports.

`RewardClient(url)` scores items over HTTP (`POST /score`) with batching, retries and
timeouts; `is_scored` tells a real reward from a service fault.
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
