"""A refused, dead or paused Redis gives the STORE_ERROR decision within 1 s by default (ERR-1).

Against real servers: a refused port, a port whose SYNs are dropped (a dead host), a redis-server
stopped by SIGSTOP, a paused master of a Redis Cluster; sync and async stores, made from URLs with
no timeout options, and a client passed in made as RedisStore's docstring says. ``BOUND`` is the
contract's 1 s with room for a loaded machine, not a benchmark. And the other side: a server that
is slow but alive (CLIENT PAUSE for less than the timeout) is not declared dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from actiongate import (
    BlockReason,
    ConfigurationError,
    Decision,
    Engine,
    Gate,
    Policy,
    Status,
    StoreErrorMode,
    store_from_url,
)
from actiongate.stores.redis import (
    DEFAULT_TIMEOUT,
    AsyncRedisStore,
    RedisStore,
    async_store_from_redis_url,
    store_from_redis_url,
)
from redis.backoff import NoBackoff

from .conftest import ManualClock
from .redis_servers import NEEDS_REAL_REDIS, Backend, free_port

BOUND = 1.5  # seconds: the 1 s contract, with room for a loaded machine
GATE = Gate("n", "a", "p")
CLOSED = Policy(max_calls=100, window=60)
OPEN = Policy(max_calls=100, window=60, on_store_error=StoreErrorMode.FAIL_OPEN)
EXPECTED = [(CLOSED, Status.BLOCK), (OPEN, Status.ALLOW)]


def decide_sync(store: RedisStore) -> Callable[[Policy], Decision]:
    engine = Engine(store, clock=ManualClock(1.0))
    return lambda policy: engine.check(GATE, policy)


def timed(check: Callable[[], Decision]) -> tuple[Decision, float]:
    started = time.monotonic()
    decision = check()
    return decision, time.monotonic() - started


async def timed_async(check: Awaitable[Decision]) -> tuple[Decision, float]:
    started = time.monotonic()
    decision = await check
    return decision, time.monotonic() - started


def assert_store_error_in_time(decision: Decision, seconds: float, status: Status) -> None:
    assert (decision.status, decision.reason) == (status, BlockReason.STORE_ERROR)
    assert seconds < BOUND, f"STORE_ERROR after {seconds:.3f} s"


def check_both_modes_sync(store: RedisStore) -> None:
    decide = decide_sync(store)
    for policy, status in EXPECTED:
        assert_store_error_in_time(*timed(functools.partial(decide, policy)), status)


async def check_both_modes_async(store: AsyncRedisStore) -> None:
    engine = Engine(clock=ManualClock(1.0), async_store=store)
    for policy, status in EXPECTED:
        assert_store_error_in_time(*await timed_async(engine.async_check(GATE, policy)), status)


def pid_of(port: int) -> int:
    """The PID of the redis-server on a loopback port, as it reports it."""
    with redis.Redis(port=port, socket_timeout=5) as client:
        return int(client.info("server")["process_id"])


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """The process stopped (SIGSTOP) for the block, and running again (SIGCONT) after it."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def real_server_pid(backend: Backend) -> int:
    if backend.server is None or backend.server.process is None:
        pytest.skip(NEEDS_REAL_REDIS)
    return backend.server.process.pid


# Refused, dropped


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
def test_a_refused_port_decides_within_the_bound_async(scheme: str) -> None:
    async def run() -> None:
        store = async_store_from_redis_url(f"{scheme}://127.0.0.1:{free_port()}")
        try:
            await check_both_modes_async(store)
        finally:
            await store.aclose()

    asyncio.run(run())


def test_a_refused_port_decides_within_the_bound_sync() -> None:
    store = store_from_url(f"redis://127.0.0.1:{free_port()}/0")
    assert isinstance(store, RedisStore)
    check_both_modes_sync(store)


def test_a_refused_cluster_url_fails_at_construction_within_the_bound() -> None:
    # redis-py's sync RedisCluster reads the slot map when made: no store, so no decision; the
    # error still comes in bounded time (the async one is lazy and decides, above).
    started = time.monotonic()
    with pytest.raises(Exception, match="cannot reach"):
        store_from_url(f"redis+cluster://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < BOUND


@pytest.fixture
def dropping_port() -> Iterator[int]:
    """A port whose new connections hang in connect, as to a dead host: a full accept queue."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as server:
        port = server.getsockname()[1]
        fillers: list[socket.socket] = []
        try:
            for _ in range(8):  # Linux queues backlog + 1; stop at the first connect that hangs
                filler = socket.socket()
                fillers.append(filler)
                filler.settimeout(0.2)
                try:
                    filler.connect(("127.0.0.1", port))
                except OSError:
                    break
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_a_port_that_drops_connects_decides_within_the_bound(dropping_port: int) -> None:
    store = store_from_redis_url(f"redis://127.0.0.1:{dropping_port}/0")
    check_both_modes_sync(store)
    store.close()


# Paused (SIGSTOP): the server holds the connection and answers nothing


def documented_client(port: int, asynchronous: bool) -> Any:
    """A client passed in, made as RedisStore's docstring says."""
    family: Any = redis.asyncio if asynchronous else redis
    retry = family.retry.Retry(NoBackoff(), 0)
    return family.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5, retry=retry)


