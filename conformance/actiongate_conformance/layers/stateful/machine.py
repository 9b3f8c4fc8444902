"""The state machine: one rule that steps the target and the oracle side by side."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from ...checkers.oracle import Expect, Oracle, Verdict
from ...data.vectors import ExpectedDecision, ExpectedError, Step
from ...targets import Target, TargetError
from ...targets.protocol import HarnessError
from ..vectors import compare
from .strategies import (
    ACTION,
    CLAUSE_FLAGS,
    GATE,
    GATES,
    HOME,
    INVALID,
    POLICY,
    POLICY_FIELDS,
    START,
    STEP_FLAGS,
    VARIANT,
)


@dataclass
class Trace:
    """What one example sent (as vector steps, with the oracle's expectations) and got."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    clauses: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)
    open_steps: list[int] = field(default_factory=list)  # results RET-4 leaves open


class Counterexample(AssertionError):
    """The target disagreed with the oracle at the last step of ``trace``."""

    def __init__(self, trace: Trace, mismatches: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(text for _, text in mismatches))
        self.trace = trace
        self.fields = [name for name, _ in mismatches]  # the response's wrong fields
        self.problems = [text for _, text in mismatches]


class Stop(KeyboardInterrupt):
    """Ends the whole run now. Hypothesis stops at once, recording nothing about the example,
    for a KeyboardInterrupt only; any other exception it would check against earlier examples
    with the same start, and fail as flaky."""


class OutOfTime(Stop):
    """The wall-clock budget is spent."""


class Unrunnable(Stop):
    """The target cannot be run (``error``, a TargetError): no verdict."""

    def __init__(self, error: TargetError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Run:
    target: Target
    faults: bool
    budget: float | None
    started: float = field(default_factory=time.monotonic)
    examples: int = 0
    found_after: int | None = None  # the example of the first plain counterexample
    out_of_time: bool = False
    # Failures after a step RET-4 leaves open, with the example each came from.
    housekeeping: list[tuple[int, Counterexample]] = field(default_factory=list)


Gate = tuple[str, str, str]


class Model(RuleBasedStateMachine):
    def __init__(self, run: Run) -> None:
        super().__init__()
        spent = time.monotonic() - run.started
        if run.budget is not None and run.found_after is None and spent > run.budget:
            run.out_of_time = True
            raise OutOfTime
        run.examples += 1
        self.run = run
        self.oracle = Oracle()
        self.policies: list[dict[str, Any]] = []
        self.now = 0.0
        self.gate_time: dict[Gate, float] = {}
        self.trace = Trace()
        self.ended = False  # after a failure that RET-4 leaves open: every rule does nothing
        response = self._request({"op": "reset"})
        if response.get("ok") is not True:
            raise Unrunnable(TargetError(f"the target cannot reset: {response}"))

    @initialize(policies=st.lists(POLICY, min_size=3, max_size=3), start=START)
    def begin(self, policies: list[dict[str, Any]], start: float) -> None:
        # In the order of POL-5, whatever order shrinking left the keys in.
        self.policies = [{name: policy[name] for name in POLICY_FIELDS} for policy in policies]
        self.now = start
        if start:
            self.trace.flags.add("epoch")

    @rule(gate=GATE, variant=VARIANT, action=ACTION)
    def step(self, gate: Gate, variant: int, action: tuple[str, float]) -> None:
        """One step. A single rule, so that every step draws the same three choices: then
        hypothesis can delete any step, or change what it does, without misaligning the rest,
        and its shrinking goes far (with several rules of different arguments it stalls)."""
        kind, by = action
        policy = self._policy(gate, variant)
        if self.ended:
            return
        if kind == "burst":
            for _ in range(int(by)):  # RES-2: equal timestamps, each counted
                self._check(gate, policy, self.now)
        elif kind in ("clear", "clear_all", "fault") and self.oracle.failing:
            # A clear would fail too, and no vector can expect that (CLR-1): recover instead.
            self.oracle.failing = False
            self._plain({"op": "store_recover", "now": self.now}, set())
        elif kind == "clear":
            self.oracle.clear(_gate(gate))
            self._plain({"op": "clear", "now": self.now, "gate": _gate(gate)}, {"CLR-1"})
        elif kind == "clear_all":
            self.oracle.clear_all()
            self._plain({"op": "clear_all", "now": self.now}, {"CLR-2"})
        elif kind == "fault":
            if self.run.faults:
                self.oracle.failing = True
                self._plain({"op": "store_fail", "now": self.now}, set())
        elif kind == "invalid":
            # Which input: by the gate's place in the pool, so that each is tried without
            # crowding the list of actions.
            where, name, value = INVALID[(int(by) + GATES.index(gate)) % len(INVALID)]
            gate_json: dict[str, Any] = _gate(gate)
            policy = dict(policy)
            now: Any = self.now
            if where == "gate":
                gate_json[name] = value
            elif where == "policy":
                policy[name] = value
            else:
                now = value
            self._check(gate_json, policy, now)
        else:
            self._check(gate, policy, self._time(gate, policy, kind, by))

    def _policy(self, gate: Gate, variant: int) -> dict[str, Any]:
        return self.policies[(HOME[gate] + variant) % 3]

    def _time(self, gate: Gate, policy: Mapping[str, Any], kind: str, by: float) -> float:
        if kind in STEP_FLAGS:
            self.trace.flags.add(STEP_FLAGS[kind])
        last = self.gate_time.get(gate, self.now)  # the time of the gate's last check
        if kind == "add":
            return self.now + by
        if kind == "back":
            return self.now - by
        if kind == "ulp":
            return math.nextafter(self.now, math.inf * by)
        if kind == "gate":
            return last + by
        if kind in ("window", "cooldown"):
            # The gate's last event is then exactly window (cooldown) old, or one binary64
            # more or less: whatever T - window rounds to, compared exactly (TIME-2). Never a
            # step back: with a later check of another gate between, RET-4 would let the
            # store drop that event, and the check would test nothing exactly.
            now = last + (policy[kind] or 0.0)
            return max(self.now, math.nextafter(now, math.inf * by) if by else now)
        return self.now

    def _check(self, gate: Any, policy: dict[str, Any], now: Any) -> None:
        if self.ended:
            return
        gate = _gate(gate) if isinstance(gate, tuple) else gate
        record = {"op": "check", "now": now, "gate": gate, "policy": policy}
        response = self._request(record)
        verdict = self.oracle.check(
            gate,
            policy,
            now,
            choose=lambda e: not _mismatches(record, e, response),
            observed=response.get("decision"),
        )
        if "error" not in verdict.expect:
            self.now = now
            self.gate_time[(gate["namespace"], gate["action"], gate["principal"])] = now
        if verdict.open:
            self.trace.open_steps.append(len(self.trace.steps))
        self._finish({**record, "expect": verdict.expect}, response, verdict)

    def _plain(self, record: dict[str, Any], clauses: set[str]) -> None:
        message = {key: value for key, value in record.items() if key != "now"}
        self._finish(record, self._request(message), Verdict({}, False, frozenset(clauses)))

    def _request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The target's response; an adapter fault is one too, ``{"adapter_fault": text}``
        (the adapter restarted if need be), so that it is a result, not a crash."""
        message = {key: value for key, value in message.items() if key != "expect"}
        try:
            return self.run.target.request(message)
        except HarnessError as fault:
            if fault.kind in ("crashed", "timeout"):
                try:
                    self.run.target.restart()
                except HarnessError as error:
                    why = f"the adapter could not be restarted: {error.explain()}"
                    raise Unrunnable(TargetError(why)) from None
            return {"adapter_fault": fault.explain()}

    def _finish(
        self, record: dict[str, Any], response: Mapping[str, Any], verdict: Verdict
    ) -> None:
        trace = self.trace
        trace.steps.append(record)
        fault = response.get("adapter_fault")
        trace.responses.append({"adapter_fault": fault.splitlines()[0]} if fault else response)
        trace.clauses |= verdict.clauses
        trace.flags |= {CLAUSE_FLAGS[c] for c in verdict.clauses if c in CLAUSE_FLAGS}
        mismatches = _mismatches(record, record.get("expect"), response)
        if not mismatches:
            return
        if trace.open_steps:
            self.run.housekeeping.append((self.run.examples, Counterexample(trace, mismatches)))
            self.ended = True
            return
        if self.run.found_after is None:
            self.run.found_after = self.run.examples
        raise Counterexample(trace, mismatches)


def _gate(gate: tuple[str, str, str]) -> dict[str, Any]:
    return dict(zip(("namespace", "action", "principal"), gate, strict=True))


def _mismatches(
    record: Mapping[str, Any], expect: Expect | None, response: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Each field of ``response`` that differs from ``expect`` (by runner.compare), with a
    line for people; empty when none does."""
    if "adapter_fault" in response:
        return [("response", response["adapter_fault"])]
    return [
        (m.field, f"{m.field}: expected {_show(m.expected)}, got {_show(m.actual)}")
        for m in compare(_step(record, expect), response)
    ]


def _step(record: Mapping[str, Any], expect: Expect | None) -> Step:
    expected: ExpectedDecision | ExpectedError | None = None
    if expect is not None and "error" in expect:
        expected = ExpectedError(expect["error"], expect["field"])
    elif expect is not None:
        expected = ExpectedDecision(**expect)
    return Step(0, record["op"], record["now"], record.get("gate"), record.get("policy"), expected)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)
