"""RedisStore: keys, members, expiry, cost, server time and URLs, with upstream's bugs as tests.

Each upstream 0.3.0 bug of issue 4 has a test named for it: the window boundary, joined keys,
the null-window TTL, 14-digit ages, the O(n) read and per-process clocks. Failures live in
test_redis_failures.py, concurrency in test_redis_concurrency.py, vectors in
test_redis_vectors.py.
"""

from __future__ import annotations

import ast
import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import redis.asyncio
from actiongate import (
    ConfigurationError,
    Engine,
    Gate,
    MemoryStore,
    Policy,
    StoreError,
    store_from_url,
)
from actiongate.stores import SCHEMES
from actiongate.stores import redis as redis_module
from actiongate.stores.redis import (
    INSTALL_HINT,
    AsyncRedisStore,
    RedisStore,
    async_store_from_redis_url,
    fakeredis_server,
    gate_key,
    store_from_redis_url,
)
from hypothesis import given
from hypothesis import strategies as st

from .conftest import ManualClock
from .redis_servers import NEEDS_REAL_REDIS, Backend

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = (ROOT / "reference/actiongate/stores/check_and_reserve.lua").read_text()
GATE = Gate("n", "a", "p")
UNREACHABLE = "redis://127.0.0.1:1/0"  # port 1: nothing listens; clients connect lazily


def both(
    store: RedisStore, gate: Gate, now: float, policy: Policy, memory: MemoryStore
) -> tuple[int, bool, float | None]:
    """The Redis reply, after asserting it is the MemoryStore's to the last bit."""
    reply = store.check_and_reserve(gate, now, policy)
    expected = memory.check_and_reserve(gate, now, policy)
    assert repr(reply) == repr(expected), (now, policy)
    return reply


# Upstream bug: the window boundary (RET-1)


def test_an_event_exactly_window_old_counts(redis_store: RedisStore) -> None:
    memory = MemoryStore()
    policy = Policy(max_calls=5, window=10)
    both(redis_store, GATE, 0.0, policy, memory)
    assert both(redis_store, GATE, 10.0, policy, memory) == (2, True, 10.0)


def test_the_boundary_is_binary64_not_decimal(redis_store: RedisStore) -> None:
    memory = MemoryStore()
    both(redis_store, GATE, 0.1, Policy(max_calls=5, window=0.2), memory)
    # 0.3 - 0.2 = 0.09999999999999998: the event at 0.1 stays
    assert both(redis_store, GATE, 0.3, Policy(max_calls=5, window=0.2), memory)[0] == 2
    other = Gate("n", "a", "q")
    both(redis_store, other, 0.3, Policy(max_calls=5, window=0.1), memory)
    # 0.4 - 0.1 = 0.30000000000000004: the event at 0.3 goes
    assert both(redis_store, other, 0.4, Policy(max_calls=5, window=0.1), memory)[0] == 1


# Upstream bug: ages through tostring, 14 significant digits (TIME-2)


def test_ages_are_exact_to_the_last_bit(redis_store: RedisStore) -> None:
    memory = MemoryStore()
    policy = Policy(max_calls=10, window=3600)
    times = [1_700_000_000.123456, 1_700_000_000.1234567, 1_700_000_000.1234568, 2.0**53]
    for now in times:
        both(redis_store, GATE, now, policy, memory)
    first, second = times[:2]
    assert redis_store.check_and_reserve(Gate("x", "y"), first, policy) == (1, True, None)
    _, _, age = redis_store.check_and_reserve(Gate("x", "y"), second, policy)
    assert age == second - first == 7.152557373046875e-07  # tostring gives 7.1525573730469e-07


def test_the_script_never_formats_a_number_with_tostring() -> None:
    code = re.sub(r"--\[\[.*?\]\]|--[^\n]*", "", SCRIPT, flags=re.DOTALL)
    assert "tostring" not in code
    # Times as %.17g; integers (counts, milliseconds, seconds below 2^51) as %d or %.0f.
    assert set(re.findall(r'string\.format\("([^"]*)"', code)) == {"%.17g", "%d", "%.0f"}


# Upstream bug: joined keys (ID-2)


