"""RedisStore and AsyncRedisStore: the state of gates in Redis or Redis Cluster, for many processes.

Theory of operation
-------------------
Each gate is one sorted set (one key, so one hash slot: Redis Cluster safe). A check is one
call of ``check_and_reserve.lua``, a port of ``EventLog.check`` in ``_decide.py`` that Redis runs
atomically (RES-1); the store sends it by EVALSHA and loads it again on NOSCRIPT (after a
restart or SCRIPT FLUSH). Beside its events the set holds one record (count, oldest, newest,
how far the expiry reaches), which the script reads first: a BLOCK reads that one member and
writes nothing; an ALLOW prunes only when an event may have left the window and adds its event
with the new record in one ZADD: O(log n) in the retained events. Its reply is one line of
text, which a client reads in one go. SEMANTICS.md Appendix B gives the layout (layout 2), so
that ports in other languages can share a Redis with this one; ``_redis_keys.py`` makes its
keys.

Numbers cross Python, Redis and Lua as text that reads back as the same binary64 value
(TIME-2): ``repr(float)`` out of Python, ``%.17g`` out of Lua, ``float()`` back in Python;
``_redis_script.py`` writes the script's ARGV and reads its reply.

Which clock. By default ``now`` comes from the caller (TIME-1). Use that when every process
sharing the Redis reads one clock, e.g. ``time.time`` on hosts kept in sync (the Engine's
default for stores other than memory), or when the caller's time must be the decision's. Use
``server_time=True`` when the writers' clocks are unrelated (hosts without NTP, per-process
monotonic clocks): the script takes T from the Redis server (TIME), so they enforce one limit.
The store then ignores the ``now`` it is given; ``check_and_reserve_at(gate, policy)`` returns
the T it used as a fourth element, for the caller to report as the decision's ``now`` (DEC-4).
Today's Engine calls ``check_and_reserve`` and so reports its own clock's reading there.

Expiry (RET-4). After each check that leaves events, the key must not expire before
``newest + window - now`` seconds (when its newest event leaves that check's window) plus
``ttl_margin`` (60 s by default); when its TTL is shorter the script sets twice that, and the
record keeps how far it reaches, so most checks neither read nor write it. A null window
persists the key. Redis counts TTLs in real seconds, so this assumes the caller's clock advances
no slower than real time; the margin absorbs rounding and small drift.

Failures. Every error of the client (refused, timed out, reset, a script error, an unreadable
reply) is raised as StoreError, its cause chained, so the Engine decides per ``on_store_error``
(ERR-1). A check the script did not run records nothing (ERR-2); one whose reply was lost after
Redis ran it has an unknown outcome (ERR-3). The URL factories set 0.5 s connect and socket
timeouts and turn redis-py's retries off (a retried script whose reply was lost could record its
event twice), so a refused, dead or paused server gives STORE_ERROR within 1 s
(``_redis_client.py`` says why). A client you pass in keeps its own timeouts and retries.

``redis`` is imported when a store is made, never by ``import actiongate``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from .._errors import ConfigurationError, StoreError
from .._types import Gate, Policy
from ._redis_client import (
    DEFAULT_TIMEOUT,
    INSTALL_HINT,
    fakeredis_server,
    make_client,
    require_redis,
    split_options,
)
from ._redis_keys import DEFAULT_PREFIX, checked_prefix, encode_gate, gate_key, scan_pattern
from ._redis_script import SCRIPT, SCRIPT_SHA, TimedReply, parse_reply, script_args

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    SyncClient: TypeAlias = "redis.Redis | redis.RedisCluster"
    AsyncClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.RedisCluster"

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TTL_MARGIN",
    "INSTALL_HINT",
    "AsyncRedisStore",
    "RedisStore",
    "TimedReply",
    "async_store_from_redis_url",
    "fakeredis_server",
    "gate_key",
    "store_from_redis_url",
]

DEFAULT_TTL_MARGIN = 60.0  # seconds beyond the time the newest event leaves the window
SCAN_BATCH = 1000


def _no_script_error() -> type[Exception]:
    # redis-py raises NoScriptError for NOSCRIPT; fakeredis raises redis-py's too.
    exceptions: Any = importlib.import_module("redis.exceptions")
    error: type[Exception] = exceptions.NoScriptError
    return error


def _failure(operation: str, error: Exception) -> StoreError:
    return StoreError(f"redis {operation} failed: {type(error).__name__}: {error}")


def _margin(ttl_margin: object) -> float:
    if (
        isinstance(ttl_margin, bool)
        or not isinstance(ttl_margin, (int, float))
        or not (math.isfinite(ttl_margin) and ttl_margin >= 0)
    ):
        raise ConfigurationError(f"ttl_margin must be finite and >= 0, got {ttl_margin!r}")
    return float(ttl_margin)


# Stores


class _RedisStoreBase:
    """What the sync and async stores share: options and keys."""

    __slots__ = (
        "_key_prefix",
        "_pattern",
        "_prefix_bytes",
        "client",
        "server_time",
        "ttl_margin",
    )

    def __init__(self, client: Any, prefix: str, server_time: bool, ttl_margin: float) -> None:
        require_redis()
        self._key_prefix = prefix
        self._prefix_bytes = checked_prefix(prefix)  # checked once, not at every check
        self._pattern = scan_pattern(self._prefix_bytes)
        self.client = client
        self.server_time = bool(server_time)
        self.ttl_margin = _margin(ttl_margin)

    @property
    def prefix(self) -> str:
        return self._key_prefix

    def key(self, gate: Gate) -> bytes:
        """The gate's key under this store's prefix (``gate_key``)."""
        return encode_gate(self._prefix_bytes, gate)


class RedisStore(_RedisStoreBase):
    """A Store on a redis-py client (``redis.Redis`` or ``redis.RedisCluster``).

    Atomic per check across every process that shares the Redis (RES-1). Either
    ``decode_responses`` setting works. ``prefix`` names this store's keys: ``clear_all`` removes
    those and nothing else (CLR-2); it must not hold ':' before a digit. With ``server_time``
    the Redis server's clock gives T and the ``now`` passed in is ignored; see
    ``check_and_reserve_at``. ``ttl_margin`` is the RET-4 margin in seconds.

    A client passed in keeps its own timeouts and retries, and redis-py's defaults are no
    timeouts and three retries with backoff: a refused port then takes seconds to decide and a
    paused server never does. For STORE_ERROR within 1 s, make it as the URL factories do:
    ``redis.Redis(..., socket_timeout=0.5, socket_connect_timeout=0.5,
    retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))``, or for ``redis.RedisCluster``
    the same three arguments (its ``retry`` is its own retry loop's).
    """

    __slots__ = ()
    client: SyncClient

    def __init__(
        self,
        client: SyncClient,
        prefix: str = DEFAULT_PREFIX,
        server_time: bool = False,
        ttl_margin: float = DEFAULT_TTL_MARGIN,
    ) -> None:
        super().__init__(client, prefix, server_time, ttl_margin)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = DEFAULT_TIMEOUT,
        socket_connect_timeout: float = DEFAULT_TIMEOUT,
    ) -> RedisStore:
        """The store a ``redis://``, ``redis+cluster://`` or ``fakeredis://`` URL names."""
        return store_from_redis_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
        )

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        count, allowed, age, _ = self._check(gate, None if self.server_time else now, policy)
        return count, allowed, age

    def check_and_reserve_at(self, gate: Gate, policy: Policy) -> TimedReply:
        """A check at the Redis server's time: ``(calls_in_window, allowed, age, now)``.

        ``now`` is the T the script read from the server (TIME-1) and that the reply's age is
        measured from; a Decision for this check carries it as its ``now`` (DEC-4).
        """
        return self._check(gate, None, policy)

    def clear(self, gate: Gate) -> None:
        try:
            self.client.delete(self.key(gate))
        except Exception as error:
            raise _failure("clear", error) from error

    def clear_all(self) -> None:
        """Delete this prefix's keys (CLR-2); on a cluster, SCAN visits every primary."""
        try:
            batch: list[Any] = []
            for key in self.client.scan_iter(match=self._pattern, count=SCAN_BATCH):
                batch.append(key)
                if len(batch) == SCAN_BATCH:
                    self.client.delete(*batch)
                    batch = []
            if batch:
                self.client.delete(*batch)
        except Exception as error:
            raise _failure("clear_all", error) from error

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def _check(self, gate: Gate, now: float | None, policy: Policy) -> TimedReply:
        key, args = self.key(gate), script_args(now, policy, self.ttl_margin)
        try:
            try:
                # EVALSHA straight through the client: redis-py's Script wrapper costs
                # microseconds a check (a tuple rebuild, an import, an isinstance) that a
                # decision need not pay.
                reply = self.client.evalsha(SCRIPT_SHA, 1, key, *args)
            except _no_script_error():
                # After a restart or SCRIPT FLUSH (on a cluster, on every primary).
                self.client.script_load(SCRIPT)
                reply = self.client.evalsha(SCRIPT_SHA, 1, key, *args)
        except Exception as error:
            raise _failure("check", error) from error
        return parse_reply(reply, now)


