"""ActionGate: a deterministic gate that decides, before an agent's action runs, whether it may.

This is the reference implementation of ActionGate 1.0 (SEMANTICS.md), and a drop-in for the
public API of upstream actiongate 0.3.0::

    from actiongate import Engine, Gate, Policy, Blocked

    engine = Engine()

    @engine.guard(Gate("api", "search", "user:123"), Policy(max_calls=5, window=60))
    def search(query: str) -> list[str]: ...

It imports nothing outside the standard library; the Redis store needs the ``redis`` extra.
"""

from __future__ import annotations

from ._emitter import Emitter
from ._engine import Blocked, Engine
from ._errors import (
    ActionGateError,
    ConfigurationError,
    InvalidGate,
    InvalidInput,
    InvalidPolicy,
    InvalidTime,
    StoreError,
)
from ._types import (
    MISSING,
    BlockReason,
    Decision,
    Gate,
    Mode,
    Policy,
    Result,
    Status,
    StoreErrorMode,
)
from .stores import AsyncMemoryStore, AsyncStore, MemoryStore, Store, store_from_url

__all__ = [
    "MISSING",
    "ActionGateError",
    "AsyncMemoryStore",
    "AsyncRedisStore",
    "AsyncStore",
    "BlockReason",
    "Blocked",
    "ConfigurationError",
    "Decision",
    "Emitter",
    "Engine",
    "Gate",
    "InvalidGate",
    "InvalidInput",
    "InvalidPolicy",
    "InvalidTime",
    "MemoryStore",
    "Mode",
    "Policy",
    "RedisStore",
    "Result",
    "Status",
    "Store",
    "StoreError",
    "StoreErrorMode",
    "store_from_url",
]

__version__ = "1.0.0.dev0"
SPEC_VERSION = "1.0"

_REDIS_NAMES = frozenset({"RedisStore", "AsyncRedisStore"})


def __getattr__(name: str) -> object:
    # The Redis stores are importable from here, as upstream's RedisStore is, without making
    # ``import actiongate`` import redis-py.
    if name in _REDIS_NAMES:
        from .stores import redis  # noqa: PLC0415

        return getattr(redis, name)
    raise AttributeError(f"module 'actiongate' has no attribute {name!r}")