def decode_key(prefix: bytes, key: bytes) -> Gate:
    """The inverse of gate_key, as its docstring describes it: the proof of injectivity."""
    assert key.startswith(prefix + b":")
    rest = key[len(prefix) + 1 :]
    fields = []
    for _ in range(2):
        length, colon, rest = rest.partition(b":")
        assert colon and length.isdigit() and str(int(length)).encode() == length
        fields.append(rest[: int(length)])
        assert rest[int(length) : int(length) + 1] == b":"
        rest = rest[int(length) + 1 :]
    return Gate(fields[0].decode(), fields[1].decode(), rest.decode())


COLLIDING = [
    (Gate("a:b", "c", "p"), Gate("a", "b:c", "p")),
    (Gate("a", "b", ""), Gate("a", "", "b")),
    (Gate("1:a", "b", "c"), Gate("1", "a:1:b", "c")),
    (Gate("{a}", "b", "c"), Gate("{a", "}b", "c")),
    (Gate("a\x00b", "c", "d"), Gate("a", "\x00b:c", "d")),
    (Gate("é", "x", "y"), Gate("e\u0301", "x", "y")),
    (Gate("ns", "act", "user:1"), Gate("ns:3:act", "user", "1")),
]


@pytest.mark.parametrize(("one", "other"), COLLIDING, ids=[f"{a!r}|{b!r}" for a, b in COLLIDING])
def test_gates_upstream_joined_into_one_key_stay_apart(
    redis_store: RedisStore, one: Gate, other: Gate
) -> None:
    assert redis_store.key(one) != redis_store.key(other)
    policy = Policy(max_calls=1, window=None)
    assert redis_store.check_and_reserve(one, 0.0, policy) == (1, True, None)
    assert redis_store.check_and_reserve(other, 0.0, policy) == (1, True, None)
    redis_store.clear(other)
    assert redis_store.check_and_reserve(one, 1.0, policy) == (1, False, 1.0)


def test_the_key_layout_is_the_one_appendix_b_gives() -> None:
    assert gate_key("actiongate", Gate("api", "search", "user:123")) == (
        b"actiongate:3:api:6:search:user:123"
    )
    assert gate_key("p", Gate("é", "", "")) == b"p:2:\xc3\xa9:0::"


def test_the_keys_appendix_b_shows_are_the_keys_we_write() -> None:
    appendix = (ROOT / "SEMANTICS.md").read_text().split("## Appendix B.")[1]
    rows = re.findall(r"^    (\(.*\))\s+(actiongate:\S*)$", appendix, flags=re.MULTILINE)
    assert len(rows) == 6
    for fields, key in rows:
        gate = Gate(*ast.literal_eval(fields))
        assert gate_key("actiongate", gate) == key.encode()


@given(st.text(), st.text(), st.text())
def test_every_key_decodes_back_to_its_gate(namespace: str, action: str, principal: str) -> None:
    gate = Gate(namespace, action, principal)
    assert decode_key(b"my{app}", gate_key("my{app}", gate)) == gate


@pytest.mark.parametrize("prefix", ["", "v:2", "a:0b", 7, "\ud800"])
def test_a_prefix_that_could_alias_another_is_refused(prefix: object) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        gate_key(prefix, GATE)  # type: ignore[arg-type]


# Upstream bug: a null window with a cooldown lost its count to a TTL (RET-3, RET-4)


def test_a_null_window_never_expires_even_with_a_cooldown(redis_store: RedisStore) -> None:
    policy = Policy(max_calls=2, window=None, cooldown=5)
    assert redis_store.check_and_reserve(GATE, 0.0, policy) == (1, True, None)
    assert redis_store.client.pttl(redis_store.key(GATE)) == -1  # no expiry at all
    assert redis_store.check_and_reserve(GATE, 10.0, policy) == (2, True, 10.0)
    assert redis_store.client.pttl(redis_store.key(GATE)) == -1
    assert redis_store.check_and_reserve(GATE, 1e9, policy) == (2, False, 1e9 - 10.0)


def pttl(store: RedisStore, gate: Gate = GATE) -> int:
    value = store.client.pttl(store.key(gate))
    assert isinstance(value, int)
    return value


