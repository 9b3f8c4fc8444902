"""RedisStore and AsyncRedisStore: the state of gates in Redis or Redis Cluster, for many processes.

Theory of operation
-------------------
Each gate is one sorted set (one key, so one hash slot: Redis Cluster safe). A check is one
call of ``check_and_reserve.lua``, a port of ``EventLog.check`` in ``_decide.py`` that Redis runs
atomically (RES-1); the store sends it by EVALSHA and loads it again on NOSCRIPT (after a
restart or SCRIPT FLUSH). The script prunes with one ZREMRANGEBYSCORE, counts with ZCARD, reads
only the newest event, and adds one member: O(log n) in the retained events. Its reply is one
line of text, which a client reads in one go. SEMANTICS.md Appendix B gives the layout, so that
ports in other languages can share a Redis with this one; ``_redis_keys.py`` makes its keys.

Numbers cross Python, Redis and Lua as text that reads back as the same binary64 value
(TIME-2): ``repr(float)`` out of Python, ``%.17g`` out of Lua, ``float()`` back in Python.

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
``ttl_margin`` (60 s by default); when its TTL is shorter the script sets twice that, so most
checks only read it. A null window persists the key. Redis counts TTLs in real seconds, so
this assumes the caller's clock advances no slower than real time; the margin absorbs rounding
and small drift.

Failures. Every error of the client (refused, timed out, reset, a script error, an unreadable
reply) is raised as StoreError, its cause chained, so the Engine decides per ``on_store_error``
(ERR-1). A check the script did not run records nothing (ERR-2); one whose reply was lost after
Redis ran it has an unknown outcome (ERR-3). The URL factories set 1 s socket timeouts and turn
redis-py's retries off, since retrying a script whose reply was lost could record its event
twice; a client you pass in keeps whatever retry policy you gave it.

``redis`` is imported when a store is made, never by ``import actiongate``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import importlib.util
import math
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import ConfigurationError, StoreError
from .._types import Gate, Policy
from ._redis_keys import DEFAULT_PREFIX, checked_prefix, encode_gate, gate_key, scan_pattern

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    SyncClient: TypeAlias = "redis.Redis | redis.RedisCluster"
    AsyncClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.RedisCluster"

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TTL_MARGIN",
    "AsyncRedisStore",
    "RedisStore",
    "TimedReply",
    "async_store_from_redis_url",
    "fakeredis_server",
    "gate_key",
    "store_from_redis_url",
]

INSTALL_HINT = "pip install 'actiongate-conformance[redis]'"
DEFAULT_TTL_MARGIN = 60.0  # seconds beyond the time the newest event leaves the window
DEFAULT_TIMEOUT = 1.0  # socket_timeout and socket_connect_timeout of the URL factories
SCAN_BATCH = 1000

# (calls_in_window, allowed, time_since_last, now): the store reply plus the T it used.
TimedReply = tuple[int, bool, "float | None", float]

_SCRIPT = (
    importlib.resources.files("actiongate.stores").joinpath("check_and_reserve.lua").read_text()
)


def _require_redis() -> ModuleType:
    try:
        import redis  # noqa: PLC0415 - optional: only a Redis store needs it
    except ImportError as error:
        raise ConfigurationError(f"the Redis store needs redis-py: {INSTALL_HINT}") from error
    return redis


def _no_script_error() -> type[Exception]:
    # redis-py raises NoScriptError for NOSCRIPT; fakeredis raises redis-py's too.
    exceptions: Any = importlib.import_module("redis.exceptions")
    error: type[Exception] = exceptions.NoScriptError
    return error


# Replies


def _number(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {text!r}")
    return number


def _parse(reply: object, now: float | None) -> TimedReply:
    """The script's reply, ``b"<count> <allowed> <last or -> <now or ->"``, as Python values.

    ``now`` is the T the caller sent, None when the script took the server's. Either
    ``decode_responses`` setting: the reply is bytes or str.
    """
    try:
        text = reply.decode("ascii") if isinstance(reply, bytes) else reply
        if not isinstance(text, str):
            raise TypeError("not text")
        count, allowed, last, server_now = text.split(" ")
        if not (count.isascii() and count.isdigit()) or allowed not in ("0", "1"):
            raise ValueError("count or allowed out of range")
        if (now is None) == (server_now == "-"):
            raise ValueError("the script's T is there iff it took the server's")
        used = _number(server_now) if now is None else now
        # DEC-3: T - last in binary64, the subtraction the script would have made.
        age = None if last == "-" else used - _number(last)
        return int(count), allowed == "1", age, used
    except (TypeError, ValueError, UnicodeDecodeError) as error:
        # ERR-3: Redis ran the script, so the outcome is unknown; never a crash.
        raise StoreError(f"unreadable reply from the check script: {reply!r}") from error


def _failure(operation: str, error: Exception) -> StoreError:
    return StoreError(f"redis {operation} failed: {type(error).__name__}: {error}")


def _args(now: float | None, policy: Policy, margin: str) -> list[str]:
    """ARGV of the script, as text that reads back exactly (TIME-2): T and T - window in
    %.17g, the member text Appendix B gives, computed here so that the script formats none."""
    window = policy.window
    if now is None:
        now_text = cutoff = ""
    else:
        now_text = f"{now:.17g}"
        cutoff = "" if window is None else f"{now - window:.17g}"
    return [
        now_text,
        "" if window is None else repr(window),
        repr(policy.cooldown),
        str(policy.max_calls),
        margin,
        cutoff,
    ]


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
    """What the sync and async stores share: options, keys, the registered script."""

    __slots__ = (
        "_key_prefix",
        "_margin_text",
        "_pattern",
        "_prefix_bytes",
        "_sha",
        "client",
        "server_time",
        "ttl_margin",
    )

    def __init__(self, client: Any, prefix: str, server_time: bool, ttl_margin: float) -> None:
        _require_redis()
        self._key_prefix = prefix
        self._prefix_bytes = checked_prefix(prefix)  # checked once, not at every check
        self._pattern = scan_pattern(self._prefix_bytes)
        self.client = client
        self.server_time = bool(server_time)
        self.ttl_margin = _margin(ttl_margin)
        self._margin_text = repr(self.ttl_margin)
        # EVALSHA straight through the client: redis-py's Script wrapper costs microseconds
        # a check (a tuple rebuild, an import, an isinstance) that a decision need not pay.
        self._sha = hashlib.sha1(_SCRIPT.encode()).hexdigest()

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
    def from_url(cls, url: str) -> RedisStore:
        """The store a ``redis://``, ``redis+cluster://`` or ``fakeredis://`` URL names."""
        return store_from_redis_url(url)

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
        key, args = self.key(gate), _args(now, policy, self._margin_text)
        try:
            try:
                reply = self.client.evalsha(self._sha, 1, key, *args)
            except _no_script_error():
                # After a restart or SCRIPT FLUSH (on a cluster, on every primary).
                self.client.script_load(_SCRIPT)
                reply = self.client.evalsha(self._sha, 1, key, *args)
        except Exception as error:
            raise _failure("check", error) from error
        return _parse(reply, now)


