"""Reports: the terminal table with each failure explained, a JSON report, JUnit XML."""

from __future__ import annotations

import hashlib
import json
import shlex
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .. import SPEC_VERSION, __version__
from ..checkers.oracle import Oracle
from ..data.vectors import ExpectedDecision, ExpectedError, Step, Vector
from ..layers.vectors import BAD, DECLARED, ERROR, FAIL, PASS, SKIP, STALE, Outcome, Report

if TYPE_CHECKING:
    from ..layers.atomicity import AtomicityResult
    from ..layers.stateful import (
        StatefulResult,  # stateful.py prints its timelines with this module
    )

__all__ = [
    "describe_step",
    "first_problem",
    "json_report",
    "junit_xml",
    "terminal_report",
    "timeline",
]

VERDICT_TEXT = {
    "conforming": "CONFORMING",
    "conforming_except_declared": "CONFORMING except declared failures",
    "not_conforming": "NOT CONFORMING",
}


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
    lines += ["", f"{VERDICT_TEXT[report.verdict]}: {summary}"]
    return "\n".join(lines)


def failure_lines(outcome: Outcome, target: str = DEFAULT_TARGET) -> list[str]:
    vector, step = outcome.vector, outcome.step
    where = f" > step {step.index}" if step is not None else ""
    clauses = ", ".join(vector.clauses)
    lines = [
        f"{outcome.result.upper()} {vector.file} > {vector.id}{where} ({clauses})",
        f"  {vector.description}",
    ]
    if step is not None:
        lines.append(f"  step: {describe_step(step)}")
    lines += [
        f"  {mismatch.field}: expected {_show(mismatch.expected)}, got {_show(mismatch.actual)}"
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


def timeline(vector: Vector, upto: int | None = None, responses: tuple[Any, ...] = ()) -> list[str]:
    """The vector's steps as lines, with what each got when ``responses`` are known.

    With ``upto``, the steps up to it that touch its gate (and the gate-less ones), each with
    the gate's events after it as the spec has them (the oracle's), so a reader sees which
    events a check should have counted.
    """
    steps = vector.steps if upto is None else vector.steps[: upto + 1]
    focus = vector.steps[upto].gate if upto is not None else None
    events = _events_after(steps, focus) if focus is not None else {}
    lines = []
    for step in steps:
        if focus is not None and step.gate is not None and step.gate != focus:
            continue
        line = f"t={_show(step.now):<22} {describe_step(step)}"
        if step.index < len(responses):
            line += f"   -> got {_outcome_of(responses[step.index])}"
        if step.note:
            line += f"   # {step.note}"
        lines.append(line)
        if step.index in events:
            lines.append(f"{'':<24} events of this gate after it: {_show(events[step.index])}")
    return lines


def _events_after(steps: tuple[Step, ...], gate: Any) -> dict[int, list[float]]:
    """The oracle's events of ``gate`` after each step; {} when the gate is not a valid key."""
    try:
        key = (gate["namespace"], gate["action"], gate["principal"])
        hash(key)
    except (TypeError, KeyError):
        return {}
    model = Oracle()
    after: dict[int, list[float]] = {}
    for step in steps:
        if step.op == "check":
            model.check(step.gate, step.policy, step.now)
        elif step.op == "clear" and step.gate is not None:
            model.clear(step.gate)
        elif step.op == "clear_all":
            model.clear_all()
        else:
            model.failing = step.op == "store_fail"
        after[step.index] = sorted(t for t, _ in model.events.get(key, []))
    return after


def describe_step(step: Step) -> str:
    if step.op != "check":
        gate = f" {_gate(step.gate)}" if step.gate is not None else ""
        return f"{step.op}{gate}"
    policy = step.policy or {}
    policy_text = ", ".join(f"{key}={_show(value)}" for key, value in policy.items())
    expect = step.expect
    if isinstance(expect, ExpectedDecision):
        wanted = _decision_text(
            expect.status, expect.reason, expect.calls_in_window, expect.time_since_last
        )
    elif isinstance(expect, ExpectedError):
        wanted = f"error {expect.error} ({expect.field})"
    else:
        wanted = "?"
    return f"check {_gate(step.gate)} [{policy_text}] expect {wanted}"


def _decision_text(status: Any, reason: Any, calls: Any, since_last: Any) -> str:
    return f"{status} {reason or ''} calls={calls} since_last={_show(since_last)}"


def _outcome_of(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("decision"), dict):
        d = response["decision"]
        return _decision_text(
            d.get("status"), d.get("reason"), d.get("calls_in_window"), d.get("time_since_last")
        )
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        error = response["error"]
        return f"error {error.get('kind')} ({error.get('field')})"
    return _show(response)


def _gate(gate: Any) -> str:
    if isinstance(gate, dict) and set(gate) == {"namespace", "action", "principal"}:
        return "(" + ", ".join(_show(gate[k]) for k in ("namespace", "action", "principal")) + ")"
    return _show(gate)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)