@pytest.mark.parametrize("made", ["url", "documented-client"])
def test_a_paused_server_decides_within_the_bound_sync(
    restartable_redis: Backend, made: str
) -> None:
    pid = real_server_pid(restartable_redis)
    assert restartable_redis.server is not None
    port = restartable_redis.server.port

    def store() -> RedisStore:
        if made == "url":
            return store_from_redis_url(restartable_redis.url_with(prefix="paused"))
        return RedisStore(documented_client(port, asynchronous=False), prefix="paused")

    warm, fresh = store(), store()
    assert decide_sync(warm)(CLOSED).calls_in_window == 1  # a connection open before the pause
    with paused(pid):
        check_both_modes_sync(warm)
        check_both_modes_sync(fresh)
    warm.close()
    fresh.close()


def test_a_paused_server_decides_within_the_bound_async(restartable_redis: Backend) -> None:
    pid = real_server_pid(restartable_redis)
    assert restartable_redis.server is not None
    port = restartable_redis.server.port

    async def run() -> None:
        stores = [
            async_store_from_redis_url(restartable_redis.url_with(prefix="paused")),
            async_store_from_redis_url(restartable_redis.url_with(prefix="paused")),
            AsyncRedisStore(documented_client(port, asynchronous=True), prefix="paused"),
        ]
        try:
            warm = Engine(clock=ManualClock(1.0), async_store=stores[0])
            assert (await warm.async_check(GATE, CLOSED)).calls_in_window == 1
            with paused(pid):
                for store in stores:
                    await check_both_modes_async(store)
        finally:
            for store in stores:
                await store.aclose()

    asyncio.run(asyncio.wait_for(run(), timeout=30))


def test_a_paused_cluster_master_decides_within_the_bound(redis_cluster: Backend) -> None:
    store = redis_cluster.store()
    try:
        decide = decide_sync(store)
        assert decide(CLOSED).reason is None
        cluster: Any = store.client  # a redis.RedisCluster, untyped in redis-py
        node = cluster.get_node_from_key(store.key(GATE))
        with paused(pid_of(node.port)):
            for _ in range(2):  # the second after the first failure asked for a new slot map
                check_both_modes_sync(store)
        assert decide(CLOSED).reason is None
    finally:
        store.clear_all()
        store.close()


# Slow but alive


def test_a_server_slower_than_usual_but_within_the_timeout_is_not_dead(
    restartable_redis: Backend,
) -> None:
    real_server_pid(restartable_redis)
    assert restartable_redis.server is not None
    store = restartable_redis.store()
    decide = decide_sync(store)
    assert decide(CLOSED).calls_in_window == 1
    with redis.Redis(port=restartable_redis.server.port) as admin:
        admin.execute_command("CLIENT", "PAUSE", 300, "ALL")  # every client's commands wait
    decision, seconds = timed(lambda: decide(CLOSED))
    assert (decision.reason, decision.calls_in_window) == (None, 2)
    assert seconds > 0.1  # it did wait for the server
    store.clear_all()
    store.close()


# Where the timeouts come from: the URL's query, else the arguments, else 0.5 s


def connection_kwargs(store: RedisStore) -> dict[str, Any]:
    client = store.client
    assert isinstance(client, redis.Redis)
    options: dict[str, Any] = client.connection_pool.connection_kwargs
    return options


@pytest.mark.parametrize(
    ("query", "arguments", "expected"),
    [
        ("", {}, (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)),
        ("", {"socket_timeout": 2, "socket_connect_timeout": 0.25}, (2.0, 0.25)),
        ("?socket_timeout=3", {"socket_timeout": 2}, (3.0, DEFAULT_TIMEOUT)),
        ("?socket_connect_timeout=0.1&prefix=x", {}, (DEFAULT_TIMEOUT, 0.1)),
    ],
    ids=["defaults", "arguments", "query-over-arguments", "query"],
)
def test_timeouts_come_from_the_query_then_the_arguments(
    query: str, arguments: dict[str, float], expected: tuple[float, float]
) -> None:
    assert DEFAULT_TIMEOUT == 0.5
    url = f"redis://127.0.0.1:1/0{query}"
    options = connection_kwargs(store_from_redis_url(url, **arguments))
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == expected
    assert options["retry"].get_retries() == 0
    assert connection_kwargs(RedisStore.from_url(url, **arguments))["socket_timeout"] == expected[0]


def test_the_async_factory_takes_the_same_timeouts() -> None:
    async def run() -> None:
        store = AsyncRedisStore.from_url("redis://127.0.0.1:1/0?socket_timeout=3", socket_timeout=2)
        client = store.client
        assert isinstance(client, redis.asyncio.Redis)
        options = client.connection_pool.connection_kwargs
        assert (options["socket_timeout"], options["socket_connect_timeout"]) == (3.0, 0.5)
        await store.aclose()

    asyncio.run(run())


@pytest.mark.parametrize(
    "url",
    [
        "?socket_timeout=0",
        "?socket_timeout=-1",
        "?socket_connect_timeout=nan",
        "?socket_timeout=inf",
        "?socket_timeout=soon",
        "?socket_timeout=",
    ],
)
def test_a_bad_timeout_in_the_query_is_a_configuration_error(url: str) -> None:
    name = url[1 : url.index("=")]
    with pytest.raises(ConfigurationError, match=f"{name} must be finite and > 0"):
        store_from_url(f"redis://127.0.0.1:1/0{url}")


@pytest.mark.parametrize("value", [0, -0.5, float("inf"), True, None, "1"])
def test_a_bad_timeout_argument_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="socket_connect_timeout must be finite"):
        store_from_redis_url("redis://127.0.0.1:1/0", socket_connect_timeout=value)  # type: ignore[arg-type]
