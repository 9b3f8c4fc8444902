"""The atomicity and fault checks of ``actiongate-conformance run``, for stores it can reach.

Concurrent checks are recorded (threads over one store; for a Redis URL also processes, each
with a client of its own) and the history is checked for linearizability against the model. A
history no order explains is labelled before it is reported: its checks are run again one at a
time through the target's connection, and a target already wrong there has a *sequential
disagreement* (a logic bug, shown as the first check the oracle disagrees with), not a race;
only a history whose checks are all right one at a time is reported NOT LINEARIZABLE. Then
store faults are injected and each decision, and what later checks see, is checked against
ERR-1 and ERR-2 (``faults``): into a Python store's calls, or, for a ``cmd:`` port, by the
protocol's ``store_fail`` and ``store_recover`` around each failing check. A port is checked for
what it declares: the capability ``burst`` for the first, ``store_faults`` for the second; what
it does not declare is reported as not checked, never as passed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

from actiongate import Gate, Policy, StoreErrorMode

from ..checkers.linearizability import (
    RACE,
    SEQUENTIAL,
    History,
    HistoryVerdict,
    Operation,
    check_history,
    fields_from_record,
)
from ..targets import TargetError, store_factory
from ..targets.protocol import Connection, HarnessError
from .concurrency import record_processes, record_threads, replay_sequentially
from .faults import FaultReport, run_faults, run_port_faults

__all__ = ["AtomicityResult", "run_atomicity"]

GATES = tuple(Gate("actiongate-conformance", "atomicity", name) for name in ("a", "b", "c"))
# Short windows and a cooldown against a clock that moves 1 ms a check, so that the history
# holds expiries, cooldowns and rate limits, not only ALLOWs.
POLICIES = (
    Policy(max_calls=5, window=0.05),
    Policy(max_calls=3, window=0.02, cooldown=0.002, on_store_error=StoreErrorMode.FAIL_OPEN),
)
THREADS = 8
BURST = 50  # checks a port runs at once
START, STEP = 1000.0, 0.001  # the times of a port's checks, as the thread drivers use
PROCESSES = 2
SHARED_SCHEMES = ("redis://", "rediss://", "redis+cluster://", "rediss+cluster://")
MISHANDLED = "mishandled"  # FaultReport.failure: a fault's decision (ERR-1) or effect (ERR-2)


@dataclass(frozen=True)
class AtomicityResult:
    """What was checked and how it went; ``notes`` say what could not be checked and why."""

    checks: int = 0
    linearizable: bool | None = None  # None: not checked
    failure: str | None = None  # when not linearizable: SEQUENTIAL (a logic bug) or RACE
    disagreement: dict[str, Any] | None = None  # the first check wrong one at a time, as JSON
    faults_injected: int = 0
    faults_ok: bool | None = None
    # when not ok: MISHANDLED (ERR-1 or ERR-2 broken) or SEQUENTIAL (wrong with no fault at all)
    faults_failure: str | None = None
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)  # each fault and its handling

    @property
    def passed(self) -> bool:
        return self.linearizable is not False and self.faults_ok is not False

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "linearizable": self.linearizable,
            "failure": self.failure,
            "disagreement": self.disagreement,
            "faults_injected": self.faults_injected,
            "faults_ok": self.faults_ok,
            "faults_failure": self.faults_failure,
            "faults": list(self.faults),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        if self.linearizable is None and self.faults_ok is None:
            return "atomicity: not checked; " + "; ".join(self.notes)
        parts = []
        if self.linearizable is None:
            parts.append("concurrent checks not checked")
        else:
            verdict = {
                SEQUENTIAL: ": SEQUENTIAL DISAGREEMENT (the target is wrong one check at a time, "
                "with no concurrency: a logic bug, not a race)",
                RACE: " NOT LINEARIZABLE (a race)",
            }.get(self.failure or "", " linearizable" if self.linearizable else " NOT LINEARIZABLE")
            parts.append(f"{self.checks} concurrent checks{verdict}")
        if self.faults_ok is None:
            parts.append("injected store faults not checked")
        else:
            handled = {
                MISHANDLED: " MISHANDLED",
                SEQUENTIAL: ": SEQUENTIAL DISAGREEMENT (wrong with no fault injected: a logic bug, "
                "not a fault mishandled)",
            }.get(self.faults_failure or "", " handled per ERR-1/ERR-2")
            parts.append(f"{self.faults_injected} injected store faults{handled}")
        text = "atomicity: " + "; ".join(parts)
        if self.notes:
            text += " (" + "; ".join(self.notes) + ")"
        return "\n".join([text, *self.details])


def run_atomicity(spec: str, checks: int, target: Connection) -> AtomicityResult:
    """About ``checks`` concurrent checks, then the fault cases, against the target ``spec``.

    An in-process target is driven through fresh stores of its own; a ``cmd:`` port through
    ``target``, by bursts and store_fail / store_recover, for the capabilities it declares.
    """
    factory = store_factory(spec)
    if factory is None:
        return _port(target, checks)
    store = factory()
    if inspect.iscoroutinefunction(getattr(store, "check_and_reserve", None)):
        return AtomicityResult(notes=["async stores are not driven by threads yet"])
    per_thread = max(1, checks // THREADS)
    history = record_threads(store, GATES, POLICIES, threads=THREADS, checks_per_thread=per_thread)
    verdicts = [_labelled(check_history(history), history, target)]
    recorded = THREADS * per_thread
    notes: list[str] = []
    if spec.startswith(SHARED_SCHEMES):
        per_process = max(1, per_thread // PROCESSES)
        shared = record_processes(
            spec, GATES, POLICIES, processes=PROCESSES, threads=THREADS // 2,
            checks_per_thread=per_process,
        )  # fmt: skip
        verdicts.append(_labelled(check_history(shared), shared, target))
        recorded += PROCESSES * (THREADS // 2) * per_process
        notes.append(f"{PROCESSES} processes with clients of their own included")
    faults = run_faults(factory())
    details = [verdict.explain() for verdict in verdicts if not verdict.ok]
    return AtomicityResult(
        checks=recorded,
        linearizable=all(verdict.ok for verdict in verdicts),
        **_failure(verdicts),
        **_faults(faults),
        details=details + ([] if faults.ok else [faults.describe()]),
        notes=notes,
    )


def _port(target: Connection, checks: int) -> AtomicityResult:
    """A ``cmd:`` port: its bursts, then the fault cases, each if it declares the capability."""
    result = _bursts(target, checks)
    if "store_faults" not in target.capabilities:
        note = "the port does not declare the store_faults capability"
        return dataclasses.replace(result, notes=[*result.notes, note])
    faults = run_port_faults(target)
    return dataclasses.replace(
        result,
        **_faults(faults),
        details=result.details + ([] if faults.ok else [faults.describe()]),
        notes=[
            *result.notes,
            "store faults by store_fail and store_recover around each failing check",
        ],
    )


def _faults(report: FaultReport) -> dict[str, Any]:
    """The fault layer's fields of an AtomicityResult."""
    return {
        "faults_injected": len(report.faults),
        "faults_ok": report.ok,
        "faults_failure": report.failure,
        "faults": report.to_dict()["faults"],
    }


