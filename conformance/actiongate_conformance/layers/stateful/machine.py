"""The state machine: one rule that steps the target and the oracle side by side."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
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
    BULK,
    BULK_GATE,
    BULK_MAX_CALLS,
    CLAUSE_FLAGS,
    FIELD_CLAUSES,
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

    def __init__(
        self, trace: Trace, mismatches: list[tuple[str, str]], used: frozenset[str] = frozenset()
    ) -> None:
        super().__init__("; ".join(text for _, text in mismatches))
        self.trace = trace
        self.fields = [name for name, _ in mismatches]  # the response's wrong fields
        self.problems = [text for _, text in mismatches]
        # The clauses the failing step breaks: those the oracle applied to it (every decision
        # clause is applied to every check, so only those of the wrong fields), unordered.
        self.clauses = {c for c in used if not c.startswith("DEC-")}
        self.clauses |= {FIELD_CLAUSES[name] for name in self.fields if name in FIELD_CLAUSES}


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
NO_VERDICT = Verdict({"ok": True}, False, frozenset())  # store_fail, store_recover


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

    @initialize(
        policies=st.lists(POLICY, min_size=3, max_size=3),
        start=START,
        bulk=BULK,
        bulk_gate=BULK_GATE,
    )
    def begin(
        self, policies: list[dict[str, Any]], start: float, bulk: int, bulk_gate: Gate
    ) -> None:
        # In the order of POL-5, whatever order shrinking left the keys in.
        self.policies = [{name: policy[name] for name in POLICY_FIELDS} for policy in policies]
        self.now = start
        if start:
            self.trace.flags.add("epoch")
        if bulk:
            self._bulk(bulk_gate, self._policy(bulk_gate, 0), bulk)

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
        elif kind == "fault" and self.oracle.failing:
            self.oracle.failing = False
            self._plain({"op": "store_recover", "now": self.now})
        elif kind == "clear":  # under a failing store, store_error and nothing cleared (CLR-1)
            record = {"op": "clear", "now": self.now, "gate": _gate(gate)}
            self._plain(record, self.oracle.clear(_gate(gate)))
        elif kind == "clear_all":
            self._plain({"op": "clear_all", "now": self.now}, self.oracle.clear_all())
        elif kind == "fault":
            if self.run.faults:
                self.oracle.failing = True
                self._plain({"op": "store_fail", "now": self.now})
        elif kind == "invalid":
            # Which input: by the gate's place in the pool, so that each is tried without
            # crowding the list of actions.
            where, name, value = INVALID[(int(by) + GATES.index(gate)) % len(INVALID)]
            gate_json: Any = _gate(gate)
            policy_json: Any = dict(policy)
            now: Any = self.now
            if where == "gate":
                gate_json = value if name == "*" else {**gate_json, name: value}
            elif where == "policy":
                policy_json = value if name == "*" else {**policy_json, name: value}
            else:
                now = value
            self._check(gate_json, policy_json, now)
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
        if kind == "oldest":
            # The gate's oldest retained event exactly window old (it still counts, RET-1), or
            # one binary64 later (it leaves): a bulk's events leave one step at a time.
            events = self.oracle.events.get(gate)
            if not events or policy["window"] is None:
                return self.now
            now = events.times()[0] + policy["window"]
            return max(self.now, math.nextafter(now, math.inf) if by else now)
        if kind in ("window", "cooldown"):
            # The gate's last event is then exactly window (cooldown) old, or one binary64
            # more or less: whatever T - window rounds to, compared exactly (TIME-2). Never a
            # step back: with a later check of another gate between, RET-4 would let the
            # store drop that event, and the check would test nothing exactly.
            now = last + (policy[kind] or 0.0)
            return max(self.now, math.nextafter(now, math.inf * by) if by else now)
        return self.now

    def _check(self, gate: Any, policy: Any, now: Any) -> None:
        if self.ended:
            return
        gate = _gate(gate) if isinstance(gate, tuple) else gate
        record = {"op": "check", "now": now, "gate": gate, "policy": policy}
        self._judge(record, self._request(record))

    def _judge(self, record: dict[str, Any], response: dict[str, Any]) -> None:
        """The oracle's verdict on the target's answer to one check; the model follows it."""
        if self.ended:
            return
        gate, policy, now = record["gate"], record["policy"], record["now"]
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

    def _bulk(self, gate: Gate, policy: dict[str, Any], count: int) -> None:
        """``count`` ALLOWs inside the gate's window, each judged; in the trace (and so in an
        emitted vector) they are one bulk step, the failing check apart."""
        window = policy["window"]
        every = window / (2 * count) if window is not None else 2.0**-7
        bulk_policy = {**policy, "max_calls": BULK_MAX_CALLS, "cooldown": 0.0}
        bulk = {"now": self.now, "gate": _gate(gate), "policy": bulk_policy, "count": count}
        self._send_bulk({**bulk, "every": every})

    def _send_bulk(self, bulk: Mapping[str, Any]) -> None:
        """A bulk step as spec/vector.schema.json has it, its checks sent pipelined."""
        self.trace.flags.add("capacity")
        every, first = bulk["every"], len(self.trace.steps)
        records = [
            {"op": "check", "now": bulk["now"] + n * every, "gate": bulk["gate"],
             "policy": bulk["policy"]}
            for n in range(bulk["count"])  # binary64, as a vector's bulk step computes them
        ]  # fmt: skip
        try:
            for record, response in zip(records, self._request_many(records), strict=False):
                self._judge(record, response)
        except Counterexample:
            self._fold(first, len(self.trace.steps) - 1, every)
            raise
        self._fold(first, len(self.trace.steps), every)

    def _fold(self, first: int, end: int, every: float) -> None:
        """Steps ``first`` to ``end`` of the trace, all a bulk's ALLOWs, become one bulk step."""
        steps = self.trace.steps
        count = end - first
        allowed = all(s["expect"].get("status") == "ALLOW" for s in steps[first:end])
        allowed &= all(s["expect"]["reason"] is None for s in steps[first:end] if allowed)
        if count < 2 or not allowed:
            return
        bulk = {key: value for key, value in steps[first].items() if key != "expect"}
        steps[first:end] = [{**bulk, "op": "bulk", "count": count, "every": every}]
        # Steps RET-4 leaves open, renumbered as the file numbers them.
        renumbered = (n if n < first else max(first, n - count + 1) for n in self.trace.open_steps)
        self.trace.open_steps = sorted(set(renumbered))

    def play(self, step: Mapping[str, Any]) -> None:
        """One step of a trace as it was recorded (times absolute), judged as in a run; for
        replaying a counterexample without some of its steps (minimize.py)."""
        op, record = step["op"], {k: v for k, v in step.items() if k not in ("expect", "note")}
        if op == "check":
            self._check(record["gate"], record["policy"], record["now"])
        elif op == "bulk":
            self._send_bulk(record)
        elif op == "clear":
            self._plain(record, self.oracle.clear(record["gate"]))
        elif op == "clear_all":
            self._plain(record, self.oracle.clear_all())
        else:  # store_fail, store_recover
            self.oracle.failing = op == "store_fail"
            self._plain(record)

    def _plain(self, record: dict[str, Any], verdict: Verdict = NO_VERDICT) -> None:
        """A step that is no check; it must answer ok, unless ``verdict`` expects an error."""
        if "error" in verdict.expect:
            record["expect"] = verdict.expect
        message = {key: value for key, value in record.items() if key != "now"}
        self._finish(record, self._request(message), verdict)

    def _request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return self._request_many([message])[0]

    def _request_many(self, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The target's responses, pipelined; an adapter fault is one too, ``{"adapter_fault":
        text}`` (the adapter restarted if need be), so that it is a result, not a crash: it
        answers the first request whose answer is not known, and ends the list."""
        sent = [{key: value for key, value in m.items() if key != "expect"} for m in messages]
        try:
            return self.run.target.request_many(sent)
        except HarnessError as fault:
            if fault.kind in ("crashed", "timeout"):
                try:
                    self.run.target.restart()
                except HarnessError as error:
                    why = f"the adapter could not be restarted: {error.explain()}"
                    raise Unrunnable(TargetError(why)) from None
            return [*fault.answered, {"adapter_fault": fault.explain()}]

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
        found = Counterexample(trace, mismatches, verdict.clauses)
        if trace.open_steps:
            self.run.housekeeping.append((self.run.examples, found))
            self.ended = True
            return
        if self.run.found_after is None:
            self.run.found_after = self.run.examples
        raise found


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
