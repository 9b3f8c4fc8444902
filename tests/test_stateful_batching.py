"""The stateful model's batching: each example's steps go in one pipelined batch, yet the run
sends the same requests, finds the same failure at the same step, and shrinks it to the same
counterexample and vector as a model that sends one step at a time.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from actiongate_conformance.layers.stateful import machine, run_stateful
from actiongate_conformance.layers.stateful.control import Found, Run, Stop
from actiongate_conformance.layers.stateful.machine import Model
from actiongate_conformance.layers.stateful.minimize import replay
from actiongate_conformance.targets import Target, target_from_string
from actiongate_conformance.targets.protocol import HarnessError

SEED = 20261124
ROOT = Path(__file__).resolve().parents[1]
CRASH = f"cmd:{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'tests/adapters/broken.py'))}"
GATE = {"namespace": "ns", "action": "act", "principal": "p"}
POLICY = {"max_calls": 1, "window": 10.0, "cooldown": 0.0, "mode": "HARD"}
POLICY["on_store_error"] = "FAIL_CLOSED"


class Recorder:
    """Counts a target's round trips and keeps every message sent, in order."""

    def __init__(self, target: Target) -> None:
        self.target, self.trips, self.sent = target, 0, []
        self.answer = target.request_many
        target.request_many = self.request_many  # type: ignore[method-assign]

    def request_many(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.trips += 1
        self.sent += [json.dumps(message, sort_keys=True) for message in messages]
        return self.answer(messages)


@pytest.mark.slow
def test_a_batched_search_sends_what_a_step_at_a_time_sends_in_far_fewer_trips() -> None:
    runs = {}
    for batched in (True, False):
        recorder = Recorder(target_from_string("memory://"))
        result = run_stateful(recorder.target, 60, SEED, None, None, batched=batched)
        assert result.passed and result.examples == 60, result.failure
        runs[batched] = recorder
    assert runs[True].sent == runs[False].sent  # the same examples, requests and order
    assert len(runs[True].sent) > 1000
    # An example's reset and steps go in a few batches (the model needs the answer of a check
    # RET-4 leaves open before its next step); a step at a time, in as many as it has steps.
    assert runs[True].trips < 5 * 60
    assert runs[True].trips * 3 < runs[False].trips


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "examples"),
    [
        ("py:tests.mutants.stores:OffByOneRateLimit", 200),
        ("py:tests.mutants.stores:EqualTimesCollapse", 200),
        ("py:tests.mutants.stores:NullWindowExpires", 200),
        ("py:tests.broken_stores:SixthEqualTimestamp", 300),
    ],
)
def test_a_failure_shrinks_to_the_same_counterexample_batched_or_not(
    spec: str, examples: int, tmp_path: Path
) -> None:
    # Hypothesis shrinks by where a failure is raised: judged at the end of a batch, it would
    # shrink elsewhere. The batched search stops at its failure and the search runs again, a
    # step at a time, so the shrinking, the minimized steps and the vector are the same.
    found = {}
    for batched in (True, False):
        shown: list[int] = []
        emit = tmp_path / str(batched)
        result = run_stateful(
            target_from_string(spec), examples, SEED, emit, None, target_spec=spec,
            progress=shown.append, batched=batched,
        )  # fmt: skip
        assert not result.passed and result.vector is not None
        assert shown == sorted(shown)  # the repeated search shows no example twice
        failure = result.failure.replace(str(emit), "EMIT")
        found[batched] = (result.examples, failure, result.vector.read_text(encoding="utf-8"))
    assert found[True] == found[False]


@pytest.mark.slow
def test_a_check_judged_before_its_answer_has_one_permitted_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The oracle takes the target's answer only for a check RET-4 leaves open; the model judges
    # every other check when it queues it, and must never guess one of those wrong.
    judged = {"early": 0, "open": 0}
    judge = Model._judge

    def checked(model: Model, record: dict[str, Any], response: Any) -> Any:
        verdict = judge(model, record, response)
        if response is None:
            judged["early"] += 1
            assert not verdict.open, record
        judged["open"] += verdict.open
        return verdict

    monkeypatch.setattr(Model, "_judge", checked)
    for spec in ("py:tests.broken_stores:EagerHousekeeping", "memory://"):
        result = run_stateful(target_from_string(spec), 150, SEED, None, None)
        assert result.passed, result.failure
    assert judged["open"] > 50 and judged["early"] > 1000


def test_a_failure_queued_as_hypothesis_stops_an_example_stops_the_next() -> None:
    # Hypothesis tears an example down as it stops it (its choices ran out): a failure found
    # then must not replace its exception, so it is noted for the next example to act on.
    target = target_from_string("py:tests.mutants.stores:OffByOneRateLimit")
    run = Run(target, False, None, batched=True)
    model = Model(run)
    for now in (0.0, 1.0, 2.0):  # max_calls 1: the second check is the off-by-one ALLOW
        model.play({"op": "check", "now": now, "gate": GATE, "policy": POLICY})
    assert len(model.queued) == 3 and not model.trace.steps
    try:
        raise LookupError("hypothesis stops the example")
    except LookupError:
        model.teardown()
    assert run.found_in == 1
    assert [step["now"] for step in model.trace.steps] == [0.0, 1.0]  # up to the failure
    with pytest.raises(Found):
        Model(run)


def test_teardown_sends_nothing_as_the_run_stops() -> None:
    recorder = Recorder(target_from_string("memory://"))
    model = Model(Run(recorder.target, False, None))
    model.play({"op": "check", "now": 0.0, "gate": GATE, "policy": POLICY})
    try:
        raise Stop
    except Stop:
        model.teardown()
    assert recorder.trips == 0
    model.teardown()  # an example's end: its reset and steps, in one batch
    assert recorder.trips == 1 and len(recorder.sent) == 2


def test_a_crash_in_a_batch_is_the_request_that_crashed() -> None:
    target = target_from_string(f"{CRASH} crash")  # answers until a check, then exits
    try:
        clear = {"op": "clear", "gate": GATE}
        check = {"op": "check", "now": 0.0, "gate": GATE, "policy": POLICY}
        with pytest.raises(HarnessError) as raised:
            target.request_many([{"op": "reset"}, clear, check, clear])
        assert raised.value.kind == "crashed" and raised.value.index == 2
        assert raised.value.answered == [{"ok": True}, {"ok": True}]
        assert raised.value.request["op"] == "check"
        target.restart()
        steps = [{"op": "clear", "now": 0.0, "gate": GATE}, check]
        failure = replay(target, False, [*steps, steps[0]])
    finally:
        target.close()
    assert failure is not None
    assert [step["op"] for step in failure.trace.steps] == ["clear", "check"]
    assert failure.trace.responses[0] == {"ok": True}
    assert "adapter fault (crashed)" in failure.problems[0]


def test_a_full_batch_is_sent_before_the_example_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "BATCH", 2)
    recorder = Recorder(target_from_string("memory://"))
    model = Model(Run(recorder.target, False, None))
    for now in (0.0, 20.0, 40.0):
        model.play({"op": "check", "now": now, "gate": GATE, "policy": POLICY})
    assert recorder.trips == 1 and len(recorder.sent) == 3  # the reset and two checks
    model.flush()
    assert recorder.trips == 2 and len(model.trace.steps) == 3
