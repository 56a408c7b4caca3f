"""Rule-based reward verification for RL post-training of vision-language models.

The core library: types, answer extraction, the verifier registry, the worker engine
and the verdict cache. Nothing here knows about HTTP or gRPC; `services/` translates.
"""

__version__ = "0.1.0"
