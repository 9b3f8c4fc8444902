"""RES-1 and ERR-1/ERR-2 on in-process stores: the reference passes, broken stores are caught.

Each broken store here is a bug a real store could ship with: a read-modify-write without a
lock (every sequential vector passes; concurrent callers share the last slot), and a write that
raises after it committed (the caller is told STORE_ERROR while the event counts).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from actiongate import Engine, Gate, MemoryStore, Policy, StoreErrorMode
from actiongate_conformance.checkers.linearizability import (
    History,
    Operation,
    Replay,
    check_history,
    step,
)
from actiongate_conformance.layers.atomicity import AtomicityResult, run_atomicity
from actiongate_conformance.layers.concurrency import (
    SharedClock,
    record_processes,
    record_threads,
    replay_sequentially,
)
from actiongate_conformance.layers.faults import FAULT_CASES, run_faults
from actiongate_conformance.targets import target_from_string

from .broken_stores import ReadThenWriteStore, RecordsThenFails, YieldingStore

ROOT = Path(__file__).resolve().parents[1]
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


# A logic bug is not a race: a target wrong one check at a time has a sequential disagreement.


def _atomicity(spec: str) -> AtomicityResult:
    target = target_from_string(spec)
    try:
        return run_atomicity(spec, 2000, target)
    finally:
        target.close()


def _valid_report_part(result: AtomicityResult) -> None:
    schema = json.loads((ROOT / "spec" / "report.schema.json").read_text(encoding="utf-8"))
    part = schema["properties"]["atomicity"]["oneOf"][1]
    jsonschema.validate(json.loads(json.dumps(result.to_dict())), part)


def test_an_off_by_one_port_is_a_sequential_disagreement_not_a_race() -> None:
    result = _atomicity("py:tests.mutants.stores:OffByOneRateLimit")
    assert result.linearizable is False and result.failure == "sequential"
    text = result.summary()
    assert "SEQUENTIAL DISAGREEMENT" in text and "not a race" in text
    assert "NOT LINEARIZABLE" not in text and "not linearizable" not in text
    assert "Furthest order" not in text and "None" not in text
    assert "Run again one check at a time (no concurrency)" in text
    assert "Breaks RATE-1" in text
    disagreement = result.disagreement
    assert disagreement is not None and disagreement["clauses"] == ["RATE-1"]
    assert disagreement["got"]["status"] == "ALLOW"
    assert disagreement["expected"]["reason"] == "RATE_LIMIT"
    # The fault cases are wrong with no fault injected, too: that is no fault mishandled.
    assert result.faults_failure == "sequential"
    assert all(fault["decision_ok"] and fault["nothing_recorded"] for fault in result.faults)
    _valid_report_part(result)


def test_a_port_over_a_burst_is_labelled_too() -> None:
    result = _atomicity("cmd:python3 -m tests.mutants.serve rate_limit_first")
    assert result.failure == "sequential"
    assert result.disagreement is not None and "ORD-1" in result.disagreement["clauses"]
    assert "None" not in result.summary()


def test_a_race_is_still_not_linearizable_and_called_a_race() -> None:
    for _ in range(10):  # the race needs a thread switch between read and write
        result = _atomicity("py:tests.mutants.stores:ReadThenWrite")
        if result.linearizable is False:
            break
    assert result.linearizable is False and result.failure == "race", result.summary()
    assert result.disagreement is None and result.faults_ok
    text = result.summary()
    assert "NOT LINEARIZABLE (a race)" in text and "not linearizable. No order of these" in text
    assert "the same 2000 checks all get the spec's answers" in text
    assert "SEQUENTIAL" not in text and "None" not in text
    _valid_report_part(result)


def _one_at_a_time(policies: list[dict[str, Any]], nows: list[float]) -> History:
    """Checks of one gate with the spec's answers, none overlapping another."""
    events: tuple[float, ...] = ()
    operations = []
    for k, (policy, now) in enumerate(zip(policies, nows, strict=True)):
        events, result = step(events, now, policy)
        operations.append(Operation(k, 100 * k, 100 * k + 50, GATE, policy, now, result))
    return History(tuple(operations))


GATE = ("atomicity", "replay", "g")
TEN = Policy(max_calls=5, window=10.0).to_dict()


@pytest.mark.parametrize(
    ("store", "history", "clause", "why"),
    [
        # An event exactly window old is retained (RET-1): the store drops it, no state shows
        # that in the recorded history (any event may have been lost to a race).
        ("ExclusiveWindow", _one_at_a_time([TEN, TEN], [0.0, 10.0]), "RET-1",
         "an event exactly window old (0.0) is retained and counts"),
        # A BLOCK's prune persists (RET-2): the store counts the pruned events again.
        ("BlockForgetsPrune",
         _one_at_a_time([TEN, TEN, {**TEN, "max_calls": 0, "window": 2.0}, TEN],
                        [0.0, 1.0, 5.0, 6.0]),
         "RET-2", "events an earlier check discarded are counted again"),
    ],
    ids=["exclusive-window", "block-forgets-prune"],
)  # fmt: skip
def test_the_replay_finds_logic_bugs_no_single_answer_shows(
    store: str, history: History, clause: str, why: str
) -> None:
    target = target_from_string(f"py:tests.mutants.stores:{store}")
    try:
        replay = replay_sequentially(target, history)
    finally:
        target.close()
    assert replay.conclusive and replay.disagreement is not None
    assert replay.disagreement.id == len(history) - 1
    assert replay.disagreement.clauses[0] == clause
    assert why in replay.disagreement.why
    text = "\n".join(replay.disagreement.lines())
    assert "sequential disagreement (a logic bug, not a race)" in text and "None" not in text


