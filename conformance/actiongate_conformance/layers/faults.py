"""The fault layer: checks whose store calls fail on chosen steps, each case judged against
ERR-1 (the decision) and ERR-2 (what later checks see)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actiongate import Decision, Engine, Gate, Policy

from ..checkers.linearizability import DecisionFields, step
from ..targets.faulty_store import FaultyStore

__all__ = ["FAULT_CASES", "FaultCase", "FaultHandling", "FaultReport", "FaultStep", "run_faults"]


@dataclass(frozen=True)
class FaultCase:
    """Checks on one fresh gate; the steps marked ``fail`` have their store call raise.

    ``policy`` is the JSON shape without ``on_store_error``: each case runs once under
    FAIL_CLOSED and once under FAIL_OPEN. Times are relative to the run's own base.
    """

    id: str
    description: str
    clauses: tuple[str, ...]
    policy: Mapping[str, Any]
    steps: tuple[tuple[float, bool], ...]


def _case(
    id: str, description: str, clauses: str, policy: tuple[int, float | None, float], steps: str
) -> FaultCase:
    max_calls, window, cooldown = policy
    parsed = tuple((float(item.rstrip("!")), item.endswith("!")) for item in steps.split())
    return FaultCase(
        id,
        description,
        tuple(clauses.split()),
        {"max_calls": max_calls, "window": window, "cooldown": cooldown, "mode": "SOFT"},
        parsed,
    )


# Steps: times, "!" marking a check whose store call fails.
FAULT_CASES: tuple[FaultCase, ...] = (
    _case("empty-gate", "a failed first check records nothing", "ERR-1 ERR-2",
          (2, 10.0, 0.0), "1! 2 3"),
    _case("last-slot", "a failed check does not take the last slot", "ERR-1 ERR-2 RES-1",
          (2, 10.0, 0.0), "1 2! 3 4"),
    _case("cooldown", "a failed check starts no cooldown", "ERR-1 ERR-2 CD-1",
          (5, 10.0, 5.0), "1! 2"),
    _case("no-prune", "a failed check prunes nothing", "ERR-1 ERR-2 RET-2",
          (5, 10.0, 0.0), "0 100! 5"),
    _case("max-calls-zero", "max_calls 0 still fails as STORE_ERROR", "ERR-1 RATE-1",
          (0, 10.0, 0.0), "1! 2"),
    _case("repeated", "consecutive failures record nothing", "ERR-1 ERR-2",
          (3, 10.0, 0.0), "1 2! 3! 4! 5 6 7"),
)  # fmt: skip


@dataclass(frozen=True)
class FaultStep:
    """One check of a fault case: what the spec expects and what the target decided."""

    case: str
    on_store_error: str
    index: int
    now: float
    injected: bool
    expected: DecisionFields
    actual: DecisionFields | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.actual == self.expected


@dataclass(frozen=True)
class FaultHandling:
    """One injected fault and how it was handled.

    ``decision_ok``: the decision was ERR-1's; ``nothing_recorded``: every later check of the
    case decided as if the failed check never happened (ERR-2).
    """

    case: str
    on_store_error: str
    index: int
    now: float
    injected: str
    decision: DecisionFields | None
    decision_ok: bool
    nothing_recorded: bool
    detail: str

    @property
    def ok(self) -> bool:
        return self.decision_ok and self.nothing_recorded

    def to_dict(self) -> dict[str, Any]:
        decision = None if self.decision is None else self.decision._asdict()
        return {
            "case": self.case,
            "on_store_error": self.on_store_error,
            "step": self.index,
            "now": self.now,
            "injected": self.injected,
            "decision": decision,
            "decision_ok": self.decision_ok,
            "nothing_recorded": self.nothing_recorded,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class FaultReport:
    """Every fault injected, how each was handled, and every check the cases made."""

    faults: tuple[FaultHandling, ...]
    steps: tuple[FaultStep, ...]

    @property
    def ok(self) -> bool:
        return all(fault.ok for fault in self.faults) and all(s.ok for s in self.steps)

    def describe(self) -> str:
        handled = sum(fault.ok for fault in self.faults)
        lines = [f"{len(self.faults)} faults injected, {handled} handled as ERR-1 and ERR-2 ask:"]
        lines += [
            f"  {'ok  ' if f.ok else 'FAIL'} {f.case} ({f.on_store_error}) step {f.index} "
            f"now={f.now!r}: {f.detail}"
            for f in self.faults
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "faults": [fault.to_dict() for fault in self.faults]}


def run_faults(store: Any, cases: Sequence[FaultCase] = FAULT_CASES) -> FaultReport:
    """Run the fault cases through the reference Engine over ``store``.

    A ``FaultyStore`` (or a subclass with its own way of failing) is used as it is; any other
    store is wrapped in one. A step marked to fail sets ``failing`` for that one call. Each run
    of a case uses a fresh gate and times above every earlier run's, so that RET-4 housekeeping
    of earlier runs cannot touch it.
    """
    faulty = store if isinstance(store, FaultyStore) else FaultyStore(store)
    now_box = [0.0]
    engine = Engine(faulty, clock=lambda: now_box[0])
    faults: list[FaultHandling] = []
    steps: list[FaultStep] = []
    runs = itertools.product(cases, ("FAIL_CLOSED", "FAIL_OPEN"))
    for run, (case, mode) in enumerate(runs, 1):
        base = 1000.0 * run
        policy = Policy.from_dict({**case.policy, "on_store_error": mode})
        gate = Gate("actiongate-conformance", "faults", f"{case.id}/{mode}")
        faulty.failing = False
        engine.clear(gate)
        case_steps = _run_case(
            engine=engine,
            faulty=faulty,
            now_box=now_box,
            gate=gate,
            policy=policy,
            case=case,
            mode=mode,
            base=base,
        )
        steps += case_steps
        faults += _handling(case_steps, mode)
    return FaultReport(tuple(faults), tuple(steps))


def _run_case(
    *,
    engine: Engine,
    faulty: FaultyStore,
    now_box: list[float],
    gate: Gate,
    policy: Policy,
    case: FaultCase,
    mode: str,
    base: float,
) -> list[FaultStep]:
    events: tuple[float, ...] = ()
    store_error = DecisionFields(
        "ALLOW" if mode == "FAIL_OPEN" else "BLOCK", "STORE_ERROR", 0, None
    )
    out = []
    for index, (offset, fail) in enumerate(case.steps):
        now = base + offset
        if fail:
            expected = store_error  # ERR-1; ERR-2: the state stays as it was
        else:
            events, expected = step(events, now, case.policy)
        now_box[0] = now
        injected_before = faulty.faults_injected
        faulty.failing = fail
        error = actual = None
        try:
            decision = engine.check(gate, policy)
            actual = _all_fields(decision)
        except Exception as escaped:
            error = f"the check raised {type(escaped).__name__}: {escaped} (ERR-3)"
        finally:
            faulty.failing = False
        if fail and faulty.faults_injected == injected_before and error is None:
            error = "the engine never called the store, so no fault was injected"
        out.append(FaultStep(case.id, mode, index, now, fail, expected, actual, error))
    return out


def _all_fields(decision: Decision) -> DecisionFields:
    reason = decision.reason
    return DecisionFields(
        decision.status.value,
        None if reason is None else reason.value,
        decision.calls_in_window,
        decision.time_since_last,
    )


def _handling(steps: list[FaultStep], mode: str) -> list[FaultHandling]:
    out = []
    for position, fault in enumerate(steps):
        if not fault.injected:
            continue
        decision_ok = fault.ok
        wrong_later = next((s for s in steps[position + 1 :] if not s.injected and not s.ok), None)
        if fault.error is not None:
            detail = fault.error
        elif not decision_ok:
            detail = f"decided {fault.actual}, ERR-1 wants {fault.expected}"
        else:
            detail = f"raised InjectedFault -> {fault.actual}"
        if wrong_later is not None:
            detail += (
                f"; later, the check at now={wrong_later.now!r} gave {wrong_later.actual}, but if "
                f"nothing had been recorded or pruned it gives {wrong_later.expected} (ERR-2)"
            )
        else:
            detail += "; later checks show nothing recorded"
        out.append(
            FaultHandling(
                case=fault.case,
                on_store_error=mode,
                index=fault.index,
                now=fault.now,
                injected="InjectedFault raised by check_and_reserve",
                decision=fault.actual,
                decision_ok=decision_ok,
                nothing_recorded=wrong_later is None,
                detail=detail,
            )
        )
    return out
