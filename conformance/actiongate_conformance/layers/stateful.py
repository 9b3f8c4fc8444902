"""The stateful model: hypothesis drives a target and the oracle side by side, step by step.

Theory of operation
-------------------
``_Model`` is one ``RuleBasedStateMachine``. Each example resets the target and a fresh
``Oracle``, starts its clock at 0 or at an epoch-sized time, and runs up to ``steps`` steps:
checks of gates from a fixed pool (separators, empty fields, NFC and NFD, U+0000) at times a
step away from the last (zero, exactly the window or cooldown after the gate's last check or one
binary64 either side, the next or previous binary64, backwards, back to the gate's last check);
bursts at one instant; invalid input; clear; clear_all; and store failures when the target
declares ``store_faults``. Each gate has a home policy among three drawn per example (max_calls
0 and 1, null windows, cooldowns longer than the window among them) and sometimes uses another
(POL-6). After every step the target's response is compared with the oracle's by
``runner.compare``: the same fields, binary64 equality, and the echoes of gate, policy and now.

Gates, policies and times recur through sampled pools and relative steps rather than
``Bundle``s: a bundle is drawn from by index, and deleting an earlier step shifts every index
after it, which defeats hypothesis' shrinking of long runs.

Housekeeping (RET-4). Where a store may already have dropped an event a check retains (after a
backwards step or a wider window), the oracle accepts every answer the store could give and
follows the one the target gave; everywhere else it is exact. A vector must hold for every
conforming store, so only a failure with no such step before it is a ``Counterexample`` for
hypothesis to shrink and emit as a vector. A target whose answer is none of those permitted is
wrong too, but its run ends quietly as a pass for hypothesis (which then keeps looking for a
plain failure, and never shrinks into one of these) and is kept aside: it is reported, unshrunk
and without a vector, only if the search finds no plain failure.

A counterexample carries the steps its run sent, with the oracle's expected values: hypothesis
replays the shrunk run last, so the exception it raises is the minimal one. Clears are not sent
while the store fails: no vector can expect a clear to fail (CLR-1).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shlex
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from ..checkers.oracle import Expect, Oracle, Verdict
from ..data import clause_ids, schema
from ..data.vectors import ExpectedDecision, ExpectedError, Step, _vector
from ..reports.terminal import timeline
from ..targets import Target, TargetError
from ..targets.protocol import HarnessError
from .vectors import compare

__all__ = ["Counterexample", "StatefulResult", "run_stateful"]

# The gate pool: the first is the plainest, which shrinking prefers. ID-2's lookalikes.
GATES: tuple[tuple[str, str, str], ...] = (
    ("ns", "act", "p"),
    ("a:b", "c", "p"),
    ("a", "b:c", "p"),
    ("", "", ""),
    ("\u00e9", "e\u0301", "{x}"),
    ("e\u0301", "\u00e9", "{x}"),
    ("a", "b", ""),
    ("a", "", "b"),
    ("ns", "act", "P"),
    ("ns", "act", "p "),
    ("ns\x00", "act", "p"),
    ("*", "[a]", "@/|"),
)
# A third of the checks go to four hot gates, so that a gate sees deep sequences. Strategies
# are single sampled_from draws where they can be: hypothesis' cost is per choice, and each
# shrinks to its first element, the plainest.
GATE = st.sampled_from(GATES[:4] * 3 + GATES)
HOME = {gate: index % 3 for index, gate in enumerate(GATES)}
POLICY_FIELDS = ("max_calls", "window", "cooldown", "mode", "on_store_error")
POLICY = st.fixed_dictionaries(
    {
        "max_calls": st.sampled_from([2, 1, 0, 3, 7]),
        "window": st.sampled_from([10.0, None, 1.0, 0.1, 0.3, 60.0]),
        "cooldown": st.sampled_from([0.0, 0.5, 2.0, 30.0, -0.0]),  # 30 outlasts most windows
        "mode": st.sampled_from(["HARD", "SOFT"]),
        "on_store_error": st.sampled_from(["FAIL_CLOSED", "FAIL_OPEN"]),
    }
)
# Which of the example's three policies a check uses: the gate's own, mostly (POL-6).
VARIANT = st.sampled_from([0, 0, 0, 0, 0, 0, 0, 0, 1, 2])
# Where an example's clock starts: at zero, or at an epoch-sized time with a fraction, where
# binary64 differences are inexact. A jump there within an example would make every earlier
# event one that housekeeping may drop (RET-4), and leave little to check exactly after it.
START = st.sampled_from([0.0, 1.7e9 + 0.1, 1.7e9 + 0.3])
# Invalid input: (where, field, value); a check of it expects the oracle's error (POL-5).
INVALID = (
    ("policy", "window", {"$float": "NaN"}),
    ("policy", "max_calls", True),
    ("now", "now", {"$float": "NaN"}),
    ("gate", "principal", "\ud800"),
    ("policy", "cooldown", -1.0),
    ("policy", "mode", "hard"),
    ("gate", "action", None),
    ("now", "now", 2.0**54),
    ("policy", "window", 0.0),
    ("policy", "max_calls", 2.5),
)
# What a step does (see _Model.step); the list's shares are the steps' frequencies. A check at a
# time relative to the last check's: zero, exactly the window or cooldown from the gate's last
# check (or one binary64 either side), at or just before the gate's last check, one binary64
# on or back, backwards. Then bursts at one instant, clears, a store failure, invalid input.
ACTION = st.sampled_from(
    [
        ("add", 1.0),
        ("same", 0.0),
        *(("add", by) for by in (0.5, 0.1, 2.5, 10.0, 30.0, 61.0)),
        *((kind, ulps) for kind in ("window", "cooldown") for ulps in (0.0, -1.0, 1.0)),
        ("gate", 0.0),
        ("gate", -0.5),
        ("ulp", 1.0),
        ("ulp", -1.0),
        *(("back", by) for by in (0.5, 5.0)),
        *(("burst", count) for count in (3.0, 6.0, 8.0)),
        ("clear", 0.0),
        ("clear_all", 0.0),
        ("fault", 0.0),
        ("invalid", 0.0),
        ("invalid", 5.0),
    ]
)
STEP_FLAGS = {"window": "boundary", "cooldown": "boundary", "ulp": "binary64"}
STEP_FLAGS |= {"back": "clock-backwards"}
CLAUSE_FLAGS = {
    "RET-1": "retention",
    "RET-2": "pruning",
    "RET-3": "null-window",
    "RET-4": "housekeeping",
    "CLK-1": "clock-backwards",
    "CD-1": "cooldown",
    "CD-2": "cooldown-interaction",
    "ORD-1": "reason-priority",
    "RATE-1": "rate-limit",
    "RES-1": "reservation",
    "RES-2": "equal-timestamps",
    "POL-6": "policy-change",
    "POL-5": "validation",
    "ERR-1": "store-error",
    "CLR-1": "clear",
    "CLR-2": "clear",
    "ID-2": "identity",
}
# The decision clause of each compared field, cited when that field was wrong.
FIELD_CLAUSES = {"status": "DEC-1", "reason": "DEC-1", "calls_in_window": "DEC-2"}
FIELD_CLAUSES |= {"time_since_last": "DEC-3", "gate": "DEC-4", "policy": "DEC-4", "now": "DEC-4"}


@dataclass(frozen=True)
class StatefulResult:
    """How a stateful run went.

    ``examples`` is the number of examples run, or on a failure the number it took to find it
    (shrinking replays not counted). ``vector`` is the counterexample written to ``emit_dir``;
    ``rerun`` the one command that reruns it (or the run); ``failure`` explains, for people.
    """

    passed: bool
    examples: int
    seed: int
    vector: Path | None = None
    rerun: str = ""
    failure: str = ""
    out_of_time: bool = False


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


class _Stop(KeyboardInterrupt):
    """Ends the whole run now. Hypothesis stops at once, recording nothing about the example,
    for a KeyboardInterrupt only; any other exception it would check against earlier examples
    with the same start, and fail as flaky."""


class _OutOfTime(_Stop):
    """The wall-clock budget is spent."""


class _Unrunnable(_Stop):
    """The target cannot be run (``error``, a TargetError): no verdict."""

    def __init__(self, error: TargetError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Run:
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


class _Model(RuleBasedStateMachine):
    def __init__(self, run: _Run) -> None:
        super().__init__()
        spent = time.monotonic() - run.started
        if run.budget is not None and run.found_after is None and spent > run.budget:
            run.out_of_time = True
            raise _OutOfTime
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
            raise _Unrunnable(TargetError(f"the target cannot reset: {response}"))

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
            gate, policy, now, choose=lambda e: not _mismatches(record, e, response)
        )
        if "error" not in verdict.expect:
            self.now = now
            self.gate_time[(gate["namespace"], gate["action"], gate["principal"])] = now
        if len(verdict.accepted) > 1:
            self.trace.open_steps.append(len(self.trace.steps))
        self._finish({**record, "expect": verdict.expect}, response, verdict)

    def _plain(self, record: dict[str, Any], clauses: set[str]) -> None:
        message = {key: value for key, value in record.items() if key != "now"}
        self._finish(record, self._request(message), Verdict({}, (), frozenset(clauses)))

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
                    raise _Unrunnable(TargetError(why)) from None
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


def run_stateful(
    target: Target,
    examples: int,
    seed: int | None = None,
    emit_dir: Path | None = None,
    deadline_seconds: float | None = None,
    *,
    target_spec: str = "TARGET",
    steps: int = 30,
) -> StatefulResult:
    """Run ``examples`` stateful examples of up to ``steps`` steps against ``target``.

    The same ``seed`` (and target) gives the same run; without one, a seed is drawn and
    reported. ``deadline_seconds`` stops the search (not the shrinking of a failure found) once
    spent. On a failure the shrunk run is written to ``emit_dir`` as a vector file, if given
    and if no step of it rests on housekeeping. ``target_spec`` is the target's string, for the
    rerun command. Raises TargetError if the target cannot be run.
    """
    chosen = random.SystemRandom().randrange(2**32) if seed is None else seed
    run = _Run(target, "store_faults" in target.capabilities, deadline_seconds)
    # @seed on the factory is how hypothesis seeds a state machine.
    factory = hypothesis_seed(chosen)(lambda: _Model(run))
    options = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=False,  # the seed decides instead, so --seed can vary the search
        database=None,
        print_blob=False,
        report_multiple_bugs=False,  # one failure site; stop searching once it is found
        verbosity=Verbosity.quiet,
        phases=(Phase.generate, Phase.shrink),
        # A slow cmd: target or a long run is no fault of the model.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    search = _search_command(target_spec, examples, chosen)
    try:
        with with_reporter(lambda _: None):
            # Typed differently across hypothesis releases (a factory is documented to work).
            run_machine: Any = run_state_machine_as_test
            run_machine(factory, settings=options)
    except _OutOfTime:
        pass
    except _Unrunnable as stop:
        raise stop.error from None
    except BaseException as error:
        found = sorted(_counterexamples(error), key=lambda c: len(c.trace.steps))
        if not found:
            raise
        after = run.found_after or run.examples
        return _failed(found[0], chosen, emit_dir, target_spec, after=after, search=search)
    if run.housekeeping:
        after, shortest = min(run.housekeeping, key=lambda pair: len(pair[1].trace.steps))
        return _failed(shortest, chosen, None, target_spec, after=after, search=search)
    return StatefulResult(True, run.examples, chosen, rerun=search, out_of_time=run.out_of_time)


def _search_command(target_spec: str, examples: int, chosen: int) -> str:
    return (
        f"actiongate-conformance run --target {shlex.quote(target_spec)} "
        f"--examples {examples} --seed {chosen}"
    )


def _counterexamples(error: BaseException) -> Iterator[Counterexample]:
    if isinstance(error, Counterexample):
        yield error
    for inner in getattr(error, "exceptions", ()):  # an ExceptionGroup, a FlakyFailure
        yield from _counterexamples(inner)


def _failed(
    found: Counterexample,
    chosen: int,
    emit_dir: Path | None,
    target_spec: str,
    *,
    after: int,
    search: str,
) -> StatefulResult:
    trace = found.trace
    document = vector_document(found, chosen, target_spec)
    raw = document["vectors"][0]
    path = None
    if emit_dir is not None and not trace.open_steps:
        emit_dir.mkdir(parents=True, exist_ok=True)
        path = emit_dir / f"{raw['id']}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=True) + "\n", "utf-8")
    vector = _vector(path or Path("<stateful>"), 0, raw)
    lines = [
        f"The stateful model found a disagreement after {after} examples (seed {chosen}), "
        + ("shrunk to" if not trace.open_steps else "in a run of")
        + (" 1 step:" if len(trace.steps) == 1 else f" {len(trace.steps)} steps:"),
        *("  " + line for line in timeline(vector, None, tuple(trace.responses))),
        f"step {len(trace.steps) - 1}:",
        *("  " + line for line in "\n".join(found.problems).splitlines()),
    ]
    rerun = search
    if trace.open_steps:
        lines.append(
            f"No vector: steps {', '.join(map(str, trace.open_steps))} retain events that RET-4 "
            "lets a store drop by housekeeping, so SEMANTICS.md does not fix their results. "
            "Rerun the search:"
        )
    elif path is None:
        lines.append("Rerun the search (add --emit DIR to write the counterexample as a vector):")
    else:
        lines.append(f"Counterexample vector: {path}; rerun it:")
        rerun = (
            f"actiongate-conformance run --target {shlex.quote(target_spec)} "
            f"--vectors {shlex.quote(str(path))}"
        )
    lines.append(f"  {rerun}")
    return StatefulResult(False, after, chosen, path, rerun, "\n".join(lines))


def vector_document(found: Counterexample, chosen: int, target_spec: str) -> dict[str, Any]:
    """A vector file (spec/vector.schema.json) of a counterexample: its steps with the oracle's
    expectations, an id from a hash of them, the clauses they touched."""
    trace = found.trace
    steps = [dict(step) for step in trace.steps]
    problems = "; ".join(problem.splitlines()[0] for problem in found.problems)
    steps[-1]["note"] = f"the failing step: {problems}"[:2000]
    # Every decision clause is compared at every check; cite those whose fields were wrong.
    cited = {c for c in trace.clauses if not c.startswith("DEC-")}
    cited |= {FIELD_CLAUSES[name] for name in found.fields if name in FIELD_CLAUSES}
    canonical = json.dumps(trace.steps, sort_keys=True, ensure_ascii=True)
    vector_id = f"stateful-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
    gates = [step["gate"] for step in steps if isinstance(step.get("gate"), dict)]
    fields = [value for gate in gates for value in gate.values() if isinstance(value, str)]
    max_calls = [step["policy"].get("max_calls") for step in steps if "policy" in step]
    derived = {
        "many-gates": len({json.dumps(gate, sort_keys=True) for gate in gates}) > 3,
        "separator": any(mark in value for value in fields for mark in ":@/|{}"),
        "unicode": any(not value.isascii() for value in fields),
        "max-calls-edge": any(type(n) is int and n <= 1 for n in max_calls),
    }
    found_flags = trace.flags | {flag for flag, holds in derived.items() if holds}
    known_flags = schema("vector")["$defs"]["flag"]["enum"]
    flags = [flag for flag in known_flags if flag in found_flags]
    return {
        "schema": "urn:actiongate:schema:vector:1.0",
        "spec_version": "1.0",
        "topic": "stateful",
        "description": "A counterexample found by the stateful model and shrunk by hypothesis.",
        "vectors": [
            {
                "id": vector_id,
                "clauses": [c for c in clause_ids() if c in cited] or ["DEC-1"],
                "flags": flags or ["decision-fields"],
                "description": (
                    f"Found by the stateful model (seed {chosen}) against {target_spec}; at the "
                    f"last step: {problems[:1000]}. The expected values are the "
                    "oracle's (SEMANTICS.md), not any implementation's."
                ),
                "steps": steps,
            }
        ],
    }
