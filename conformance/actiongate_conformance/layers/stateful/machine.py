"""The state machine: one rule that steps the target and the oracle side by side."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from ...checkers.oracle import Oracle, Verdict
from ...targets import TargetError
from ...targets.protocol import HarnessError
from .control import Found, OutOfTime, Run, Stop, Unrunnable
from .strategies import (
    ACTION,
    BULK,
    BULK_GATE,
    BULK_MAX_CALLS,
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
from .trace import Counterexample, Trace, mismatches

__all__ = ["BATCH", "Model"]

BATCH = 4096  # requests queued at most before they are sent


Gate = tuple[str, str, str]
NO_VERDICT = Verdict({"ok": True}, False, frozenset())  # store_fail, store_recover


@dataclass(frozen=True)
class Queued:
    """A step waiting for the next batch: ``record`` as the trace will hold it, ``message`` as
    sent. ``verdict`` is the oracle's, worked out when queued, or None for a check it judges
    only with the target's answer; ``flags`` join the trace's once the step is judged."""

    record: dict[str, Any]
    message: dict[str, Any]
    verdict: Verdict | None
    flags: frozenset[str]


class Model(RuleBasedStateMachine):
    def __init__(self, run: Run) -> None:
        super().__init__()
        if run.found_in is not None:  # as hypothesis stopped the last example (teardown)
            raise Found
        spent = time.monotonic() - run.started
        searching = run.found_after is None and run.examples >= run.known
        if run.budget is not None and searching and spent > run.budget:
            run.out_of_time = True
            raise OutOfTime
        run.examples += 1
        known = run.examples < run.known  # to pass
        self.run = run
        self.oracle = Oracle()
        self.policies: list[dict[str, Any]] = []
        self.now = 0.0
        self.gate_time: dict[Gate, float] = {}
        self.trace = Trace()
        # Every rule does nothing: after a failure that RET-4 leaves open, or in an example
        # known to pass (only what hypothesis draws matters then).
        self.ended = known
        self.queued: list[Queued] = []
        self.flags: set[str] = set()  # for the trace, with the next step queued
        self.unreset = not known  # the reset goes with the first batch
        self.handling = sys.exc_info()[1]  # what is being handled around the whole run

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
        self._stepped()

    @rule(gate=GATE, variant=VARIANT, action=ACTION)
    def step(self, gate: Gate, variant: int, action: tuple[str, float]) -> None:
        """One step. A single rule, so that every step draws the same three choices: then
        hypothesis can delete any step, or change what it does, without misaligning the rest,
        and its shrinking goes far (with several rules of different arguments it stalls)."""
        if not self.ended:
            self._take(gate, self._policy(gate, variant), *action)
            self._stepped()

    def _stepped(self) -> None:
        """A rule's end: unless the search is batched, what it queued is sent now, so that a
        failure is raised by the step that finds it, where hypothesis must see it to shrink."""
        if not self.run.batched and self.queued:
            self.flush()

    def _take(self, gate: Gate, policy: dict[str, Any], kind: str, by: float) -> None:
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
            self.flags.add(STEP_FLAGS[kind])
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
        if self._needs_answer(gate, policy, now):
            self._queue(record, record, None)
        else:
            verdict = self._judge(record, None)
            self._queue({**record, "expect": verdict.expect}, record, verdict)

    def _needs_answer(self, gate: Any, policy: Any, now: Any) -> bool:
        """Whether the oracle can judge this check only once the target has answered it: when
        it retains events that RET-4 lets a store have dropped, the oracle takes the result the
        target gave, if permitted, and its state follows (Oracle.check). Errs towards yes: a
        check in doubt is only judged later. Invalid input the oracle rejects unanswered."""
        if self.oracle.failing:  # ERR-1, or POL-5 before it: one result
            return False
        try:
            events = self.oracle.events.get((gate["namespace"], gate["action"], gate["principal"]))
        except (TypeError, KeyError):  # no gate record (ID-4): rejected whatever the answer
            return False
        if events is None or not events.droppable:
            return False
        window = policy.get("window") if isinstance(policy, Mapping) else None
        if type(now) is not float or (window is not None and type(window) is not float):
            return True
        # RET-1 keeps the droppable events from T - window on (all under a null window).
        return window is None or events.droppable[-1] >= now - window

    def _judge(self, record: dict[str, Any], response: Mapping[str, Any] | None) -> Verdict:
        """The oracle's verdict on one check, the target's answer (``response``) choosing among
        the results RET-4 permits; the model's clock follows it."""
        gate, policy, now = record["gate"], record["policy"], record["now"]
        verdict = self.oracle.check(
            gate,
            policy,
            now,
            choose=None if response is None else lambda e: not mismatches(record, e, response),
            observed=None if response is None else response.get("decision"),
        )
        if "error" not in verdict.expect:
            self.now = now
            self.gate_time[(gate["namespace"], gate["action"], gate["principal"])] = now
        return verdict

    def _bulk(self, gate: Gate, policy: dict[str, Any], count: int) -> None:
        """``count`` ALLOWs inside the gate's window, each judged; in the trace (and so in an
        emitted vector) they are one bulk step, the failing check apart."""
        window = policy["window"]
        every = window / (2 * count) if window is not None else 2.0**-7
        bulk_policy = {**policy, "max_calls": BULK_MAX_CALLS, "cooldown": 0.0}
        bulk = {"now": self.now, "gate": _gate(gate), "policy": bulk_policy, "count": count}
        self._send_bulk({**bulk, "every": every})

    def _send_bulk(self, bulk: Mapping[str, Any]) -> None:
        """A bulk step as spec/vector.schema.json has it, its checks sent in one batch with the
        steps queued before it, each judged once answered."""
        if self.ended:
            return
        self.flags.add("capacity")
        every, first = bulk["every"], len(self.trace.steps) + len(self.queued)
        for n in range(bulk["count"]):  # binary64, as a vector's bulk step computes them
            record = {"op": "check", "now": bulk["now"] + n * every, "gate": bulk["gate"],
                      "policy": bulk["policy"]}  # fmt: skip
            self.queued.append(Queued(record, record, None, self._take_flags()))
        try:
            self.flush()
        except Counterexample:
            self._fold(first, len(self.trace.steps) - 1, every)
            raise
        self._fold(first, len(self.trace.steps), every)

    def _fold(self, first: int, end: int, every: float) -> None:
        """Steps ``first`` to ``end`` of the trace, all a bulk's ALLOWs, become one bulk step."""
        steps = self.trace.steps
        count = end - first
        if count < 2:
            return
        allowed = all(s["expect"].get("status") == "ALLOW" for s in steps[first:end])
        allowed &= all(s["expect"]["reason"] is None for s in steps[first:end] if allowed)
        if not allowed:
            return
        bulk = {key: value for key, value in steps[first].items() if key != "expect"}
        steps[first:end] = [{**bulk, "op": "bulk", "count": count, "every": every}]
        # Steps RET-4 leaves open, renumbered as the file numbers them.
        renumbered = (n if n < first else max(first, n - count + 1) for n in self.trace.open_steps)
        self.trace.open_steps = sorted(set(renumbered))

    def play(self, step: Mapping[str, Any]) -> None:
        """One step of a trace as it was recorded (times absolute), judged as in a run; for
        replaying a counterexample without some of its steps (minimize.py), which flushes
        (``flush``) after the last."""
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
        message = {key: value for key, value in record.items() if key not in ("now", "expect")}
        self._queue(record, message, verdict)

    def _queue(
        self, record: dict[str, Any], message: dict[str, Any], verdict: Verdict | None
    ) -> None:
        """One step for the next batch; sent at once if its verdict waits for its answer (the
        model's next steps follow that verdict), or the batch is full."""
        if self.ended:
            return
        self.queued.append(Queued(record, message, verdict, self._take_flags()))
        if verdict is None or len(self.queued) >= BATCH:
            self.flush()

    def _take_flags(self) -> frozenset[str]:
        flags, self.flags = frozenset(self.flags), set()
        return flags

    def teardown(self) -> None:
        """The example's end: what is still queued is sent and judged. Hypothesis calls this in
        a ``finally`` clause, maybe with an exception on its way out: a step's Counterexample
        (nothing is queued then), or hypothesis stopping an example whose choices ran out. A
        failure must not replace that one: it is only noted (Run.found_in) for the next
        example to stop the batched search with."""
        error = sys.exc_info()[1]
        if error is self.handling:
            self.flush()
        elif not isinstance(error, Stop):
            with contextlib.suppress(Found, Counterexample):
                self.flush()

    def flush(self) -> None:
        """Sends the queued steps in one pipelined batch (after the example's reset, the first
        time) and judges the answers in order. The first wrong one raises its Counterexample
        (Found, in a batched search), or ends the example after a step RET-4 leaves open; the
        steps after it are dropped unjudged: the target's state is no longer the oracle's."""
        queued, self.queued = self.queued, []
        messages = [entry.message for entry in queued]
        if self.unreset:
            messages.insert(0, {"op": "reset"})
        if not messages:
            return
        responses = self._request_many(messages)
        if self.unreset:
            self.unreset = False
            response = responses.pop(0)
            if response.get("ok") is not True:
                raise Unrunnable(TargetError(f"the target cannot reset: {response}"))
        for entry, response in zip(queued, responses, strict=False):  # a fault ends them
            if self.ended:
                return
            self._finish(entry, response)

    def _request_many(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The target's responses, pipelined; an adapter fault is one too, ``{"adapter_fault":
        text}`` (the adapter restarted if need be), so that it is a result, not a crash: it
        answers the first request whose answer is not known, and ends the list."""
        try:
            return self.run.target.request_many(messages)
        except HarnessError as fault:
            if fault.kind in ("crashed", "timeout"):
                try:
                    self.run.target.restart()
                except HarnessError as error:
                    why = f"the adapter could not be restarted: {error.explain()}"
                    raise Unrunnable(TargetError(why)) from None
            return [*fault.answered, {"adapter_fault": fault.explain()}]

    def _finish(self, entry: Queued, response: Mapping[str, Any]) -> None:
        record, verdict = entry.record, entry.verdict
        if verdict is None:  # a check whose verdict waited for this answer
            verdict = self._judge(record, response)
            record = {**record, "expect": verdict.expect}
        trace = self.trace
        if verdict.open:
            trace.open_steps.append(len(trace.steps))
        trace.flags |= entry.flags
        trace.steps.append(record)
        fault = response.get("adapter_fault")
        trace.responses.append({"adapter_fault": fault.splitlines()[0]} if fault else response)
        trace.clauses |= verdict.clauses
        trace.flags |= {CLAUSE_FLAGS[c] for c in verdict.clauses if c in CLAUSE_FLAGS}
        wrong = mismatches(record, record.get("expect"), response)
        if not wrong:
            return
        found = Counterexample(trace, wrong, verdict.clauses)
        if trace.open_steps:
            self.run.housekeeping.append((self.run.examples, found))
            self.ended = True
            return
        if self.run.batched:
            self.run.found_in = self.run.examples
            raise Found
        if self.run.found_after is None:
            self.run.found_after = self.run.examples
        raise found


def _gate(gate: tuple[str, str, str]) -> dict[str, Any]:
    return dict(zip(("namespace", "action", "principal"), gate, strict=True))