def _bursts(target: Connection, checks: int) -> AtomicityResult:
    """A port's own concurrent checks (capability ``burst``), checked like a thread history."""
    if "burst" not in target.capabilities:
        return AtomicityResult(notes=["the port does not declare the burst capability"])
    target.request({"op": "reset"})
    operations: list[Operation] = []
    rounds = max(1, checks // BURST)
    for index in range(rounds):
        gate, policy = GATES[index % len(GATES)], POLICIES[index % len(POLICIES)]
        try:
            answer = target.request(
                {
                    "op": "burst",
                    "gate": gate.to_dict(),
                    "policy": policy.to_dict(),
                    "count": BURST,
                    "start": START + len(operations) * STEP,
                    "step": STEP,
                }
            )
        except HarnessError as fault:
            with contextlib.suppress(HarnessError):  # a fresh adapter for the fault cases
                target.restart()
            return AtomicityResult(checks=len(operations), linearizable=False,
                                   details=[fault.explain()])  # fmt: skip
        if "burst" not in answer:
            raise TargetError(f"the port declared burst but answered {answer}")
        for number, check in enumerate(answer["burst"]):
            operations.append(
                Operation(
                    process=index * BURST + number,
                    invoke_ns=check["invoke_ns"],
                    return_ns=check["return_ns"],
                    gate=(gate.namespace, gate.action, gate.principal),
                    policy=policy.to_dict(),
                    now=check["now"],
                    result=fields_from_record(check["decision"]),
                )
            )
    history = History(tuple(operations), description=f"{rounds} bursts")
    verdict = _labelled(check_history(history), history, target)
    return AtomicityResult(
        checks=len(operations),
        linearizable=verdict.ok,
        **_failure([verdict]),
        details=[] if verdict.ok else [verdict.explain()],
        notes=[f"{rounds} bursts of {BURST} checks run by the port"],
    )


def _labelled(verdict: HistoryVerdict, history: History, target: Connection) -> HistoryVerdict:
    """The verdict, its counterexamples labelled by running the checks again one at a time."""
    if not verdict.counterexamples:
        return verdict
    return verdict.with_replay(replay_sequentially(target, history))


def _failure(verdicts: list[HistoryVerdict]) -> dict[str, Any]:
    """The kind of failure across the verdicts: a logic bug before a race, as it is fixed first."""
    kinds = [verdict.failure for verdict in verdicts]
    failure = SEQUENTIAL if SEQUENTIAL in kinds else RACE if RACE in kinds else None
    first = next((v for v in verdicts if v.failure == SEQUENTIAL), None)
    shown = None
    if first is not None:
        replay = first.replay
        found = replay.disagreement if replay is not None and replay.conclusive else None
        shown = found or (first.disagreements[0] if first.disagreements else None)
    return {"failure": failure, "disagreement": None if shown is None else shown.to_dict()}
