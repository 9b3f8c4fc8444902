"""Vectors against a target: one result per vector, one verdict per clause.

A vector runs on a freshly reset target, step by step, and stops at its first failing step: after
a wrong answer the target's state differs from the one the later expectations assume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _data
from .targets import Target
from .vectors import ExpectedDecision, ExpectedError, Step, Vector

__all__ = ["ClauseVerdict", "Mismatch", "Outcome", "Report", "run_vectors"]

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class Mismatch:
    field: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class Outcome:
    """How one vector went. ``step`` and ``mismatches`` describe the first failing step."""

    vector: Vector
    result: str
    step: Step | None = None
    mismatches: tuple[Mismatch, ...] = ()
    response: Mapping[str, Any] | None = None
    responses: tuple[Mapping[str, Any], ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class ClauseVerdict:
    clause: str
    passed: int
    failed: int
    skipped: int

    @property
    def result(self) -> str:
        if self.failed:
            return FAIL
        return PASS if self.passed else SKIP


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.result == FAIL]

    @property
    def conforming(self) -> bool:
        return not self.failed

    def count(self, result: str) -> int:
        return sum(outcome.result == result for outcome in self.outcomes)

    def clauses(self) -> list[ClauseVerdict]:
        """A verdict for every clause of SEMANTICS.md, in its order."""
        tally: dict[str, list[int]] = {clause: [0, 0, 0] for clause in _data.clause_ids()}
        column = {PASS: 0, FAIL: 1, SKIP: 2}
        for outcome in self.outcomes:
            for clause in outcome.vector.clauses:
                tally.setdefault(clause, [0, 0, 0])[column[outcome.result]] += 1
        return [ClauseVerdict(clause, *counts) for clause, counts in tally.items()]


def run_vectors(target: Target, vectors: Iterable[Vector]) -> Report:
    report = Report()
    for vector in vectors:
        report.outcomes.append(run_vector(target, vector))
    return report


def run_vector(target: Target, vector: Vector) -> Outcome:
    if vector.needs_faults and "store_faults" not in target.capabilities:
        return Outcome(vector, SKIP, reason="the target cannot make its store fail")
    target.request({"op": "reset"})
    responses: list[Mapping[str, Any]] = []
    for step in vector.steps:
        response = target.request(step.message())
        responses.append(response)
        mismatches = compare(step, response)
        if mismatches:
            return Outcome(vector, FAIL, step, tuple(mismatches), response, tuple(responses))
    return Outcome(vector, PASS, responses=tuple(responses))


def compare(step: Step, response: Mapping[str, Any]) -> list[Mismatch]:
    """Every way ``response`` differs from what ``step`` expects."""
    expect = step.expect
    if expect is None:
        if response.get("ok") is True:
            return []
        return [Mismatch("response", {"ok": True}, dict(response))]
    if isinstance(expect, ExpectedError):
        error = response.get("error")
        if not isinstance(error, Mapping):
            return [Mismatch("response", {"error": expect.error}, dict(response))]
        return [
            Mismatch(name, wanted, error.get(name))
            for name, wanted in (("kind", expect.error), ("field", expect.field))
            if error.get(name) != wanted
        ]
    decision = response.get("decision")
    if not isinstance(decision, Mapping):
        return [Mismatch("response", "a decision", dict(response))]
    return _decision_mismatches(step, expect, decision)


def _decision_mismatches(
    step: Step, expect: ExpectedDecision, decision: Mapping[str, Any]
) -> list[Mismatch]:
    mismatches = [
        Mismatch(f"schema {error.json_path}", "valid per decision.schema.json", error.message)
        for error in _data.validator("decision").iter_errors(decision)
    ]
    wanted: Sequence[tuple[str, Any]] = (
        ("status", expect.status),
        ("reason", expect.reason),
        ("calls_in_window", expect.calls_in_window),
        ("time_since_last", expect.time_since_last),
        ("gate", step.gate),
        ("policy", step.policy),
        ("now", step.now),
    )
    for name, value in wanted:
        actual = decision.get(name)
        if not same(value, actual):
            mismatches.append(Mismatch(name, value, actual))
    return mismatches


def same(expected: Any, actual: Any) -> bool:
    """JSON equality where numbers compare as binary64 values (TIME-2: -0.0 equals 0.0)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return not math.isnan(float(expected)) and float(expected) == float(actual)
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return expected.keys() == actual.keys() and all(
            same(expected[key], actual[key]) for key in expected
        )
    return bool(expected == actual)
