"""What the checks of a fault case gave, how each fault was handled, and the report.

``judged`` holds each failing check to ERR-1 (its decision) and ERR-2: every later check of the
run must answer as the same check of the control does (see ``cases``). A control that already
disagrees with the spec is a logic bug with no fault injected: ``FaultReport`` reports it as a
sequential disagreement, not as a fault mishandled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...checkers.linearizability import DecisionFields, broken_clauses, show

__all__ = ["FaultHandling", "FaultReport", "FaultStep", "judged"]


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

    @property
    def answer(self) -> str:
        """What the target answered, for people: the decision, or what went wrong instead."""
        return str(self.actual) if self.error is None else self.error


@dataclass(frozen=True)
class FaultHandling:
    """One injected fault and how it was handled.

    ``decision_ok``: the decision was ERR-1's; ``nothing_recorded``: every later check of the
    case decided as if the failed check never happened (ERR-2). A port's clears under
    ``store_fail`` (``operation`` clear or clear_all) have no policy, time or decision:
    ``decision_ok`` says the answer was the error store_error (CLR-1).
    """

    case: str
    on_store_error: str | None
    index: int
    now: float | None
    injected: str
    decision: DecisionFields | None
    decision_ok: bool
    nothing_recorded: bool
    detail: str
    operation: str = "check"

    @property
    def ok(self) -> bool:
        return self.decision_ok and self.nothing_recorded

    def to_dict(self) -> dict[str, Any]:
        decision = None if self.decision is None else self.decision._asdict()
        return {
            "case": self.case,
            "operation": self.operation,
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
    """Every fault injected, how each was handled, every check the cases made, and the checks
    of their controls (the cases without their failing checks)."""

    faults: tuple[FaultHandling, ...]
    steps: tuple[FaultStep, ...]
    control: tuple[FaultStep, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            self.mishandled == 0
            and self.disagreement is None
            and all(s.error is None for s in self.steps)
        )

    @property
    def mishandled(self) -> int:
        return sum(not fault.ok for fault in self.faults)

    @property
    def failure(self) -> str | None:
        """``"mishandled"``: a fault's decision or effect, or an exception (ERR-3); else
        ``"sequential"``: the cases are wrong with no fault injected; None when ok."""
        if self.mishandled or any(s.error is not None for s in self.steps):
            return "mishandled"
        return None if self.disagreement is None else "sequential"

    @property
    def disagreement(self) -> FaultStep | None:
        """The first check of a control (no fault injected) whose answer is not the spec's."""
        return next((s for s in self.control if not s.ok), None)

    def describe(self) -> str:
        lines = []
        wrong = self.disagreement
        if wrong is not None:
            clauses = broken_clauses(wrong.expected, wrong.actual) if wrong.actual else ()
            # An error may run over lines (an adapter fault and its stderr): it goes last.
            got = (
                f"gave {wrong.actual}, the spec says {wrong.expected}"
                + (f" (breaks {', '.join(clauses)})" if clauses else "")
                if wrong.error is None
                else f"(the spec: {wrong.expected}) failed: {_indented(wrong.error)}"
            )
            lines.append(
                "SEQUENTIAL DISAGREEMENT with no fault injected (a logic bug, not a fault "
                f"mishandled): case {wrong.case} ({wrong.on_store_error}) run without its failing "
                f"checks, the check at now={show(wrong.now)} {got}"
            )
        handled = len(self.faults) - self.mishandled
        clears = any(f.operation != "check" for f in self.faults)
        lines.append(
            f"{len(self.faults)} faults injected, {handled} handled as ERR-1, ERR-2"
            + (" and CLR-1 ask" if clears else " ask")
            + " (ERR-2: later checks answer as in the case run without its failing checks):"
        )
        lines += [
            f"  {'ok  ' if f.ok else 'FAIL'} {_where(f)}: {_indented(f.detail)}"
            for f in self.faults
        ]
        # A check that went wrong before any fault of its run: no fault's line tells of it.
        told = " ".join(f.detail for f in self.faults)
        untold = next((s for s in self.steps if s.error and s.error not in told), None)
        if untold is not None:
            lines.append(
                f"  FAIL {untold.case} ({untold.on_store_error}) step {untold.index} "
                f"now={show(untold.now)}, no fault injected yet: {_indented(untold.answer)}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "faults": [fault.to_dict() for fault in self.faults]}


def _indented(text: str) -> str:
    """``text`` with its later lines (an adapter's request and stderr) set under its line."""
    return text.replace("\n", "\n       ")


def _where(fault: FaultHandling) -> str:
    if fault.on_store_error is None or fault.now is None:  # a port's clear: no policy, no time
        return f"{fault.case} step {fault.index}"
    return f"{fault.case} ({fault.on_store_error}) step {fault.index} now={show(fault.now)}"


def judged(
    steps: Sequence[FaultStep],
    mode: str,
    control: Sequence[FaultStep],
    injected: str,
    failed: str,
) -> list[FaultHandling]:
    """How each failing check of one run of a case was handled: its decision against ERR-1,
    the later checks against the ``control`` (ERR-2). ``injected`` says how the fault was made,
    ``failed`` how the check met it, in the report's text."""
    out = []
    # What the target itself answers to each later check with no failed check before it (fewer
    # checks, when an adapter fault cut the control short).
    answers = dict(zip((s.index for s in steps if not s.injected), control, strict=False))
    for position, fault in enumerate(steps):
        if not fault.injected:
            continue
        decision_ok = fault.ok
        wrong_later = next(
            (s for s in steps[position + 1 :] if not s.injected and not _as_control(s, answers)),
            None,
        )
        if fault.error is not None:
            detail = fault.error
        elif not decision_ok:
            detail = f"decided {fault.actual}, ERR-1 wants {fault.expected}"
        else:
            detail = f"{failed} -> {fault.actual}"
        # No later check ran when an adapter fault ended the run: then nothing shows what the
        # failed check recorded.
        ran_later = any(not s.injected for s in steps[position + 1 :])
        if wrong_later is not None and wrong_later.error is not None:
            detail += f"; later, the check at now={show(wrong_later.now)}: {wrong_later.error}"
        elif wrong_later is not None:
            control_step = answers.get(wrong_later.index)
            should = (
                f"the spec says {wrong_later.expected}"
                if control_step is None
                else f"in the case run without its failing checks it gives {control_step.answer} "
                f"(the spec: {wrong_later.expected})"
            )
            detail += (
                f"; later, the check at now={show(wrong_later.now)} gave {wrong_later.answer}, but "
                f"{should} (ERR-2)"
            )
        elif ran_later or fault.error is None:
            detail += "; later checks show nothing recorded"
        out.append(
            FaultHandling(
                case=fault.case,
                on_store_error=mode,
                index=fault.index,
                now=fault.now,
                injected=injected,
                decision=fault.actual,
                decision_ok=decision_ok,
                nothing_recorded=wrong_later is None and (ran_later or fault.error is None),
                detail=detail,
            )
        )
    return out


def _as_control(step: FaultStep, answers: Mapping[int, FaultStep]) -> bool:
    """``step`` answered as the same check of the control did; with no usable control answer,
    as the spec says."""
    control = answers.get(step.index)
    if step.error is not None:
        return False
    if control is None or control.error is not None or control.actual is None:
        return step.ok
    return step.actual == control.actual
