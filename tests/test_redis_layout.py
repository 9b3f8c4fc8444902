"""Layout 2 of the Redis store (SEMANTICS.md Appendix B): the record tells the truth.

A check reads the gate's record (the member with score -inf) instead of the set, so a record
that lags one change behind gives wrong decisions. After every check of a random history
(clocks that step back, repeat a time or pass -0, windows that grow, shrink and vanish,
clears), the record must be true of what the set holds and of the key's expiry, and the
decisions must be the MemoryStore's to the last bit. A key written by layout 1 (members with no
record) must be read the long way and carried on.
"""

from __future__ import annotations

import math

import pytest
from actiongate import Gate, MemoryStore, Policy
from actiongate.stores.redis import RedisStore
from hypothesis import given, settings
from hypothesis import strategies as st

from .redis_servers import Backend

GATE = Gate("layout", "two", "p")
POLICIES = [
    Policy(max_calls=3, window=10.0),
    Policy(max_calls=3, window=10.0, cooldown=2.0),
    Policy(max_calls=5, window=40.0),  # wider: the expiry must cover more
    Policy(max_calls=2, window=0.5),
    Policy(max_calls=9, window=79.0),  # + 60 s margin: just inside the TTL 10 s leaves
    Policy(max_calls=9, window=1000.0),  # more than any expiry set before it
    Policy(max_calls=4, window=None),  # no expiry at all
    Policy(max_calls=50, window=1e17),  # a TTL past 2^51 ms: no expiry either
]
TIMES = st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.0, 3.0, 9.5, 10.0, 12.0, 30.0, 1e9, 1e9 + 0.1])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("check"), TIMES, st.integers(0, len(POLICIES) - 1)),
        st.tuples(st.just("clear"), st.just(0.0), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def assert_same_reply(
    reply: tuple[int, bool, float | None], expected: tuple[int, bool, float | None]
) -> None:
    """Equal to the last bit, but for the sign of a zero age (TIME-2 never compares it): the
    record's text of a time serves for both 0 and -0."""
    if reply[2] == 0.0 and expected[2] == 0.0:
        reply, expected = reply[:2], expected[:2]
    assert repr(reply) == repr(expected)


def time_of(member: bytes) -> float:
    return float(member.split(b":", 1)[0])


def assert_record_is_true(store: RedisStore, latest: float, window: float | None) -> None:
    """The record against the set: count, newest, and the expiry it promises for the window of
    the latest check (RET-4), on the clock of the latest check (``latest``), the key's TTL read
    as real seconds (less than a second of which passes here)."""
    client, key = store.client, store.key(GATE)
    members = client.zrange(key, 0, -1, withscores=True)
    if not members:
        assert not client.exists(key)
        return
    (record, record_score), events = members[0], members[1:]
    assert record_score == -math.inf, members
    assert events, record  # a record never outlives the last event
    for member, score in events:  # each member's text reads back as its score
        assert time_of(member) == score, member
    _, count, oldest, newest, span, reach = record.split(b"|")
    assert int(count) == len(events), record
    assert float(oldest) <= events[0][1], record  # a lower bound: exact after a BLOCK's prune
    assert float(newest) == events[-1][1], record
    ttl = client.pttl(key)
    if window is None:
        assert (reach, span, ttl) == (b"p", b"", -1), record
        return
    assert span == repr(window + store.ttl_margin).encode(), record
    if reach == b"p":  # a TTL past 2^51 ms: none
        assert ttl == -1, record
        return
    assert ttl > 0, record
    # The key lives until an event at the reach is window + margin old, and the newest event
    # is within the reach, but for the second and millisecond it is rounded down by.
    assert float(reach) + float(span) <= latest + ttl / 1000 + 1, (record, ttl, latest)
    assert float(newest) <= float(reach) + 1.002, record


@settings(max_examples=150, deadline=None)
@given(steps=STEPS)
def test_the_record_is_the_truth_after_every_check(
    redis_server: Backend, steps: list[tuple[str, float, int]]
) -> None:
    store = redis_server.store()  # the session's: hypothesis runs this test many times
    memory = MemoryStore()
    latest = -math.inf
    try:
        store.clear(GATE)
        for operation, now, policy_index in steps:
            if operation == "clear":
                store.clear(GATE)
                memory.clear(GATE)
                continue
            policy = POLICIES[policy_index]
            reply = store.check_and_reserve(GATE, now, policy)
            assert_same_reply(reply, memory.check_and_reserve(GATE, now, policy))
            latest = max(latest, now)
            assert_record_is_true(store, latest, policy.window)
    finally:
        store.clear(GATE)
        store.close()


@pytest.mark.parametrize("size", [1, 3, 200])
def test_a_layout_1_key_is_read_the_long_way_then_carried_on(
    redis_backend: Backend, size: int
) -> None:
    store = redis_backend.store()
    memory = MemoryStore()
    policy = Policy(max_calls=size + 2, window=1000.0)
    key = store.key(GATE)
    try:
        # Layout 1: "<%.17g of t>:<k>", no record; two events share each time.
        times = [float(index // 2) for index in range(size)]
        store.client.zadd(key, {f"{t:.17g}:{index % 2}": t for index, t in enumerate(times)})
        store.client.pexpire(key, 10_000_000)
        for now in times:
            memory.check_and_reserve(GATE, now, Policy(max_calls=10**6, window=1000.0))
        for now in (times[-1], times[-1] + 1, times[-1] + 1, 0.25):
            reply = store.check_and_reserve(GATE, now, policy)
            assert_same_reply(reply, memory.check_and_reserve(GATE, now, policy))
            assert_record_is_true(store, times[-1] + 1, policy.window)
    finally:
        store.clear(GATE)
        store.close()


def test_a_newer_event_or_a_wider_window_asks_the_expiry_again(redis_backend: Backend) -> None:
    """A record whose reach just holds for one newest event and window: a check that changes
    either must look at the expiry again, not trust the record (margin 60 s)."""
    store = redis_backend.store()
    steps = [
        (0.0, Policy(max_calls=9, window=10.0)),  # needs 70 s: the TTL is set to 140 s
        (0.0, Policy(max_calls=9, window=79.0)),  # needs 139 s: the 140 s TTL holds; reach 0
        (2.0, Policy(max_calls=9, window=79.0)),  # a newest event past the reach
        (2.0, Policy(max_calls=9, window=1000.0)),  # wider: needs 1,060 s
    ]
    try:
        for now, policy in steps:
            store.check_and_reserve(GATE, now, policy)
            assert_record_is_true(store, now, policy.window)
    finally:
        store.clear(GATE)
        store.close()