def test_the_ttl_outlasts_the_newest_event_in_the_latest_window(redis_store: RedisStore) -> None:
    # Needed: (newest + window - now + 60 s margin). A shorter TTL is raised to twice that;
    # a long enough one is left alone, so most checks write no expiry.
    redis_store.check_and_reserve(GATE, 100.0, Policy(max_calls=9, window=10))
    assert 139_000 < pttl(redis_store) <= 140_000  # needs 70 s
    redis_store.check_and_reserve(GATE, 101.0, Policy(max_calls=9, window=10))
    assert 138_000 < pttl(redis_store) <= 140_000  # needs 70 s, has ~140: left alone
    redis_store.check_and_reserve(GATE, 105.0, Policy(max_calls=0, window=100))  # a BLOCK
    assert 311_000 < pttl(redis_store) <= 312_000  # needs 101 + 100 - 105 + 60 = 156 s
    redis_store.check_and_reserve(GATE, 106.0, Policy(max_calls=0, window=None))
    assert pttl(redis_store) == -1  # a null window: no expiry at all (RET-3)
    redis_store.check_and_reserve(GATE, 106.0, Policy(max_calls=9, window=10))
    assert 139_000 < pttl(redis_store) <= 140_000  # newest is now 106: needs 70 s
    redis_store.check_and_reserve(GATE, 50.0, Policy(max_calls=9, window=100))  # clock back
    assert 431_000 < pttl(redis_store) <= 432_000  # newest stays 106: 106 + 100 - 50 + 60


def test_the_ttl_margin_is_an_option(redis_backend: Backend) -> None:
    store = redis_backend.store(ttl_margin=0)
    try:
        store.check_and_reserve(GATE, 100.0, Policy(window=10))
        assert 19_000 < pttl(store) <= 20_000  # twice the 10 s needed
        store.check_and_reserve(GATE, 100.0, Policy(window=1e300))
        assert pttl(store) == -1  # beyond 71,000 years the key persists
    finally:
        store.clear_all()
        store.close()


def test_a_check_that_prunes_every_event_leaves_no_key(redis_store: RedisStore) -> None:
    redis_store.check_and_reserve(GATE, 0.0, Policy(window=1))
    assert redis_store.check_and_reserve(GATE, 5.0, Policy(max_calls=0, window=1)) == (
        0,
        False,
        None,
    )
    assert redis_store.client.exists(redis_store.key(GATE)) == 0


@pytest.mark.parametrize("options", ["protocol=3", "protocol=3&decode_responses=true"])
def test_a_resp3_client_reads_the_same_replies(redis_backend: Backend, options: str) -> None:
    store = store_from_redis_url(redis_backend.url_with(prefix="resp3") + "&" + options)
    memory = MemoryStore()
    try:
        for now in (1.0, 1.5, 1.5, 2.0000000000000004):
            both(store, GATE, now, Policy(max_calls=3, window=0.5, cooldown=0.25), memory)
    finally:
        store.clear_all()
        store.close()


# Members (RES-2)


def test_many_allows_at_one_identical_now_are_each_recorded(redis_store: RedisStore) -> None:
    policy = Policy(max_calls=10**6, window=None)
    counts = [redis_store.check_and_reserve(GATE, 5.0, policy)[0] for _ in range(300)]
    assert counts == list(range(1, 301))
    record, *events = redis_store.client.zrange(redis_store.key(GATE), 0, -1)
    assert sorted(events) == sorted(f"5:{k}".encode() for k in range(300))
    assert record == b"|300|5|5||p"  # 300 events from 5 to 5; no expiry: a null window


def test_zero_and_negative_zero_are_one_time_with_distinct_members(
    redis_store: RedisStore,
) -> None:
    policy = Policy(max_calls=10, window=1)
    replies = [redis_store.check_and_reserve(GATE, now, policy) for now in (0.0, -0.0, 0.0)]
    assert [reply[:2] for reply in replies] == [(1, True), (2, True), (3, True)]
    assert redis_store.client.zcount(redis_store.key(GATE), 0, 0) == 3


# Upstream bug: O(n) reads. The script reads one member, never the set.


def test_the_script_never_reads_the_whole_set() -> None:
    calls = re.findall(r'redis\.call\("(\w+)"([^)]*)\)', SCRIPT)
    assert {name for name, _ in calls} == {
        "TIME",
        "ZREMRANGEBYSCORE",
        "ZCARD",
        "ZRANGE",
        "ZCOUNT",
        "ZADD",
        "ZREM",
        "PTTL",
        "PEXPIRE",
        "PERSIST",
    }
    # The record (first), the newest and oldest events of a layout 1 key, the oldest after a
    # prune: one member each.
    assert [args for name, args in calls if name == "ZRANGE"] == [
        ', key, "0", "0"',
        ', key, "-1", "-1", "WITHSCORES"',
        ', key, "0", "0", "WITHSCORES"',
        ', key, "0", "0", "WITHSCORES"',
    ]


