"""MemoryStore: atomic under threads, exact housekeeping, memory that follows live gates."""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import tracemalloc

from actiongate import AsyncMemoryStore, Engine, Gate, MemoryStore, Policy

from .conftest import ManualClock

GATE = Gate("n", "a", "p")


def test_threads_on_one_gate_get_exactly_max_calls(clock: ManualClock) -> None:
    engine = Engine(MemoryStore(), clock=clock)
    policy = Policy(max_calls=100, window=None)
    allowed_counts: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def hammer() -> None:
        start.wait()
        for _ in range(50):
            decision = engine.check(GATE, policy)
            if decision.allowed:
                with lock:
                    allowed_counts.append(decision.calls_in_window)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed_counts) == list(range(1, 101))


def test_concurrent_async_checks_get_exactly_max_calls(clock: ManualClock) -> None:
    engine = Engine(clock=clock, async_store=AsyncMemoryStore())
    policy = Policy(max_calls=7, window=None)

    async def burst() -> list[int]:
        decisions = await asyncio.gather(*(engine.async_check(GATE, policy) for _ in range(40)))
        return sorted(d.calls_in_window for d in decisions if d.allowed)

    assert asyncio.run(burst()) == list(range(1, 8))


def test_a_gate_whose_events_are_all_pruned_is_dropped() -> None:
    store = MemoryStore()
    policy = Policy(max_calls=1, window=1)
    store.check_and_reserve(GATE, 0.0, policy)
    assert len(store) == 1
    store.check_and_reserve(GATE, 5.0, Policy(max_calls=0, window=1))  # prunes, records nothing
    assert len(store) == 0


def test_housekeeping_keeps_an_event_exactly_window_old() -> None:
    store = MemoryStore()
    other = Gate("other", "a")
    store.check_and_reserve(GATE, 0.0, Policy(window=10))
    store.check_and_reserve(other, 10.0, Policy(window=10))
    assert len(store) == 2, "0 >= 10 - 10: a check at 10 would retain it (RET-4)"
    store.check_and_reserve(other, math.nextafter(10.0, math.inf), Policy(window=10))
    assert len(store) == 1


def test_housekeeping_never_drops_a_null_window_gate() -> None:
    store = MemoryStore()
    store.check_and_reserve(GATE, 0.0, Policy(window=None))
    store.check_and_reserve(Gate("other", "a"), 1e15, Policy(window=1))
    assert len(store) == 2


def test_housekeeping_uses_the_window_of_the_latest_check() -> None:
    store = MemoryStore()
    other = Gate("other", "a")
    store.check_and_reserve(GATE, 0.0, Policy(window=1))
    store.check_and_reserve(GATE, 0.5, Policy(window=100, max_calls=0))  # widens, records nothing
    store.check_and_reserve(other, 50.0, Policy(window=1))
    assert len(store) == 2
    assert store.check_and_reserve(GATE, 50.0, Policy(window=100)) == (2, True, 50.0)


def test_a_cleared_and_recreated_gate_is_not_dropped_by_its_stale_entry() -> None:
    store = MemoryStore()
    other = Gate("other", "a")
    store.check_and_reserve(GATE, 0.0, Policy(window=1))
    store.clear(GATE)
    store.check_and_reserve(GATE, 5.0, Policy(window=100))
    store.check_and_reserve(other, 6.0, Policy(window=1))  # the stale entry (due 1) pops here
    assert store.check_and_reserve(GATE, 7.0, Policy(window=100)) == (2, True, 2.0)


def test_memory_of_100k_expired_gates_is_given_back() -> None:
    store = MemoryStore()
    policy = Policy(max_calls=1, window=1)
    store.check_and_reserve(Gate("warm", "up"), 0.0, policy)
    gates = [Gate("n", "a", str(i)) for i in range(100_000)]
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for gate in gates:
            store.check_and_reserve(gate, 0.0, policy)
        grown = tracemalloc.get_traced_memory()[0] - baseline
        store.check_and_reserve(Gate("warm", "up"), 10.0, policy)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert len(store) == 1
    assert grown > 10_000_000
    assert kept < grown * 0.01, f"{kept} of {grown} bytes still held after expiry"


def test_a_backwards_step_inserts_in_order() -> None:
    store = MemoryStore()
    policy = Policy(max_calls=10, window=10)
    for now in (5.0, 3.0, 4.0):
        store.check_and_reserve(GATE, now, policy)
    # at 13.5 the cutoff is 3.5: the event at 3 goes, 4 and 5 stay
    assert store.check_and_reserve(GATE, 13.5, policy) == (3, True, 8.5)


def test_many_prunes_compact_without_losing_events() -> None:
    store = MemoryStore()
    policy = Policy(max_calls=10**6, window=100)
    for step in range(10_000):
        reply = store.check_and_reserve(GATE, float(step), policy)
    # steady state: events step-100 .. step retained
    assert reply == (101, True, 1.0)
