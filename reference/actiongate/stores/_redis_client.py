"""A redis-py client (sync or asyncio) from a store URL: the store's own query options split
off, 0.5 s timeouts and no retries by default, and ``fakeredis://NAME`` servers for tests and demos.

Why those defaults. redis-py's own are no timeouts (a paused server blocks a check forever) and,
since redis-py 6, three retries with a jittered backoff of up to 2, 4 and 8 s (a refused port took
3 to 8 s). A dead or paused server must give the STORE_ERROR decision within 1 s: with no retries a
refused connection fails at once, a host that drops packets after ``socket_connect_timeout``,
and a server that accepts but does not answer (SIGSTOP, a hang) after ``socket_timeout``; at
worst a slow connect then a silent reply, 0.5 + 0.5 s. A live Redis answers a check in well
under a millisecond, so 0.5 s leaves room for load. The query (``?socket_timeout=2``) or the
factories' keyword arguments change them; each must be finite and > 0.

Imports redis-py and fakeredis only when a client is made, never at import.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import ConfigurationError, StoreError

__all__ = [
    "DEFAULT_TIMEOUT",
    "FAKEREDIS_HINT",
    "INSTALL_HINT",
    "TIMEOUTS",
    "checked_timeout",
    "fakeredis_server",
    "make_client",
    "require_redis",
    "split_options",
]

INSTALL_HINT = "pip install 'actiongate-conformance[redis]'"
# fakeredis:// is a test and demo backend: the test extra brings fakeredis with its Lua (lupa).
FAKEREDIS_HINT = "pip install 'actiongate-conformance[test]' (or 'fakeredis[lua]')"
DEFAULT_TIMEOUT = 0.5  # socket_timeout and socket_connect_timeout of the URL factories
TIMEOUTS = ("socket_timeout", "socket_connect_timeout")


def require_redis() -> ModuleType:
    try:
        import redis  # noqa: PLC0415 - optional: only a Redis store needs it
    except ImportError as error:
        raise ConfigurationError(f"the Redis store needs redis-py: {INSTALL_HINT}") from error
    return redis


_STORE_OPTIONS = ("prefix", "server_time", "ttl_margin", "decode_responses")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_fake_servers: dict[str, Any] = {}  # fakeredis://NAME -> its FakeServer, for this process
_fake_lock = threading.Lock()


def checked_timeout(name: str, value: object) -> float:
    """``value`` as a timeout in seconds: a number (not a bool), finite and > 0."""
    seconds = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"{name} must be finite and > 0 seconds, got {value!r}")
    return seconds


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # not a number: checked_timeout names it


def split_options(
    url: str,
    socket_timeout: object = DEFAULT_TIMEOUT,
    socket_connect_timeout: object = DEFAULT_TIMEOUT,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(url for redis-py, store options, client options)``; the options read here go.

    Client options are ``decode_responses`` and the two timeouts: the query's, else the
    arguments', each checked here so that a bad value is a ConfigurationError naming it.
    """
    parts = urlsplit(url)
    store: dict[str, Any] = {}
    client: dict[str, Any] = {
        "socket_timeout": checked_timeout("socket_timeout", socket_timeout),
        "socket_connect_timeout": checked_timeout("socket_connect_timeout", socket_connect_timeout),
    }
    rest = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in TIMEOUTS:
            client[name] = checked_timeout(name, _number(value))
        elif name not in _STORE_OPTIONS:
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
    # No retries: a retried script whose first reply was lost could record twice (ERR-3), and
    # retries multiply the time a dead server takes to decide. A cluster client takes this
    # retry for its own loop (its node clients never retry), so one failed node is one error.
    return {
        "socket_timeout": DEFAULT_TIMEOUT,
        "socket_connect_timeout": DEFAULT_TIMEOUT,
        "retry": retry,
    }


def fakeredis_server(url: str) -> Any:
    """The ``fakeredis.FakeServer`` that ``fakeredis://[NAME]`` names (a new one without NAME)."""
    # fakeredis runs Lua through lupa; without it every check would fail at the first EVALSHA.
    if importlib.util.find_spec("fakeredis") is None or importlib.util.find_spec("lupa") is None:
        raise ConfigurationError(f"fakeredis:// needs fakeredis with Lua: {FAKEREDIS_HINT}")
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


def make_client(url: str, client_options: Mapping[str, Any], asynchronous: bool) -> Any:
    """A redis-py client (sync or asyncio) for a URL, with timeouts and without retries."""
    require_redis()
    import redis  # noqa: PLC0415
    import redis.asyncio  # noqa: PLC0415
    import redis.asyncio.retry  # noqa: PLC0415
    import redis.retry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415

    scheme = urlsplit(url).scheme
    if scheme == "fakeredis":
        server = fakeredis_server(url)  # first: without fakeredis, it names what to install
        import fakeredis  # noqa: PLC0415

        fake = fakeredis.FakeAsyncRedis if asynchronous else fakeredis.FakeRedis
        return fake(server=server, **{**_fake_options(url), **client_options})
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