def test_a_check_costs_the_same_at_10_and_at_10000_events(redis_backend: Backend) -> None:
    if redis_backend.name == "fakeredis":
        pytest.skip(NEEDS_REAL_REDIS)
    store = redis_backend.store()
    client = store.client
    small, large = Gate("n", "small"), Gate("n", "large")
    blocked = Policy(max_calls=1, window=1e6)  # a BLOCK: state unchanged, each check alike
    per_call = {}
    try:
        for gate, size in ((small, 10), (large, 10_000)):
            client.zadd(store.key(gate), {f"{t}:0": t for t in range(size)})
            store.check_and_reserve(gate, float(size), blocked)  # loads the script
            client.config_resetstat()
            for _ in range(200):
                assert store.check_and_reserve(gate, float(size), blocked)[:2] == (size, False)
            stats = client.info("commandstats")
            calls = {name: stat["calls"] for name, stat in stats.items()}
            calls = {name: n for name, n in calls.items() if not name.startswith("cmdstat_config")}
            # Members of layout 1, so the first check read them the long way and left a
            # record. Each BLOCK after it reads the record, and nothing else.
            assert calls == {"cmdstat_evalsha": 200, "cmdstat_zrange": 200}
            per_call[size] = stats["cmdstat_zrange"]["usec_per_call"]
        # a whole read of 10,000 members takes milliseconds; one member, about a microsecond
        assert per_call[10_000] < 5 * per_call[10] + 20, per_call
    finally:
        store.clear_all()
        store.close()


def commands_of_one_check(store: RedisStore, now: float, policy: Policy) -> dict[str, int]:
    """The commands one check ran on the server (INFO commandstats, reset before it)."""
    store.client.config_resetstat()
    store.check_and_reserve(GATE, now, policy)
    stats = store.client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): stat["calls"]
        for name, stat in stats.items()
        if name != "cmdstat_evalsha" and not name.startswith("cmdstat_config")
    }


def test_a_check_prunes_only_when_an_event_may_have_left(redis_backend: Backend) -> None:
    """The record's oldest time is exact after a BLOCK's prune and bounded by T - window after
    an ALLOW's, so checks that follow prune nothing until an event may have left the window."""
    if redis_backend.name == "fakeredis":
        pytest.skip(NEEDS_REAL_REDIS)
    store = redis_backend.store()
    three, two = Policy(max_calls=3, window=10), Policy(max_calls=2, window=10)
    try:
        for now in (0.0, 1.0, 2.0):
            store.check_and_reserve(GATE, now, three)
        # Event 0 leaves; events 1 and 2 still block a limit of two: a BLOCK that prunes.
        assert commands_of_one_check(store, 10.5, two) == {
            "zrange": 2,  # the record, then the new oldest
            "zremrangebyscore": 1,
            "zadd": 1,
        }
        assert commands_of_one_check(store, 10.9, two) == {"zrange": 1}  # oldest 1: nothing left
        # Event 1 leaves: an ALLOW that prunes, then one at the same time, which does not.
        assert commands_of_one_check(store, 11.5, three) == {
            "zrange": 1,
            "zremrangebyscore": 1,
            "zadd": 1,
        }
        assert commands_of_one_check(store, 11.5, three) == {
            "zrange": 1,
            "zrem": 1,  # the old record
            "zadd": 2,  # the new record, with "11.5:0", which exists: then "11.5:1"
            "zcount": 1,
        }
    finally:
        store.clear_all()
        store.close()


# Upstream bug: per-process clocks. server_time makes one clock of the server's (TIME-1).


def test_two_engines_10000_s_apart_share_one_limit_with_server_time(
    redis_backend: Backend,
) -> None:
    first = redis_backend.store(server_time="true")
    second = redis_backend.store(server_time="true", prefix=first.prefix)  # another client
    engines = [Engine(first, clock=ManualClock(0.0)), Engine(second, clock=ManualClock(10_000.0))]
    policy = Policy(max_calls=3, window=60)
    try:
        before = server_now(first.client)
        decisions = [engines[i % 2].check(GATE, policy) for i in range(8)]
        assert [d.allowed for d in decisions] == [True] * 3 + [False] * 5
        assert [d.calls_in_window for d in decisions] == [1, 2, 3, 3, 3, 3, 3, 3]
        ages = [d.time_since_last for d in decisions[1:]]
        assert all(age is not None and 0 <= age < 5 for age in ages), ages
        # DEC-4: each decision carries the server's time, not either engine's clock
        nows = [d.now for d in decisions]
        assert all(before <= now <= server_now(first.client) for now in nows), nows
        assert nows == sorted(nows)
    finally:
        first.clear_all()
        first.close()
        second.close()