class AsyncRedisStore(_RedisStoreBase):
    """An AsyncStore on a ``redis.asyncio`` client; the contract of RedisStore.

    A client passed in keeps its own timeouts and retries; set them as RedisStore says.
    """

    __slots__ = ()
    client: AsyncClient

    def __init__(
        self,
        client: AsyncClient,
        prefix: str = DEFAULT_PREFIX,
        server_time: bool = False,
        ttl_margin: float = DEFAULT_TTL_MARGIN,
    ) -> None:
        super().__init__(client, prefix, server_time, ttl_margin)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = DEFAULT_TIMEOUT,
        socket_connect_timeout: float = DEFAULT_TIMEOUT,
    ) -> AsyncRedisStore:
        """The async store a URL names; the schemes of ``RedisStore.from_url``."""
        return async_store_from_redis_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
        )

    async def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        count, allowed, age, _ = await self._check(gate, None if self.server_time else now, policy)
        return count, allowed, age

    async def check_and_reserve_at(self, gate: Gate, policy: Policy) -> TimedReply:
        """A check at the Redis server's time; see ``RedisStore.check_and_reserve_at``."""
        return await self._check(gate, None, policy)

    async def clear(self, gate: Gate) -> None:
        try:
            await self.client.delete(self.key(gate))
        except Exception as error:
            raise _failure("clear", error) from error

    async def clear_all(self) -> None:
        """Delete this prefix's keys (CLR-2); on a cluster, SCAN visits every primary."""
        try:
            batch: list[Any] = []
            async for key in self.client.scan_iter(match=self._pattern, count=SCAN_BATCH):
                batch.append(key)
                if len(batch) == SCAN_BATCH:
                    await self.client.delete(*batch)
                    batch = []
            if batch:
                await self.client.delete(*batch)
        except Exception as error:
            raise _failure("clear_all", error) from error

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()

    async def _check(self, gate: Gate, now: float | None, policy: Policy) -> TimedReply:
        key, args = self.key(gate), script_args(now, policy, self.ttl_margin)
        try:
            try:
                reply = await self.client.evalsha(SCRIPT_SHA, 1, key, *args)
            except _no_script_error():
                await self.client.script_load(SCRIPT)
                reply = await self.client.evalsha(SCRIPT_SHA, 1, key, *args)
        except Exception as error:
            raise _failure("check", error) from error
        return parse_reply(reply, now)


