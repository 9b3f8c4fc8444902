"""Redis failures become STORE_ERROR decisions, in bounded time, and record nothing (ERR-1..3).

Refused connections, timeouts, a server killed by PID and restarted on its port, a flushed
script cache, a script error, and replies no check could have produced.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest
import redis
from actiongate import (
    BlockReason,
    Engine,
    Gate,
    Policy,
    Status,
    StoreError,
    StoreErrorMode,
    store_from_url,
)
from actiongate.stores.redis import (
    AsyncRedisStore,
    RedisStore,
    async_store_from_redis_url,
    store_from_redis_url,
)

from .conftest import ManualClock
from .redis_servers import NEEDS_REAL_REDIS, Backend, free_port

GATE = Gate("n", "a", "p")
CLOSED = Policy(max_calls=5, window=60)
OPEN = Policy(max_calls=5, window=60, on_store_error=StoreErrorMode.FAIL_OPEN)


def assert_store_error(decision: object, status: Status) -> None:
    assert getattr(decision, "status", None) is status
    assert getattr(decision, "reason", None) is BlockReason.STORE_ERROR
    assert getattr(decision, "calls_in_window", None) == 0
    assert getattr(decision, "time_since_last", "") is None


# Refused, timed out


def test_a_refused_connection_is_a_store_error_decision() -> None:
    store = store_from_url(f"redis://127.0.0.1:{free_port()}/0")
    engine = Engine(store, clock=ManualClock(1.0))
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        store.check_and_reserve(GATE, 1.0, CLOSED)
    assert isinstance(raised.value.__cause__, redis.ConnectionError)
    assert_store_error(engine.check(GATE, CLOSED), Status.BLOCK)
    assert_store_error(engine.check(GATE, OPEN), Status.ALLOW)
    with pytest.raises(StoreError):
        engine.clear(GATE)  # a clear is not a check: its failure is raised (CLR-1)
    with pytest.raises(StoreError):
        engine.clear_all()
    assert time.monotonic() - started < 1.5


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield server.getsockname()[1]


@pytest.mark.parametrize(
    ("options", "bound"),
    [("?socket_timeout=0.2&socket_connect_timeout=0.2", 1.0), ("", 1.5)],
    ids=["socket_timeout-0.2", "default-0.5s"],
)
def test_a_silent_server_times_out_in_bounded_time(
    silent_port: int, options: str, bound: float
) -> None:
    store = store_from_url(f"redis://127.0.0.1:{silent_port}/0{options}")
    engine = Engine(store, clock=ManualClock(1.0))
    started = time.monotonic()
    decision = engine.check(GATE, OPEN)
    assert_store_error(decision, Status.ALLOW)
    assert "Timeout" in (decision.message or "")
    assert time.monotonic() - started < bound


# Killed and restarted


def test_a_redis_killed_mid_run_fails_closed_or_open_then_recovers(
    restartable_redis: Backend,
) -> None:
    store = restartable_redis.store()
    engine = Engine(store, clock=ManualClock(1.0))
    assert engine.check(GATE, CLOSED).calls_in_window == 1
    restartable_redis.stop()
    started = time.monotonic()
    assert_store_error(engine.check(GATE, CLOSED), Status.BLOCK)
    assert_store_error(engine.check(GATE, OPEN), Status.ALLOW)
    assert time.monotonic() - started < 1.5
    restartable_redis.start()  # empty, and without the script: NOSCRIPT, then a reload
    decision = engine.check(GATE, CLOSED)
    assert (decision.status, decision.reason, decision.calls_in_window) == (Status.ALLOW, None, 1)
    assert engine.check(GATE, CLOSED).calls_in_window == 2
    store.clear_all()
    store.close()


def test_a_paused_redis_times_out_and_the_late_write_is_at_most_one_event(
    restartable_redis: Backend,
) -> None:
    # SIGSTOP: the server holds the connection but answers nothing, so the check times out
    # (ERR-1). The request is still queued: once the server runs again it may carry it out, so
    # the outcome was unknown (ERR-3): at most one event for that check, never more.
    if restartable_redis.server is None or restartable_redis.server.process is None:
        pytest.skip(NEEDS_REAL_REDIS)
    pid = restartable_redis.server.process.pid
    store = restartable_redis.store(socket_timeout="0.3")
    engine = Engine(store, clock=ManualClock(1.0))
    policy = Policy(max_calls=10, window=None, on_store_error=StoreErrorMode.FAIL_OPEN)
    assert engine.check(GATE, policy).calls_in_window == 1
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        paused = engine.check(GATE, policy)
        assert time.monotonic() - started < 2
    finally:
        os.kill(pid, signal.SIGCONT)
    assert_store_error(paused, Status.ALLOW)
    after = store_from_redis_url(restartable_redis.url_with(prefix=store.prefix))
    decision = Engine(after, clock=ManualClock(2.0)).check(GATE, policy)
    assert decision.reason is None
    assert decision.calls_in_window in (2, 3)  # the paused check recorded nothing, or one event
    store.clear_all()
    store.close()
    after.close()


def test_an_async_store_survives_a_restart_too(restartable_redis: Backend) -> None:
    async def run() -> None:
        store = async_store_from_redis_url(restartable_redis.url_with(prefix="restart"))
        engine = Engine(clock=ManualClock(1.0), async_store=store)
        assert (await engine.async_check(GATE, CLOSED)).calls_in_window == 1
        restartable_redis.stop()
        assert_store_error(await engine.async_check(GATE, CLOSED), Status.BLOCK)
        assert_store_error(await engine.async_check(GATE, OPEN), Status.ALLOW)
        restartable_redis.start()
        decision = await engine.async_check(GATE, CLOSED)
        assert (decision.reason, decision.calls_in_window) == (None, 1)
        await store.aclose()

    asyncio.run(asyncio.wait_for(run(), timeout=20))


def test_a_flushed_script_cache_is_reloaded(redis_topology: Backend) -> None:
    store = redis_topology.store()
    try:
        assert store.check_and_reserve(GATE, 1.0, CLOSED) == (1, True, None)
        store.client.script_flush()
        assert store.check_and_reserve(GATE, 2.0, CLOSED) == (2, True, 1.0)
    finally:
        store.clear_all()
        store.close()


# Script errors and unreadable replies record nothing they report as failed (ERR-2)


def test_a_script_error_is_a_store_error_and_changes_nothing(redis_store: RedisStore) -> None:
    key = redis_store.key(GATE)
    redis_store.client.set(key, "not a sorted set")
    with pytest.raises(StoreError) as raised:
        redis_store.check_and_reserve(GATE, 1.0, CLOSED)
    assert isinstance(raised.value.__cause__, redis.ResponseError)
    assert "WRONGTYPE" in str(raised.value)
    assert_store_error(Engine(redis_store, clock=ManualClock(1.0)).check(GATE, OPEN), Status.ALLOW)
    assert redis_store.client.get(key) == b"not a sorted set"


class StubClient:
    """A client whose EVALSHA always replies ``reply`` (or raises it)."""

    def __init__(self, reply: object) -> None:
        self.reply = reply

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: object) -> object:
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"1 1 - -", (1, True, None)),
        (b"2 0 4.5 -", (2, False, 0.5)),
        ("2 0 4.5 -", (2, False, 0.5)),
        (b"3 1 5.0000000000000009 -", (3, True, 5.0 - 5.000000000000001)),
    ],
)
def test_replies_read_the_same_decoded_or_not(reply: object, expected: object) -> None:
    # The age is T - last in binary64, T being the caller's 5.0
    assert RedisStore(StubClient(reply)).check_and_reserve(GATE, 5.0, CLOSED) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"1 1 - 7.25", (1, True, None, 7.25)),
        ("2 0 7 7.25", (2, False, 0.25, 7.25)),
    ],
)
def test_with_server_time_the_age_is_from_the_servers_t(reply: object, expected: object) -> None:
    store = RedisStore(StubClient(reply), server_time=True)  # type: ignore[arg-type]
    assert store.check_and_reserve_at(GATE, CLOSED) == expected


@pytest.mark.parametrize(
    "reply",
    [
        None,
        b"OK",
        b"",
        [1, 1, None, b"5"],
        b"1 1 -",
        b"1 2 - -",
        b"-1 1 - -",
        b"1 1 - - 6",
        b"1  1 - -",
        b"1.5 1 - -",
        b"1 1 abc -",
        b"1 1 inf -",
        b"1 1 nan -",
        b"1 1 \xff -",
        b"1 1 - 5",  # a server T, where the caller gave its own
        "\u0661 1 - -",
        RuntimeError("boom"),
        redis.ResponseError("ERR something"),
    ],
)
def test_an_unreadable_reply_is_a_store_error_never_a_crash(reply: object) -> None:
    store = RedisStore(StubClient(reply))  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.check_and_reserve(GATE, 5.0, CLOSED)
    assert_store_error(Engine(store, clock=ManualClock(5.0)).check(GATE, CLOSED), Status.BLOCK)


def test_an_async_failure_is_a_store_error_too() -> None:
    class AsyncStub(StubClient):
        async def evalsha(self, sha: str, numkeys: int, *keys_and_args: object) -> object:  # type: ignore[override]
            raise redis.ConnectionError("refused")

    store = AsyncRedisStore(AsyncStub(None))  # type: ignore[arg-type]
    engine = Engine(clock=ManualClock(1.0), async_store=store)
    assert_store_error(asyncio.run(engine.async_check(GATE, OPEN)), Status.ALLOW)
