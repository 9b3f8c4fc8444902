"""RES-1 and ERR-1/ERR-2 on in-process stores: the reference passes, broken stores are caught.

Each broken store here is a bug a real store could ship with: a read-modify-write without a
lock (every sequential vector passes; concurrent callers share the last slot), and a write that
raises after it committed (the caller is told STORE_ERROR while the event counts).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from actiongate import Engine, Gate, MemoryStore, Policy, StoreErrorMode
from actiongate_conformance.checkers.linearizability import check_history
from actiongate_conformance.layers.concurrency import SharedClock, record_processes, record_threads
from actiongate_conformance.layers.faults import FAULT_CASES, run_faults

from .broken_stores import ReadThenWriteStore, RecordsThenFails, YieldingStore

GATES = [Gate("atomicity", "check", principal) for principal in ("a", "b", "c")]
POLICIES = [
    Policy(max_calls=5, window=0.05),
    Policy(max_calls=3, window=0.02, cooldown=0.002, on_store_error=StoreErrorMode.FAIL_OPEN),
]


# RES-1 under threads.


@pytest.mark.parametrize("store", [MemoryStore, YieldingStore], ids=["memory", "yielding"])
def test_reference_memory_store_histories_are_linearizable(store: Any) -> None:
    history = record_threads(store(), GATES, POLICIES, threads=8, checks_per_thread=500)
    assert len(history) == 4000
    verdict = check_history(history)
    assert verdict.ok, verdict.explain()


def test_engines_from_a_factory_are_driven_too() -> None:
    history = record_threads(
        lambda clock: Engine(MemoryStore(), clock=clock), GATES[:2], POLICIES[0], threads=4
    )
    assert check_history(history).ok


def test_failed_checks_are_indeterminate_and_the_history_still_linearizable() -> None:
    history = record_threads(
        YieldingStore(), GATES, POLICIES, threads=8, checks_per_thread=250, fail_every=7
    )
    unknown = [operation for operation in history.operations if operation.result is None]
    assert len(unknown) == 2000 // 7
    verdict = check_history(history)
    assert verdict.ok, verdict.explain()  # errors would list a STORE_ERROR against its policy


def test_a_non_atomic_store_is_caught_with_a_counterexample() -> None:
    for _ in range(10):  # the race needs a thread switch between read and write: bounded retries
        history = record_threads(
            ReadThenWriteStore(), GATES[:2], POLICIES[0], threads=8, checks_per_thread=200
        )
        verdict = check_history(history)
        if not verdict.linearizable:
            break
    assert not verdict.linearizable, "the race never showed in 10 rounds"
    counterexample = verdict.counterexamples[0]
    assert counterexample.proven and len(counterexample.operations) >= 2
    text = counterexample.timeline()
    assert "not linearizable" in text and "should have given" in text
    assert all(f"#{number}" in text for number in counterexample.ids)


def test_shared_clock_readings_are_distinct_and_ordered() -> None:
    clock = SharedClock(start=10.0, step=0.5)
    readings: list[float] = []
    threads = [
        threading.Thread(target=lambda: readings.extend(clock() for _ in range(100)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(readings) == [10.0 + 0.5 * k for k in range(400)]


def test_an_exception_escaping_a_check_is_reported() -> None:
    class Breaks(Engine):
        """Violates ERR-3 on every fifth check."""

        count = 0

        def check(self, gate: Gate, policy: Policy | None = None) -> Any:
            Breaks.count += 1
            if Breaks.count % 5 == 0:
                raise RuntimeError("escaped")
            return super().check(gate, policy)

    history = record_threads(
        lambda clock: Breaks(MemoryStore(), clock=clock), GATES[:1], POLICIES[0], threads=2
    )
    verdict = check_history(history)
    assert verdict.linearizable and not verdict.ok
    assert "raised RuntimeError: escaped" in verdict.errors[0]


# Processes. No file-free store is shared between processes, so memory:// stands in: every
# process has its own, which the checker must see. Real shared stores: the Redis tests.


def test_processes_with_a_store_each_are_not_one_linearizable_store() -> None:
    one_slot = Policy(max_calls=1, window=60)
    alone = record_processes("memory://", GATES[:1], one_slot, processes=1, threads=2)
    assert check_history(alone).ok
    apart = record_processes(
        "memory://", GATES[:1], one_slot, processes=2, threads=1, checks_per_thread=3
    )
    assert {operation.process for operation in apart.operations} == {0, 1}
    verdict = check_history(apart)
    assert not verdict.linearizable  # each process's first check took the one slot


# ERR-1 and ERR-2 under injected faults.


def test_the_memory_store_handles_every_injected_fault() -> None:
    report = run_faults(MemoryStore())
    assert report.ok, report.describe()
    failing_steps = sum(failing for case in FAULT_CASES for _, failing in case.steps)
    assert len(report.faults) == 2 * failing_steps  # every case under both on_store_error
    assert {fault.on_store_error for fault in report.faults} == {"FAIL_CLOSED", "FAIL_OPEN"}
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_a_store_that_records_on_a_failed_write_is_caught() -> None:
    report = run_faults(RecordsThenFails(MemoryStore()))
    assert not report.ok
    assert all(fault.decision_ok for fault in report.faults)  # the engine still says STORE_ERROR
    caught = {fault.case for fault in report.faults if not fault.nothing_recorded}
    assert {"empty-gate", "last-slot", "cooldown", "no-prune", "repeated"} <= caught
    assert "(ERR-2)" in report.describe()