def _store_options(
    url: str, socket_timeout: object, socket_connect_timeout: object
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(f"not a Redis URL: {url!r}")
    return split_options(url, socket_timeout, socket_connect_timeout)


def store_from_redis_url(
    url: str,
    *,
    socket_timeout: float = DEFAULT_TIMEOUT,
    socket_connect_timeout: float = DEFAULT_TIMEOUT,
) -> RedisStore:
    """A RedisStore for ``redis://host:port/db``, ``rediss://...``, ``redis+cluster://host:port``,
    ``rediss+cluster://...`` or ``fakeredis://[NAME]`` (an in-process fakeredis server; one NAME
    names one server in this process).

    Query options: ``prefix``, ``server_time``, ``ttl_margin`` and ``decode_responses`` for the
    store; the rest go to redis-py, without retries. ``socket_timeout`` and
    ``socket_connect_timeout`` (seconds, finite and > 0; 0.5 by default, so a dead server gives
    STORE_ERROR within 1 s) come from the query if it has them, else from the arguments.
    """
    client_url, store_options, client_options = _store_options(
        url, socket_timeout, socket_connect_timeout
    )
    return RedisStore(make_client(client_url, client_options, asynchronous=False), **store_options)


def async_store_from_redis_url(
    url: str,
    *,
    socket_timeout: float = DEFAULT_TIMEOUT,
    socket_connect_timeout: float = DEFAULT_TIMEOUT,
) -> AsyncRedisStore:
    """An AsyncRedisStore for the URLs and timeouts ``store_from_redis_url`` takes."""
    client_url, store_options, client_options = _store_options(
        url, socket_timeout, socket_connect_timeout
    )
    return AsyncRedisStore(
        make_client(client_url, client_options, asynchronous=True), **store_options
    )


# scheme -> factory; stores/__init__.py adds these to its SCHEMES, importing this module lazily.
SCHEMES: dict[str, Callable[[str], RedisStore]] = {
    scheme: store_from_redis_url
    for scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster", "fakeredis")
}
