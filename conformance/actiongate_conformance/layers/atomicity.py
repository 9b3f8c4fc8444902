"""The atomicity and fault checks of ``actiongate-conformance run``, for stores it can reach.

Concurrent checks are recorded (threads over one store; for a Redis URL also processes, each
with a client of its own) and the history is checked for linearizability against the model;
then faults are injected into a Python store's calls and each decision, and what later checks
see, is checked against ERR-1 and ERR-2. ``cmd:`` ports need a burst capability in the protocol
for the first and declare ``store_faults`` for the second (covered by the vectors); until the
protocol has it, their atomicity is reported as not checked, never as passed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from actiongate import Gate, Policy, StoreErrorMode

from ..checkers.linearizability import History, Operation, check_history, fields_from_record
from ..targets import TargetError, store_factory
from ..targets.protocol import Connection, HarnessError
from .concurrency import record_processes, record_threads
from .faults import run_faults

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


@dataclass(frozen=True)
class AtomicityResult:
    """What was checked and how it went; ``notes`` say what could not be checked and why."""

    checks: int = 0
    linearizable: bool | None = None  # None: not checked
    faults_injected: int = 0
    faults_ok: bool | None = None
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
            "faults_injected": self.faults_injected,
            "faults_ok": self.faults_ok,
            "faults": list(self.faults),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        if self.linearizable is None and self.faults_ok is None:
            return "atomicity: not checked; " + "; ".join(self.notes)
        parts = []
        if self.linearizable is not None:
            verdict = "linearizable" if self.linearizable else "NOT LINEARIZABLE"
            parts.append(f"{self.checks} concurrent checks {verdict}")
        if self.faults_ok is not None:
            handled = "handled per ERR-1/ERR-2" if self.faults_ok else "MISHANDLED"
            parts.append(f"{self.faults_injected} injected store faults {handled}")
        text = "atomicity: " + "; ".join(parts)
        if self.notes:
            text += " (" + "; ".join(self.notes) + ")"
        return "\n".join([text, *self.details])


def run_atomicity(spec: str, checks: int, target: Connection) -> AtomicityResult:
    """About ``checks`` concurrent checks, then the fault cases, against the target ``spec``.

    An in-process target is driven through fresh stores of its own; a ``cmd:`` port through
    ``target``, by bursts, if it declares the capability.
    """
    factory = store_factory(spec)
    if factory is None:
        return _bursts(target, checks)
    store = factory()
    if inspect.iscoroutinefunction(getattr(store, "check_and_reserve", None)):
        return AtomicityResult(notes=["async stores are not driven by threads yet"])
    per_thread = max(1, checks // THREADS)
    history = record_threads(store, GATES, POLICIES, threads=THREADS, checks_per_thread=per_thread)
    verdicts = [check_history(history)]
    recorded = THREADS * per_thread
    notes: list[str] = []
    if spec.startswith(SHARED_SCHEMES):
        per_process = max(1, per_thread // PROCESSES)
        shared = record_processes(
            spec, GATES, POLICIES, processes=PROCESSES, threads=THREADS // 2,
            checks_per_thread=per_process,
        )  # fmt: skip
        verdicts.append(check_history(shared))
        recorded += PROCESSES * (THREADS // 2) * per_process
        notes.append(f"{PROCESSES} processes with clients of their own included")
    faults = run_faults(factory())
    details = [verdict.explain() for verdict in verdicts if not verdict.ok]
    if not faults.ok:
        details.append(faults.describe())
    return AtomicityResult(
        checks=recorded,
        linearizable=all(verdict.ok for verdict in verdicts),
        faults_injected=len(faults.faults),
        faults_ok=faults.ok,
        details=details,
        notes=notes,
        faults=faults.to_dict()["faults"],
    )


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
    verdict = check_history(History(tuple(operations), description=f"{rounds} bursts"))
    return AtomicityResult(
        checks=len(operations),
        linearizable=verdict.ok,
        details=[] if verdict.ok else [verdict.explain()],
        notes=[
            f"{rounds} bursts of {BURST} checks run by the port; store faults are covered by "
            "the store-error vectors"
        ],
    )
