"""Vectors against a target: one outcome per vector, one verdict per clause.

A vector runs on a freshly reset target, its steps sent in one pipelined batch, and is judged at
its first failing step: after a wrong answer the target's state differs from the one the later
expectations assume. An adapter fault (crash, hang, garbage) is the vector's outcome, ``error``,
and the adapter is restarted for the next vector.

Outcomes: ``pass``; ``fail`` (a wrong answer); ``error`` (an adapter fault); ``skip`` (the target
lacks a capability the vector needs); ``declared`` (a failure the skip file declares); ``stale``
(a vector the skip file declares failing that passed: the declaration has rotted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..data import clause_ids
from ..data.skips import KnownFailures
from ..data.vectors import ExpectedDecision, ExpectedError, ExpectedStatus, Step, Vector
from ..targets import Target, TargetError
from ..targets.messages import SCHEMA_PROBLEMS
from ..targets.protocol import HarnessError

__all__ = ["ClauseVerdict", "Mismatch", "Outcome", "Report", "compare", "run_vectors", "smoke"]

PASS, FAIL, ERROR, SKIP, DECLARED, STALE = "pass", "fail", "error", "skip", "declared", "stale"
BAD = frozenset({FAIL, ERROR, STALE})


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
    responses: tuple[Mapping[str, Any], ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class ClauseVerdict:
    clause: str
    counts: Mapping[str, int]

    @property
    def vectors(self) -> int:
        return sum(self.counts.values())

    @property
    def result(self) -> str:
        if any(self.counts.get(bad) for bad in BAD):
            return FAIL
        if self.counts.get(DECLARED):
            return DECLARED
        return PASS if self.counts.get(PASS) else SKIP


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def with_result(self, result: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.result == result]

    @property
    def bad(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.result in BAD]

    def count(self, result: str) -> int:
        return len(self.with_result(result))

    def clauses(self) -> list[ClauseVerdict]:
        """A verdict for every clause of SEMANTICS.md, in its order."""
        tally: dict[str, dict[str, int]] = {clause: {} for clause in clause_ids()}
        for outcome in self.outcomes:
            for clause in outcome.vector.clauses:
                counts = tally.setdefault(clause, {})
                counts[outcome.result] = counts.get(outcome.result, 0) + 1
        return [ClauseVerdict(clause, counts) for clause, counts in tally.items()]


def run_vectors(
    target: Target,
    vectors: Iterable[Vector],
    known: KnownFailures | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    report = Report()
    for done, vector in enumerate(vectors, 1):
        outcome = run_vector(target, vector)
        if known is not None:
            outcome = _apply_declaration(outcome, known)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(done)
    return report


def run_vector(target: Target, vector: Vector) -> Outcome:
    if vector.needs_faults and "store_faults" not in target.capabilities:
        return Outcome(vector, SKIP, reason="the target cannot make its store fail")
    try:
        responses = target.request_many(
            [{"op": "reset"}, *(step.message() for step in vector.steps)]
        )[1:]
    except HarnessError as fault:
        step = _step_of(vector, fault)
        _restart(target, fault)
        return Outcome(vector, ERROR, step, reason=fault.explain())
    for step, response in zip(vector.steps, responses, strict=True):
        mismatches = compare(step, response)
        if mismatches:
            return Outcome(vector, FAIL, step, tuple(mismatches), tuple(responses))
    return Outcome(vector, PASS, responses=tuple(responses))


def smoke(target: Target) -> None:
    """Does the adapter carry a check through at all? Raises TargetError if it does not.

    Run before any verdict, so that a broken adapter is reported as one, not as a
    non-conforming engine failing every vector. It asks only what plumbing decides: a valid
    check gets a decision, not an error, and the decision echoes the gate and the policy it
    was sent (so they reached the engine). It judges no status, count or age: an engine may
    get even the simplest of those wrong (max_calls 0 letting one call by), and that is for
    the vectors to say.
    """
    gate = {"namespace": "actiongate-conformance", "action": "smoke", "principal": ""}
    policy = {"window": 60, "cooldown": 0, "mode": "SOFT", "on_store_error": "FAIL_CLOSED"}
    for max_calls in (1, 0):
        sent = {**policy, "max_calls": max_calls}
        step = Step(0, "check", 0, gate, sent, ExpectedDecision("ALLOW", None, 1, None))
        what = f"a valid check under max_calls {max_calls}"
        try:
            target.request({"op": "reset"})
            response = target.request(step.message())
        except HarnessError as fault:
            raise TargetError(f"smoke check failed on {what}:\n{fault.explain()}") from None
        decision = response.get("decision")
        problems = (
            [f"it answered {response} instead of a decision"]
            if not isinstance(decision, Mapping)
            else [
                f"{name}: sent {_show(value)}, echoed {_show(decision.get(name))}"
                for name, value in (("gate", gate), ("policy", sent))
                if not same(value, decision.get(name))
            ]
        )
        if problems:
            raise TargetError(
                f"smoke check failed on {what} ({'; '.join(problems)}): the adapter does not "
                "carry a check through; fix it before reading any verdict"
            )


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _restart(target: Target, fault: HarnessError) -> None:
    if fault.kind in ("crashed", "timeout"):
        try:
            target.restart()
        except HarnessError as error:
            raise TargetError(f"the adapter could not be restarted: {error.explain()}") from None


def _step_of(vector: Vector, fault: HarnessError) -> Step | None:
    # The batch is the reset, then the steps in order.
    return vector.steps[fault.index - 1] if 0 < fault.index <= len(vector.steps) else None


def _apply_declaration(outcome: Outcome, known: KnownFailures) -> Outcome:
    reason = known.reason_for(outcome.vector.id)
    if reason is None or outcome.result == SKIP:
        return outcome
    if outcome.result == PASS:
        return replace(
            outcome,
            result=STALE,
            reason=f"declared failing ({reason}) but passed: remove it from the skip file",
        )
    return replace(outcome, result=DECLARED, reason=reason)


def compare(step: Step, response: Mapping[str, Any]) -> list[Mismatch]:
    """Every way ``response`` differs from what ``step`` expects."""
    expect = step.expect
    if expect is None:  # clear, clear_all and faults expect ok unless they name an error
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
    mismatches = _decision_mismatches(step, expect, decision)
    # DEC-1..4 also fix the record's form: a wrong one is a wrong answer, shown after the fields.
    mismatches += [
        Mismatch("record", "a record of decision.schema.json", problem)
        for problem in response.get(SCHEMA_PROBLEMS, ())[:3]
    ]
    return mismatches


def _decision_mismatches(
    step: Step, expect: ExpectedDecision | ExpectedStatus, decision: Mapping[str, Any]
) -> list[Mismatch]:
    judged: Sequence[tuple[str, Any]] = (
        ()
        if isinstance(expect, ExpectedStatus)  # a bulk's check: the steps after it judge more
        else (
            ("calls_in_window", expect.calls_in_window),
            ("time_since_last", expect.time_since_last),
        )
    )
    wanted: Sequence[tuple[str, Any]] = (
        ("status", expect.status),
        ("reason", expect.reason),
        *judged,
        ("gate", step.gate),
        ("policy", step.policy),
        ("now", step.now),
    )
    return [
        Mismatch(name, value, decision.get(name))
        for name, value in wanted
        if not same(value, decision.get(name))
    ]


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