class AsyncRedisStore(_RedisStoreBase):
    """An AsyncStore on a ``redis.asyncio`` client; the contract of RedisStore."""

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
    def from_url(cls, url: str) -> AsyncRedisStore:
        """The async store a URL names; the schemes of ``RedisStore.from_url``."""
        return async_store_from_redis_url(url)

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
        key, args = self.key(gate), _args(now, policy, self._margin_text)
        try:
            try:
                reply = await self.client.evalsha(self._sha, 1, key, *args)
            except _no_script_error():
                await self.client.script_load(_SCRIPT)
                reply = await self.client.evalsha(self._sha, 1, key, *args)
        except Exception as error:
            raise _failure("check", error) from error
        return _parse(reply, now)


# URLs

_STORE_OPTIONS = ("prefix", "server_time", "ttl_margin", "decode_responses")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_fake_servers: dict[str, Any] = {}  # fakeredis://NAME -> its FakeServer, for this process
_fake_lock = threading.Lock()


def _split_options(url: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(url for redis-py, store options, client options)``; the store's own options go."""
    parts = urlsplit(url)
    store: dict[str, Any] = {}
    client: dict[str, Any] = {}
    rest = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _STORE_OPTIONS:
            rest.append((name, value))
        elif name in ("server_time", "decode_responses"):
            if value.lower() not in _TRUE + _FALSE:
                raise ConfigurationError(f"{name} must be true or false in {url!r}, got {value!r}")
            (store if name == "server_time" else client)[name] = value.lower() in _TRUE
        elif name == "ttl_margin":
            try:
                store[name] = float(value)
            except ValueError:
                raise ConfigurationError(f"ttl_margin must be a number, got {value!r}") from None
        else:
            store[name] = value
    return urlunsplit(parts._replace(query=urlencode(rest))), store, client


def _client_options(retry: object) -> dict[str, Any]:
    # No retries: a retried script whose first reply was lost could record twice (ERR-3).
    return {
        "socket_timeout": DEFAULT_TIMEOUT,
        "socket_connect_timeout": DEFAULT_TIMEOUT,
        "retry": retry,
    }


def fakeredis_server(url: str) -> Any:
    """The ``fakeredis.FakeServer`` that ``fakeredis://[NAME]`` names (a new one without NAME)."""
    # fakeredis runs Lua through lupa; without it every check would fail at the first EVALSHA.
    if importlib.util.find_spec("fakeredis") is None or importlib.util.find_spec("lupa") is None:
        raise ConfigurationError(
            "fakeredis:// needs fakeredis with Lua: pip install 'fakeredis[lua]'"
        )
    import fakeredis  # noqa: PLC0415 - a test and demo backend, optional

    parts = urlsplit(url)
    if parts.path.strip("/"):
        raise ConfigurationError(f"fakeredis://[NAME] takes no path, got {url!r}")
    if not parts.netloc:
        return fakeredis.FakeServer()
    with _fake_lock:
        return _fake_servers.setdefault(parts.netloc, fakeredis.FakeServer())


def _fake_options(url: str) -> dict[str, Any]:
    # The client options of a fakeredis:// URL, read as redis-py reads those of redis://.
    from redis.connection import parse_url  # noqa: PLC0415

    parse: Callable[[str], dict[str, Any]] = parse_url  # untyped in redis-py
    query = urlsplit(url).query
    try:
        options = parse(f"redis://localhost?{query}")
    except ValueError as error:
        raise ConfigurationError(f"bad fakeredis URL {url!r}: {error}") from error
    options.pop("host", None)
    return options


def _client(url: str, client_options: Mapping[str, Any], asynchronous: bool) -> Any:
    """A redis-py client (sync or asyncio) for a URL, with timeouts and without retries."""
    _require_redis()
    import redis  # noqa: PLC0415
    import redis.asyncio  # noqa: PLC0415
    import redis.asyncio.retry  # noqa: PLC0415
    import redis.retry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415

    scheme = urlsplit(url).scheme
    if scheme == "fakeredis":
        import fakeredis  # noqa: PLC0415

        fake = fakeredis.FakeAsyncRedis if asynchronous else fakeredis.FakeRedis
        return fake(server=fakeredis_server(url), **{**_fake_options(url), **client_options})
    family: Any = redis.asyncio if asynchronous else redis
    retry = (redis.asyncio.retry.Retry if asynchronous else redis.retry.Retry)(NoBackoff(), 0)
    options = {**_client_options(retry), **client_options}
    try:
        if scheme.endswith("+cluster"):
            # A sync cluster client asks a node for the slot map now: the cluster must be up.
            cluster_url = url.replace("+cluster://", "://", 1)
            return family.RedisCluster.from_url(cluster_url, **options)
        return family.Redis.from_url(url, **options)
    except ValueError as error:
        raise ConfigurationError(f"bad Redis URL {url!r}: {error}") from error
    except Exception as error:
        raise StoreError(f"cannot reach Redis at {url!r}: {error}") from error


def _store_options(url: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(f"not a Redis URL: {url!r}")
    return _split_options(url)


def store_from_redis_url(url: str) -> RedisStore:
    """A RedisStore for ``redis://host:port/db``, ``rediss://...``, ``redis+cluster://host:port``,
    ``rediss+cluster://...`` or ``fakeredis://[NAME]`` (an in-process fakeredis server; one NAME
    names one server in this process).

    Query options: ``prefix``, ``server_time``, ``ttl_margin`` and ``decode_responses`` for the
    store; the rest go to redis-py (``socket_timeout=5``, ...), over defaults of 1 s timeouts
    and no retries.
    """
    client_url, store_options, client_options = _store_options(url)
    return RedisStore(_client(client_url, client_options, asynchronous=False), **store_options)


def async_store_from_redis_url(url: str) -> AsyncRedisStore:
    """An AsyncRedisStore for the URLs ``store_from_redis_url`` takes."""
    client_url, store_options, client_options = _store_options(url)
    return AsyncRedisStore(_client(client_url, client_options, asynchronous=True), **store_options)


# scheme -> factory; stores/__init__.py adds these to its SCHEMES, importing this module lazily.
SCHEMES: dict[str, Callable[[str], RedisStore]] = {
    scheme: store_from_redis_url
    for scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster", "fakeredis")
}