def test_without_server_time_clocks_10000_s_apart_break_the_limit(
    redis_backend: Backend,
) -> None:
    # Why TIME-1 forbids it: each engine prunes the other's events as 10,000 s old or counts
    # them as in its future, so neither sees the limit both share.
    store = redis_backend.store()
    engines = [Engine(store, clock=ManualClock(0.0)), Engine(store, clock=ManualClock(10_000.0))]
    try:
        decisions = [engines[i % 2].check(GATE, Policy(max_calls=3, window=60)) for i in range(8)]
        assert sum(d.allowed for d in decisions) > 3
    finally:
        store.clear_all()
        store.close()


def server_now(client: redis.Redis) -> float:
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000


def test_check_and_reserve_at_returns_the_server_time_it_used(redis_store: RedisStore) -> None:
    policy = Policy(max_calls=5, window=60)
    client = redis_store.client
    assert isinstance(client, redis.Redis)
    before = server_now(client)
    count, allowed, age, first = redis_store.check_and_reserve_at(GATE, policy)
    after = server_now(client)
    assert (count, allowed, age) == (1, True, None)
    assert before <= first <= after
    count, allowed, age, second = redis_store.check_and_reserve_at(GATE, policy)
    assert (count, allowed) == (2, True)
    assert age == second - first >= 0  # measured from the time the server gave, exactly


def test_server_time_ignores_the_now_passed_in(redis_backend: Backend) -> None:
    store = redis_backend.store(server_time="true")
    try:
        store.check_and_reserve(GATE, 0.0, Policy(max_calls=5, window=60))
        count, allowed, age = store.check_and_reserve(GATE, 1e12, Policy(max_calls=5, window=60))
        assert (count, allowed) == (2, True)
        assert age is not None and 0 <= age < 5
    finally:
        store.clear_all()
        store.close()


def test_async_server_time(redis_backend: Backend) -> None:
    async def run() -> tuple:
        store = async_store_from_redis_url(redis_backend.url_with(prefix="async-time"))
        try:
            first = await store.check_and_reserve_at(GATE, Policy(max_calls=5, window=60))
            second = await store.check_and_reserve_at(GATE, Policy(max_calls=5, window=60))
            await store.clear_all()
        finally:
            await store.aclose()
        return first, second

    first, second = asyncio.run(run())
    assert first[:3] == (1, True, None)
    assert second[:2] == (2, True) and second[2] == second[3] - first[3]


# clear and clear_all (CLR-1, CLR-2)


@pytest.mark.parametrize("prefix", ["actiongate", "a*b?[c]\\d", "my:app"])
def test_clear_all_removes_this_prefix_only(redis_backend: Backend, prefix: str) -> None:
    client = store_from_redis_url(redis_backend.url).client
    neighbours = [
        f"{prefix}2:1:a:1:b:c",
        f"{prefix}:x",
        f"{prefix}:",
        f"{prefix}",
        f"x{prefix}:1:a:1:b:c",
        "other:1:a:1:b:c",
        f"{prefix}:a:1:b",
    ]
    # what the prefix would match as an unescaped glob
    twin = prefix.replace("*", "xx").replace("?", "y").replace("[c]", "c").replace("\\", "")
    if twin != prefix:
        neighbours.append(f"{twin}:1:a:1:b:c")
    for key in neighbours:
        client.set(key, "keep")
    store = RedisStore(client, prefix=prefix)
    gates = [Gate("a", str(i), "{p}") for i in range(300)] + [g for pair in COLLIDING for g in pair]
    try:
        for gate in gates:
            store.check_and_reserve(gate, 0.0, Policy(window=None))
        store.clear_all()
        for gate in gates:
            assert client.exists(store.key(gate)) == 0
        assert [client.get(key) for key in neighbours] == [b"keep"] * len(neighbours)
    finally:
        client.delete(*neighbours)
        store.clear_all()
        client.close()


