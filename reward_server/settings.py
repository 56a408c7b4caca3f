"""The service's one configuration object, read from `REWARD_*` environment variables.

Every default lives here and only here; the README's settings table is generated from
this class (`python -m services.cli settings`).
"""

from __future__ import annotations

import os

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REWARD_", frozen=True)

    host: str = Field("127.0.0.1", description="Address the HTTP and gRPC servers bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port the HTTP server binds.")
    grpc_port: int = Field(
        50051, ge=0, le=65535,
        description="Port the gRPC server binds, on the same host (0 turns gRPC off).",
    )
    workers: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        description="Verifier worker processes (default: one per CPU core).",
    )
    warm_up: bool = Field(
        True,
        description="Workers warm up as they start (imports, the math parser, Chromium), "
        "before taking items.",
    )
    item_timeout_s: float = Field(
        5.0, gt=0, description="Hard limit per item; an overrunning worker is killed."
    )
    worker_memory_mb: int = Field(
        2048,
        ge=256,
        description="Memory a verifier worker, with every process it starts (Chromium), may "
        "add to what it inherits at start: private resident memory, checked every 0.1 s; "
        "past it the worker is killed and its item gets `error`.",
    )
    retry_workers: int = Field(
        2,
        ge=1,
        description="Processes that verify an overrunning item a second time, alone, on a "
        "CPU-time budget (an item that overruns again while computing is `rejected`).",
    )
    max_items: int = Field(
        4096, ge=1,
        description="Most items in one request (else 413 / RESOURCE_EXHAUSTED), and in flight "
        "in one gRPC stream.",
    )
    max_response_chars: int = Field(
        1_000_000, ge=1, description="Longest `response` or `answer` text accepted (else 413 / "
        "RESOURCE_EXHAUSTED)."
    )
    max_id_chars: int = Field(
        256, ge=1, description="Longest item `id` accepted (else 422)."
    )
    max_body_bytes: int | None = Field(
        None,
        ge=1,
        description="Largest request body, refused (413) as it streams in, before parsing. "
        "Default: REWARD_MAX_ITEMS x 16 KiB plus room for one item whose response and answer "
        "are at REWARD_MAX_RESPONSE_CHARS, written as JSON escapes (12 bytes a character).",
    )
    max_connections: int = Field(
        512,
        ge=1,
        description="Open HTTP connections served at once; one more is answered 503 and "
        "closed at once (kept under the open-file limit at start-up).",
    )
    keep_alive_timeout_s: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this long."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A connection whose request line and headers have not all arrived this "
        "long after it opened (or after its previous response) is closed.",
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A request whose body has not all arrived this long after its headers "
        "is dropped and its connection closed.",
    )
    cache_size: int = Field(
        100_000, ge=0, description="Verdicts kept in the in-process LRU cache (0 disables)."
    )
    format_weight: float = Field(
        0.0,
        allow_inf_nan=False,
        description="Weight of format_reward blended into reward (the recipe uses 0).",
    )
    spatial_bonus: float = Field(
        0.5,
        allow_inf_nan=False,
        description="Added to spatial-reasoning rewards when a <think> block states a box "
        "(the recipe's bonus).",
    )
    redis_url: str | None = Field(
        None,
        description="Shared verdict cache under the local one, e.g. redis://redis:6379/0 "
        "(unset or empty: local cache only).",
    )
    redis_ttl_s: int = Field(
        7 * 24 * 3600, ge=1, description="How long a verdict stays in the shared cache."
    )
    redis_timeout_s: float = Field(
        0.25,
        gt=0,
        description="Limit of one shared-cache call; a slower or absent Redis is skipped "
        "(local cache only) until it answers again.",
    )

    @field_validator("redis_url")
    @classmethod
    def _empty_url_is_none(cls, value: str | None) -> str | None:
        # `REWARD_REDIS_URL=` (set but empty) is how a compose file turns the cache off
        return value or None

    @property
    def body_limit_bytes(self) -> int:
        """`max_body_bytes`, or the default sized from the item limits (see its help)."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return self.max_items * 16 * 1024 + 2 * 6 * self.max_response_chars

    # -- general-code: the sandbox that runs the model's programs (reward_server.sandbox) --
    code_item_limit_s: float = Field(
        4.0,
        gt=0,
        description="Wall-clock budget for all tests of one general-code item (capped at "
        "0.8 x REWARD_ITEM_TIMEOUT_S, whose kill remains the outer bound).",
    )
    code_memory_mb: int = Field(
        512, ge=32, description="Address-space limit of a sandboxed program (MiB)."
    )
    code_processes: int = Field(
        32, ge=4, description="Processes and threads a sandboxed program may have at once."
    )
    code_output_bytes: int = Field(
        1_048_576, ge=1024, description="Bytes a sandboxed program may print per test."
    )
    code_file_bytes: int = Field(
        1_048_576, ge=0, description="Largest file a sandboxed program may write."
    )
    code_open_files: int = Field(
        64, ge=8, description="Open file descriptors a sandboxed program may hold."
    )
    code_python: str | None = Field(
        None,
        description="Interpreter run inside the sandbox (default: the system python3 "
        "under /usr).",
    )
    code_uid: int = Field(
        65534, ge=1, description="Unprivileged uid that starts the sandbox when the "
        "service runs as root."
    )
    code_gid: int = Field(
        65534, ge=1, description="Unprivileged gid that starts the sandbox when the "
        "service runs as root."
    )

    @property
    def code_item_budget_s(self) -> float:
        """The general-code whole-item budget: the setting, kept well under the item kill."""
        return min(self.code_item_limit_s, 0.8 * self.item_timeout_s)


_ACTIVE: Settings | None = None


def adopt(settings: Settings) -> None:
    """Make `settings` this process's service settings (the engine's worker initializers
    call it, so verifiers see the settings the service was started with, flags included,
    not only what the environment says)."""
    global _ACTIVE
    _ACTIVE = settings


def active() -> Settings:
    """The service settings adopted by this process, else the environment's."""
    global _ACTIVE
    if _ACTIVE is None:
        _ACTIVE = Settings()
    return _ACTIVE