def stateful_summary(result: StatefulResult) -> str:
    """The stateful model's outcome for people: one line, or the explained counterexample."""
    if not result.passed:
        return f"STATEFUL MODEL FAILED (seed {result.seed}):\n{result.failure}"
    stopped = ", stopped by --budget" if result.out_of_time else ""
    return (
        f"stateful model: {result.examples} examples passed (seed {result.seed}{stopped}); "
        f"rerun: {result.rerun}"
    )


def json_report(
    report: Report,
    target: str,
    hello: dict[str, Any],
    stateful: StatefulResult | None = None,
    atomicity: AtomicityResult | None = None,
) -> dict[str, Any]:
    """The report of spec/report.schema.json."""
    failed_later = (stateful is not None and not stateful.passed) or (
        atomicity is not None and not atomicity.passed
    )
    digest = hashlib.sha256(
        "\n".join(outcome.vector.digest for outcome in report.outcomes).encode()
    ).hexdigest()
    return {
        "schema": "urn:actiongate:schema:report:1",
        "suite": {"name": "actiongate-conformance", "version": __version__},
        "spec_version": SPEC_VERSION,
        "target": target,
        "implementation": hello.get("implementation", {}),
        "capabilities": sorted(hello.get("capabilities", [])),
        "vectors_digest": f"sha256:{digest}",
        "verdict": "not_conforming" if failed_later else report.verdict,
        "stateful": None
        if stateful is None
        else {
            "passed": stateful.passed,
            "examples": stateful.examples,
            "seed": stateful.seed,
            "vector": None if stateful.vector is None else str(stateful.vector),
            "rerun": stateful.rerun,
        },
        "atomicity": None if atomicity is None else atomicity.to_dict(),
        "counts": {
            result: report.count(result) for result in (PASS, FAIL, ERROR, SKIP, DECLARED, STALE)
        },
        "clauses": [
            {"clause": v.clause, "result": v.result, "counts": dict(v.counts)}
            for v in report.clauses()
        ],
        "vectors": [
            {
                "id": o.vector.id,
                "file": o.vector.file,
                "clauses": list(o.vector.clauses),
                "result": o.result,
                "step": None if o.step is None else o.step.index,
                "mismatches": [
                    {"field": m.field, "expected": m.expected, "actual": m.actual}
                    for m in o.mismatches
                ],
                "reason": o.reason,
            }
            for o in report.outcomes
        ],
    }


def junit_xml(report: Report, target: str) -> str:
    """JUnit XML: a testsuite per vector file, a testcase per vector."""
    by_file: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in report.outcomes:
        by_file[outcome.vector.file].append(outcome)
    suites = ET.Element("testsuites", name=f"actiongate-conformance {target}")
    for file, outcomes in by_file.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=file,
            tests=str(len(outcomes)),
            failures=str(sum(o.result in (FAIL, STALE) for o in outcomes)),
            errors=str(sum(o.result == ERROR for o in outcomes)),
            skipped=str(sum(o.result in (SKIP, DECLARED) for o in outcomes)),
        )
        for outcome in outcomes:
            case = ET.SubElement(
                suite, "testcase", classname=file.removesuffix(".json"), name=outcome.vector.id
            )
            text = "\n".join(failure_lines(outcome, target))
            if outcome.result in (FAIL, STALE):
                ET.SubElement(case, "failure", message=first_problem(outcome)).text = text
            elif outcome.result == ERROR:
                ET.SubElement(case, "error", message=first_problem(outcome)).text = text
            elif outcome.result in (SKIP, DECLARED):
                ET.SubElement(case, "skipped", message=outcome.reason or outcome.result)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def first_problem(outcome: Outcome) -> str:
    """One line saying what went wrong first (for skip files and summaries)."""
    if outcome.mismatches:
        m = outcome.mismatches[0]
        return f"{m.field}: expected {_show(m.expected)}, got {_show(m.actual)}"
    return (outcome.reason or outcome.result).splitlines()[0]