def test_clear_all_reaches_every_primary_of_a_cluster(redis_cluster: Backend) -> None:
    store = redis_cluster.store()
    gates = [Gate("n", "a", str(i)) for i in range(200)]
    try:
        for gate in gates:
            store.check_and_reserve(gate, 0.0, Policy(window=None))
        client = store.client
        assert isinstance(client, redis.RedisCluster)
        slots = {client.keyslot(store.key(gate)) for gate in gates}
        owners = {client.get_node_from_key(store.key(gate)).name for gate in gates}
        assert len(slots) > 100 and len(owners) == 3
        store.clear_all()
        assert sum(client.exists(store.key(gate)) for gate in gates) == 0
    finally:
        store.close()


# URLs


def connection_kwargs(store: RedisStore) -> dict:
    client = store.client
    assert isinstance(client, redis.Redis)
    return client.connection_pool.connection_kwargs


def test_the_url_factory_sets_timeouts_and_no_retries() -> None:
    store = store_from_url(UNREACHABLE)
    assert isinstance(store, RedisStore)
    options = connection_kwargs(store)
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.5
    assert options["retry"].get_retries() == 0
    assert (store.prefix, store.server_time, store.ttl_margin) == ("actiongate", False, 60.0)


def test_the_url_carries_store_and_client_options() -> None:
    store = store_from_redis_url(
        "redis://127.0.0.1:1/3?socket_timeout=5&prefix=app&server_time=true"
        "&ttl_margin=5&decode_responses=true"
    )
    options = connection_kwargs(store)
    assert (options["db"], options["socket_timeout"], options["decode_responses"]) == (3, 5.0, True)
    assert (store.prefix, store.server_time, store.ttl_margin) == ("app", True, 5.0)
    off = store_from_redis_url("redis://127.0.0.1:1/0?decode_responses=false")
    assert connection_kwargs(off)["decode_responses"] is False  # not the truthy text "false"


def test_rediss_means_tls() -> None:
    store = store_from_url("rediss://127.0.0.1:1/0")
    assert isinstance(store, RedisStore)
    client = store.client
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_class is redis.SSLConnection


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?server_time=maybe",
        "redis://127.0.0.1:1/0?prefix=v:2",
        "redis://127.0.0.1:1/0?ttl_margin=-1",
        "redis://127.0.0.1:1/0?ttl_margin=soon",
        "fakeredis://name/path",
        "fakeredis://?socket_timeout=soon",
    ],
)
def test_a_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        store_from_url(url)


def test_an_unreachable_cluster_is_a_store_error_at_construction() -> None:
    with pytest.raises(StoreError, match="cannot reach"):
        store_from_url("redis+cluster://127.0.0.1:1")


def test_the_async_factory_gives_async_clients(redis_cluster: Backend) -> None:
    async def run() -> None:
        single = async_store_from_redis_url(UNREACHABLE)
        cluster = async_store_from_redis_url(redis_cluster.url_with(prefix="async-factory"))
        assert isinstance(single.client, redis.asyncio.Redis)
        assert isinstance(cluster.client, redis.asyncio.RedisCluster)
        assert await cluster.check_and_reserve(GATE, 1.0, Policy()) == (1, True, None)
        await cluster.clear_all()
        await single.aclose()
        await cluster.aclose()

    asyncio.run(run())


def test_a_cluster_url_gives_a_cluster_client(redis_cluster: Backend) -> None:
    store = store_from_url(redis_cluster.url)
    assert isinstance(store, RedisStore) and isinstance(store.client, redis.RedisCluster)
    store.close()


def test_fakeredis_urls_name_in_process_servers() -> None:
    assert fakeredis_server("fakeredis://") is not fakeredis_server("fakeredis://")
    assert fakeredis_server("fakeredis://shared") is fakeredis_server("fakeredis://shared")
    one, two = store_from_url("fakeredis://shared"), store_from_url("fakeredis://shared")
    try:
        assert one.check_and_reserve(GATE, 0.0, Policy()) == (1, True, None)
        assert two.check_and_reserve(GATE, 0.0, Policy()) == (2, True, 0.0)
    finally:
        one.clear_all()


def test_without_redis_py_a_store_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=re.escape(INSTALL_HINT)):
        RedisStore(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=re.escape(INSTALL_HINT)):
        AsyncRedisStore(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=re.escape(INSTALL_HINT)):
        store_from_url("redis://127.0.0.1:1/0")


def test_import_actiongate_loads_neither_redis_nor_the_redis_store() -> None:
    code = (
        "import sys, actiongate; actiongate.store_from_url('memory://'); "
        "print(sorted(m for m in sys.modules if m == 'redis' or m.endswith('stores.redis')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert redis_module.SCHEMES.keys() <= SCHEMES.keys()  # registered without importing it
