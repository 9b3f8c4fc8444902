"""Stores keep the state of gates; the Store protocols say what the Engine asks of them.

The protocols are upstream 0.3.0's, unchanged, so a store written for upstream works here.
``store_from_url`` picks a store by URL through a plain table of schemes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from .._types import Gate, Policy
from .memory import AsyncMemoryStore, MemoryStore

__all__ = ["AsyncMemoryStore", "AsyncStore", "MemoryStore", "Store", "store_from_url"]


@runtime_checkable
class Store(Protocol):
    """A store the Engine checks through. ``check_and_reserve`` MUST be atomic per gate (RES-1).

    It returns ``(calls_in_window, allowed, time_since_last)`` as SEMANTICS.md DEC-2 and DEC-3
    define them. Any exception it raises becomes a STORE_ERROR decision (ERR-1), so it must not
    raise after it has recorded the event (ERR-2).
    """

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]: ...

    def clear(self, gate: Gate) -> None: ...

    def clear_all(self) -> None: ...


@runtime_checkable
class AsyncStore(Protocol):
    """The async twin of Store, with the same contract."""

    async def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]: ...

    async def clear(self, gate: Gate) -> None: ...

    async def clear_all(self) -> None: ...


def _memory(url: str) -> Store:
    parts = urlsplit(url)
    if parts.netloc or parts.path or parts.query:
        raise ConfigurationError(f"memory:// takes no host, path or options, got {url!r}")
    return MemoryStore()


def _redis(url: str) -> Store:
    from .redis import store_from_redis_url  # noqa: PLC0415 - only a Redis URL needs redis-py

    return store_from_redis_url(url)


# scheme -> factory taking the whole URL. Optional backends add themselves here.
SCHEMES: dict[str, Callable[[str], Store]] = {"memory": _memory}
SCHEMES.update(
    dict.fromkeys(("redis", "rediss", "redis+cluster", "rediss+cluster", "fakeredis"), _redis)
)


def store_from_url(url: str) -> Store:
    """The store a URL names, e.g. ``"memory://"``; an unknown scheme is a ConfigurationError."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    factory = SCHEMES.get(scheme)
    if factory is None:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ConfigurationError(f"no store for {url!r}: known schemes are {known}")
    return factory(url)
