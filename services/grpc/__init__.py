"""The gRPC transport: `reward.v1.RewardService`, health and reflection (grpc.aio)."""

from services.grpc.server import GrpcServer, RewardService, start_grpc_server

__all__ = ["GrpcServer", "RewardService", "start_grpc_server"]
