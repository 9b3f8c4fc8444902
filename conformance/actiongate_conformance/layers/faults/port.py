"""Faults for a ``cmd:`` port that declares the capability ``store_faults``.

A port's store can only be failed as a whole, by the protocol's ``store_fail`` (every store
operation fails) and ``store_recover``, not for one call as a Python store is (``store``). So
each failing check of a case goes out bracketed, ``store_fail``, the check, ``store_recover``,
and the case's other checks and its control go out plain. The cases, what the spec expects and
the judgement are those of Python stores, so a port gets the same verdicts in the same words.
A port adds what only the protocol asks: ``clear`` and ``clear_all`` under ``store_fail`` must
answer the error ``store_error`` (CLR-1).

Each check goes out as one batch with the requests sent for it, so that an adapter fault (a
crash, a hang, a response that breaks the protocol) is the error of the very check that met it.
The run of that case stops there (a restarted adapter has lost its store), the adapter is
restarted, and the next case starts on a reset store.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from actiongate import Gate, Policy

from ...checkers.linearizability import DecisionFields, show
from ...targets.protocol import Connection, HarnessError
from .cases import CONTROL, FAULT_CASES, MODES, RUN, FaultCase, control_of, expected_checks, gates
from .report import FaultHandling, FaultReport, FaultStep, judged

__all__ = ["run_port_faults"]

INJECTED = "store_fail before the check, store_recover after"
OK = {"ok": True}
RESET = {"op": "reset"}  # an empty, working store
CLEARS = (("clear-fails", "clear"), ("clear-all-fails", "clear_all"))  # (case, op)


def run_port_faults(target: Connection, cases: Sequence[FaultCase] = FAULT_CASES) -> FaultReport:
    """The fault cases, then a clear and a clear_all under store_fail, through ``target``, a
    port that declares ``store_faults``. Gates and times are those ``run_faults`` uses."""
    faults: list[FaultHandling] = []
    steps: list[FaultStep] = []
    controls: list[FaultStep] = []
    run = _Run(target)
    for number, (case, mode) in enumerate(itertools.product(cases, MODES), 1):
        gate, control_gate = gates(case, mode)
        case_steps = run.checks(gate, case, mode, RUN * number)
        control = run.checks(control_gate, control_of(case), mode, RUN * number + CONTROL)
        steps += case_steps
        controls += control
        faults += judged(case_steps, mode, control, INJECTED, "under store_fail")
        if not run.next_case():
            return FaultReport(tuple(faults), tuple(steps), tuple(controls))
    faults += _clears(run)
    return FaultReport(tuple(faults), tuple(steps), tuple(controls))


class _Run:
    """Sends the checks of one run of a case, and what must precede them, until a fault."""

    def __init__(self, target: Connection) -> None:
        self.target = target
        self.fault: HarnessError | None = None
        self.first: list[dict[str, Any]] = [RESET]  # sent before the next request

    def checks(self, gate: Gate, case: FaultCase, mode: str, base: float) -> list[FaultStep]:
        """The checks of ``case`` on ``gate``, cleared first; none after an adapter fault."""
        policy = Policy.from_dict({**case.policy, "on_store_error": mode}).to_dict()
        self.first.append({"op": "clear", "gate": gate.to_dict()})
        out = []
        for index, now, fail, expected in expected_checks(case, mode, base):
            if self.fault is not None:
                break
            check = {"op": "check", "gate": gate.to_dict(), "policy": policy, "now": now}
            fail_op, recover = [{"op": "store_fail"}], [{"op": "store_recover"}]
            requests = [*self.first, *(fail_op if fail else []), check, *(recover if fail else [])]
            answer, error = self.send(requests, check)
            actual = None
            if answer is not None:
                actual, error = _decision(answer, fail)
            out.append(FaultStep(case.id, mode, index, now, fail, expected, actual, error))
        return out

    def send(
        self, requests: list[dict[str, Any]], subject: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The answer to ``subject``, one of ``requests``; else (None) why the adapter did not
        answer as a working one: its fault, or another request (reset, clear, store_fail,
        store_recover) not answered ok."""
        self.first = []
        try:
            answers = self.target.request_many(requests)
        except HarnessError as fault:
            self.fault = fault
            return None, fault.explain()
        pairs = list(zip(requests, answers, strict=True))
        for request, answer in pairs:
            if request is not subject and answer != OK:
                return None, f"{request['op']} answered {show(answer)}, not ok"
        return next(answer for request, answer in pairs if request is subject), None

    def next_case(self) -> bool:
        """Ready for the next case: after a fault, a restarted adapter on a reset store. False
        when the adapter cannot be started again."""
        if self.fault is None:
            return True
        self.fault, self.first = None, [RESET]
        try:
            self.target.restart()
        except HarnessError:
            return False
        return True


def _decision(answer: dict[str, Any], fail: bool) -> tuple[DecisionFields | None, str | None]:
    """The compared fields of a check's answer, or why there are none."""
    if "decision" not in answer:
        why = "a store failure is a decision, not an error (ERR-3)" if fail else "not a decision"
        return None, f"the check answered {show(answer)}: {why}"
    record = answer["decision"]
    try:
        since = record["time_since_last"]
        fields = (record["status"], record["reason"], record["calls_in_window"])
        return DecisionFields(*fields, None if since is None else float(since)), None
    except (KeyError, TypeError, ValueError):
        return None, f"the check answered a decision without its fields: {show(record)}"


def _clears(run: _Run) -> list[FaultHandling]:
    """CLR-1: a clear and a clear_all that the failing store cannot carry out answer the error
    store_error. What they leave behind is not judged: the spec does not say."""
    gate = Gate("actiongate-conformance", "faults", "clear")
    out = []
    for case, op in CLEARS:
        clear = {"op": op, "gate": gate.to_dict()} if op == "clear" else {"op": op}
        requests = [*run.first, {"op": "store_fail"}, clear, {"op": "store_recover"}]
        answer, why = run.send(requests, clear)
        error = None if answer is None else answer.get("error")
        ok = isinstance(error, dict) and error.get("kind") == "store_error"
        detail = why or (
            "answered the error store_error (CLR-1)"
            if ok
            else f"answered {show(answer)}; a clear the store cannot carry out answers the "
            "error store_error (CLR-1)"
        )
        out.append(
            FaultHandling(
                case=case,
                on_store_error=None,
                index=0,
                now=None,
                injected=f"store_fail before {op}",
                decision=None,
                decision_ok=ok,
                nothing_recorded=True,  # not judged (see above)
                detail=detail,
                operation=op,
            )
        )
        if not run.next_case():
            break
    return out
