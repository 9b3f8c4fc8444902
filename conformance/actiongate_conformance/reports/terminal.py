"""The terminal report: the table of clauses, each failure explained, the layers' summaries.

The run's one verdict line is ``verdict.Verdict.line``, printed after all of these.
"""

from __future__ import annotations

import shlex
from typing import Any

from .. import SPEC_VERSION
from ..layers.stateful import StatefulResult
from ..layers.timeline import describe_step, show, timeline
from ..layers.vectors import BAD, DECLARED, ERROR, FAIL, PASS, SKIP, STALE, Outcome, Report

__all__ = ["failure_lines", "first_problem", "stateful_summary", "terminal_report"]

DEFAULT_TARGET = "memory://"


def terminal_report(report: Report, target: str, implementation: dict[str, Any]) -> str:
    name = implementation.get("name", "?")
    lines = [f"ActionGate {SPEC_VERSION} conformance: {target} ({name})", ""]
    lines.append(f"{'clause':<10} {'vectors':>7} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for verdict in report.clauses():
        if not verdict.vectors:
            continue  # a --select that ran none of its vectors
        counts = verdict.counts
        failed = sum(counts.get(bad, 0) for bad in BAD)
        mark = {FAIL: "  FAIL", DECLARED: "  declared"}.get(verdict.result, "")
        lines.append(
            f"{verdict.clause:<10} {verdict.vectors:>7} {counts.get(PASS, 0):>7} {failed:>7} "
            f"{counts.get(SKIP, 0):>8}{mark}"
        )
    for outcome in report.bad:
        lines += ["", *failure_lines(outcome, target)]
    for result, heading in ((SKIP, "skipped"), (DECLARED, "declared failing")):
        outcomes = report.with_result(result)
        if outcomes:
            lines += ["", f"{heading}: {len(outcomes)} vectors"]
            lines += [f"  {o.vector.id}: {o.reason}" for o in outcomes[:20]]
    summary = ", ".join(
        f"{report.count(result)} {label}"
        for result, label in (
            (PASS, "passed"),
            (FAIL, "failed"),
            (ERROR, "adapter faults"),
            (SKIP, "skipped"),
            (DECLARED, "declared"),
            (STALE, "stale declarations"),
        )
        if report.count(result) or result in (PASS, FAIL)
    )
    # The vectors' tally only: the run's verdict, across every layer, is printed last (verdict.py).
    lines += ["", f"vectors: {summary}"]
    return "\n".join(lines)


def failure_lines(outcome: Outcome, target: str = DEFAULT_TARGET) -> list[str]:
    vector, step = outcome.vector, outcome.step
    where = f" > {step.label}" if step is not None else ""
    clauses = ", ".join(vector.clauses)
    lines = [
        f"{outcome.result.upper()} {vector.file} > {vector.id}{where} ({clauses})",
        f"  {vector.description}",
    ]
    if step is not None:
        lines.append(f"  step: {describe_step(step)}")
    lines += [
        f"  {mismatch.field}: expected {show(mismatch.expected)}, got {show(mismatch.actual)}"
        for mismatch in outcome.mismatches
    ]
    if outcome.reason:
        lines += ["  " + line for line in outcome.reason.splitlines()]
    if step is not None:
        lines.append("  timeline of this gate:")
        lines += ["    " + line for line in timeline(vector, step.index, outcome.responses)]
    on = "" if target == DEFAULT_TARGET else f" --target {shlex.quote(target)}"
    lines.append(f"  rerun: actiongate-conformance run{on} --select {vector.id}")
    return lines


def stateful_summary(result: StatefulResult) -> str:
    """The stateful model's outcome for people: one line, or the explained counterexample."""
    if not result.passed:
        return f"STATEFUL MODEL FAILED (seed {result.seed}):\n{result.failure}"
    stopped = ", stopped by --budget" if result.out_of_time else ""
    return (
        f"stateful model: {result.examples} examples passed (seed {result.seed}{stopped}); "
        f"rerun: {result.rerun}"
    )


def first_problem(outcome: Outcome) -> str:
    """One line saying what went wrong first (for skip files and summaries)."""
    if outcome.mismatches:
        m = outcome.mismatches[0]
        return f"{m.field}: expected {show(m.expected)}, got {show(m.actual)}"
    return (outcome.reason or outcome.result).splitlines()[0]
