"""Faults for Python stores: the reference Engine over the store, wrapped in a FaultyStore that
fails the one store call of each failing check."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

from actiongate import Decision, Engine, Gate, Policy

from ...checkers.linearizability import DecisionFields
from ...targets.faulty_store import FaultyStore
from .cases import CONTROL, FAULT_CASES, MODES, RUN, FaultCase, control_of, expected_checks, gates
from .report import FaultHandling, FaultReport, FaultStep, judged

__all__ = ["run_faults"]

INJECTED = "InjectedFault raised by check_and_reserve"


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
    controls: list[FaultStep] = []
    runs = itertools.product(cases, MODES)
    for run, (case, mode) in enumerate(runs, 1):
        base = RUN * run
        policy = Policy.from_dict({**case.policy, "on_store_error": mode})
        gate, control_gate = gates(case, mode)
        faulty.failing = False
        engine.clear(gate)
        run_case = functools.partial(
            _run_case, engine=engine, faulty=faulty, now_box=now_box, policy=policy, mode=mode
        )
        case_steps = run_case(gate=gate, case=case, base=base)
        # The control: a fresh gate, later times, the failing checks left out.
        engine.clear(control_gate)
        control = run_case(gate=control_gate, case=control_of(case), base=base + CONTROL)
        steps += case_steps
        controls += control
        faults += judged(case_steps, mode, control, INJECTED, "raised InjectedFault")
    return FaultReport(tuple(faults), tuple(steps), tuple(controls))


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
    out = []
    for index, now, fail, expected in expected_checks(case, mode, base):
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
