"""Reports for people: the per-clause table and each failure, expected against actual."""

from __future__ import annotations

import json
from typing import Any

from .runner import FAIL, Outcome, Report
from .vectors import ExpectedDecision, ExpectedError, Step, Vector

__all__ = ["describe_step", "terminal_report", "timeline"]


def terminal_report(report: Report, target: str) -> str:
    lines = [f"ActionGate 1.0 conformance: {target}", ""]
    lines.append(f"{'clause':<10} {'vectors':>7} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for verdict in report.clauses():
        total = verdict.passed + verdict.failed + verdict.skipped
        mark = "  FAIL" if verdict.failed else ""
        lines.append(
            f"{verdict.clause:<10} {total:>7} {verdict.passed:>7} {verdict.failed:>7} "
            f"{verdict.skipped:>8}{mark}"
        )
    for outcome in report.failed:
        lines += ["", *failure_lines(outcome)]
    skipped = [outcome for outcome in report.outcomes if outcome.result == "skip"]
    if skipped:
        reasons = sorted({outcome.reason or "" for outcome in skipped})
        lines += ["", f"skipped {len(skipped)} vectors: {'; '.join(reasons)}"]
    summary = "CONFORMING" if report.conforming else "NOT CONFORMING"
    lines += [
        "",
        f"{summary}: {report.count('pass')} passed, {report.count(FAIL)} failed, "
        f"{report.count('skip')} skipped",
    ]
    return "\n".join(lines)


def failure_lines(outcome: Outcome) -> list[str]:
    vector, step = outcome.vector, outcome.step
    assert step is not None
    lines = [
        f"FAIL {vector.file} > {vector.id} > step {step.index} ({', '.join(vector.clauses)})",
        f"  {vector.description}",
        f"  step: {describe_step(step)}",
    ]
    lines += [
        f"  {mismatch.field}: expected {_show(mismatch.expected)}, got {_show(mismatch.actual)}"
        for mismatch in outcome.mismatches
    ]
    lines.append("  timeline of this gate:")
    lines += ["    " + line for line in timeline(vector, step.index, outcome.responses)]
    lines.append(f"  rerun: actiongate-conformance run --select {vector.id}")
    return lines


def timeline(vector: Vector, upto: int | None = None, responses: tuple[Any, ...] = ()) -> list[str]:
    """The vector's steps as lines, marking what each got when ``responses`` are known.

    With ``upto``, only steps up to it that touch the failing step's gate (or every gate).
    """
    steps = vector.steps if upto is None else vector.steps[: upto + 1]
    focus = vector.steps[upto].gate if upto is not None else None
    lines = []
    for step in steps:
        if focus is not None and step.gate is not None and step.gate != focus:
            continue
        line = f"t={_show(step.now):<22} {describe_step(step)}"
        if step.index < len(responses):
            line += f"   -> {_outcome_of(responses[step.index])}"
        if step.note:
            line += f"   # {step.note}"
        lines.append(line)
    return lines


def describe_step(step: Step) -> str:
    if step.op != "check":
        gate = f" {_gate(step.gate)}" if step.gate is not None else ""
        return f"{step.op}{gate}"
    policy = step.policy or {}
    policy_text = ", ".join(f"{key}={_show(value)}" for key, value in policy.items())
    expect = step.expect
    if isinstance(expect, ExpectedDecision):
        wanted = (
            f"{expect.status} {expect.reason or ''} calls={expect.calls_in_window} "
            f"since_last={_show(expect.time_since_last)}"
        )
    elif isinstance(expect, ExpectedError):
        wanted = f"error {expect.error} ({expect.field})"
    else:
        wanted = "?"
    return f"check {_gate(step.gate)} [{policy_text}] expect {wanted}"


def _outcome_of(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("decision"), dict):
        d = response["decision"]
        return (
            f"{d.get('status')} {d.get('reason') or ''} calls={d.get('calls_in_window')} "
            f"since_last={_show(d.get('time_since_last'))}"
        )
    return _show(response)


def _gate(gate: Any) -> str:
    if isinstance(gate, dict) and set(gate) == {"namespace", "action", "principal"}:
        return "(" + ", ".join(_show(gate[k]) for k in ("namespace", "action", "principal")) + ")"
    return _show(gate)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)