def test_the_replay_of_a_correct_target_agrees_everywhere() -> None:
    history = record_threads(MemoryStore(), GATES, POLICIES, threads=4, checks_per_thread=100)
    target = target_from_string("memory://")
    try:
        replay = replay_sequentially(target, history)
    finally:
        target.close()
    assert replay == Replay(400)


# Ports: store faults by store_fail and store_recover around each failing check (capability
# store_faults), judged as Python stores are; their clears under store_fail too (CLR-1).


def _cmd(path: str, program: str = "") -> str:
    """A cmd: target: the file at ``path`` in the repository, run by ``program`` (by default
    this Python)."""
    import sys  # this section's imports stay in it

    return f"cmd:{program or sys.executable} {ROOT / path}"


def _no(program: str) -> bool:
    import shutil

    return shutil.which(program) is None


EXAMPLE = _cmd("examples/python_adapter.py")
MISHANDLES = _cmd("tests/adapters/mishandles_faults.py")
PORT_FAULTS = 2 * sum(failing for case in FAULT_CASES for _, failing in case.steps) + 2
PORTS = [
    pytest.param(EXAMPLE, id="python"),
    pytest.param(
        _cmd("examples/ports/javascript/adapter.js", "node"),
        id="javascript",
        marks=pytest.mark.skipif(_no("node"), reason="node is not on PATH"),
    ),
]


@pytest.mark.parametrize("spec", PORTS)
def test_ports_that_declare_store_faults_handle_every_injected_fault(spec: str) -> None:
    result = _atomicity(spec)
    assert result.faults_ok is True and result.faults_failure is None, result.summary()
    assert result.faults_injected == PORT_FAULTS == len(result.faults)
    assert {f["operation"] for f in result.faults} == {"check", "clear", "clear_all"}
    assert all(f["decision_ok"] and f["nothing_recorded"] for f in result.faults)
    assert f"{PORT_FAULTS} injected store faults handled per ERR-1/ERR-2" in result.summary()
    _valid_report_part(result)


def test_a_port_declaring_store_faults_gets_a_faults_tally_in_the_verdict() -> None:
    import io

    from actiongate_conformance.cli import run

    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["run", "--target", EXAMPLE, "--examples", "0"], stdout, stderr)
    last = stdout.getvalue().rstrip().splitlines()[-1]
    assert code == 0, stdout.getvalue()[-2000:] + stderr.getvalue()
    # No burst capability: atomicity stays not checked; the faults are checked and pass.
    assert last.startswith(
        "PARTIAL (not a conformance verdict): stateful not run; atomicity not checked; "
    )
    assert last.endswith(f", faults {PORT_FAULTS}/{PORT_FAULTS} handled")


@pytest.mark.parametrize(
    ("mode", "words", "caught"),
    [
        # The store writes, then reports the failure: the event shows in later checks.
        ("records", "(ERR-2)", {"empty-gate", "last-slot", "cooldown", "no-prune", "repeated"}),
        ("blocks", "ERR-1 wants ALLOW STORE_ERROR", {case.id for case in FAULT_CASES}),
        ("errors", "not an error (ERR-3)", {case.id for case in FAULT_CASES}),
        ("clears", "answers the error store_error (CLR-1)", {"clear-fails", "clear-all-fails"}),
        ("crashes", "adapter fault (crashed)", {"cooldown"}),
    ],
)
def test_a_port_that_mishandles_store_faults_is_caught(
    mode: str, words: str, caught: set[str]
) -> None:
    result = _atomicity(f"{MISHANDLES} {mode}")
    assert result.faults_ok is False and result.faults_failure == "mishandled"
    wrong = {f["case"] for f in result.faults if not (f["decision_ok"] and f["nothing_recorded"])}
    assert wrong == caught
    text = result.summary()
    assert "injected store faults MISHANDLED" in text and words in text
    assert "None" not in text
    _valid_report_part(result)


def test_a_port_that_records_a_failed_check_still_decides_as_err_1_asks() -> None:
    result = _atomicity(f"{MISHANDLES} records")
    checks = [f for f in result.faults if f["operation"] == "check"]
    assert all(f["decision_ok"] for f in result.faults)  # only what later checks see is wrong
    assert not any(f["nothing_recorded"] for f in checks if f["case"] != "max-calls-zero")
    no_prune = next(f for f in checks if f["case"] == "no-prune")
    assert "gave ALLOW calls_in_window=2 time_since_last=-95.0" in no_prune["detail"]


def test_a_crash_under_store_fail_is_a_result_and_the_cases_go_on() -> None:
    result = _atomicity(f"{MISHANDLES} crashes")
    failed = [f for f in result.faults if not f["decision_ok"]]
    assert [(f["case"], f["on_store_error"]) for f in failed] == [("cooldown", "FAIL_OPEN")]
    assert "cannot read the last event" in failed[0]["detail"]  # the adapter's stderr
    assert result.faults_injected == PORT_FAULTS  # restarted: every later case still ran


def test_a_port_without_store_faults_is_not_checked_never_passed() -> None:
    result = _atomicity(f"{MISHANDLES} undeclared")
    assert result.faults_ok is None and result.faults_injected == 0 and result.passed
    assert "the port does not declare the store_faults capability" in result.notes
    assert result.summary().startswith("atomicity: not checked; ")
