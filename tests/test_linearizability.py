"""The linearizability checker against hand-made histories whose answers are known.

Times: invoke and return instants are small integers (nanoseconds of the recording clock);
``now`` is the check's own time T. Each case names the clause whose promise it exercises.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Hashable
from dataclasses import replace
from typing import Any

import pytest
from actiongate import Gate, Policy
from actiongate_conformance.checkers.linearizability import (
    DecisionFields,
    Operation,
    RateLimitModel,
    Replay,
    check_history,
    fields_from_record,
    step,
)
from actiongate_conformance.layers.concurrency import record_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from .broken_stores import YieldingStore

G = ("n", "a", "p")
ONE = {"max_calls": 1, "window": 60.0, "cooldown": 0.0}
FIVE = {"max_calls": 5, "window": 60.0, "cooldown": 0.0}


def allow(calls: int, since: float | None = None) -> DecisionFields:
    return DecisionFields("ALLOW", None, calls, since)


def block(reason: str, calls: int, since: float | None) -> DecisionFields:
    return DecisionFields("BLOCK", reason, calls, since)


def op(
    process: int,
    span: tuple[int, int | None],
    now: float,
    result: DecisionFields | None,
    policy: dict[str, Any] = ONE,
    *,
    gate: tuple[str, str, str] = G,
) -> Operation:
    return Operation(process, span[0], span[1], gate, policy, now, result)


# RES-1: atomic check-and-reserve.


def test_two_overlapping_allows_of_the_last_slot_are_not_linearizable() -> None:
    history = [op(0, (0, 10), 1.0, allow(1)), op(1, (5, 15), 1.5, allow(1))]
    verdict = check_history(history)
    assert not verdict.linearizable
    (counterexample,) = verdict.counterexamples
    assert counterexample.ids == (0, 1)
    text = verdict.explain()
    assert "#0" in text and "#1" in text
    # JSON values, not Python reprs: null, and the gate's names as JSON strings.
    assert text.count("ALLOW calls_in_window=1 time_since_last=null") == 3  # twice, and "gave"
    assert "None" not in text and 'gate "n"/"a"/"p"' in text
    assert "should have given BLOCK RATE_LIMIT calls_in_window=1" in text
    # Each answer is one some state gives: a race, not a logic bug.
    assert verdict.failure == "race" and not verdict.disagreements
    assert "NOT linearizable (checked" in text and "not linearizable. No order of these 2" in text
    record = json.loads(json.dumps(verdict.to_dict()))  # for the JSON report
    assert record["linearizable"] is False and record["counterexamples"][0]["ids"] == [0, 1]


def test_overlapping_allow_and_block_are_linearizable_in_either_invocation_order() -> None:
    # The BLOCK was invoked first, with the earlier T, yet went second: its age is negative.
    history = [
        op(0, (0, 10), 1.0, block("RATE_LIMIT", 1, 1.0 - 1.5)),
        op(1, (5, 15), 1.5, allow(1)),
    ]
    assert check_history(history).linearizable


def test_the_same_results_without_overlap_are_not() -> None:
    # The BLOCK returned before the ALLOW was invoked, so it went first and saw nothing.
    history = [op(0, (0, 4), 1.0, block("RATE_LIMIT", 1, 1.0 - 1.5)), op(1, (5, 15), 1.5, allow(1))]
    assert not check_history(history).linearizable


def test_real_time_order_binds_operations_that_do_not_overlap() -> None:
    saw_b = op(0, (0, 10), 2.0, allow(2, 1.0), FIVE)  # counts an event at 1.0 ...
    b = op(1, (20, 30), 1.0, allow(1), FIVE)  # ... recorded by a check invoked after it returned
    assert not check_history([saw_b, b]).linearizable
    overlapping = op(1, (5, 30), 1.0, allow(1), FIVE)
    assert check_history([saw_b, overlapping]).linearizable


def test_a_counterexample_is_the_local_conflict_not_the_whole_history() -> None:
    # 40 sequential checks a correct store gave, then two concurrent ALLOWs of one state.
    history, events, now = [], (), 0.0
    policy = {"max_calls": 3, "window": 0.5, "cooldown": 0.0}
    for k in range(40):
        now = k * 0.1
        events, result = step(events, now, policy)
        history.append(op(k % 3, (100 * k, 100 * k + 50), now, result, policy))
    _, result = step(events, 4.5, policy)
    assert result == allow(1)  # both claim the first slot of an emptied window
    history += [op(0, (4000, 4050), 4.5, result, policy), op(1, (4010, 4060), 4.51, result, policy)]
    (counterexample,) = check_history(history).counterexamples
    assert counterexample.ids == (40, 41)
    assert counterexample.proven and counterexample.minimised
    assert counterexample.prefix == 40


# A logic bug is not a race: an answer no state gives is a sequential disagreement.


def _sequential(policy: dict[str, Any], answers: list[DecisionFields]) -> list[Operation]:
    """Checks one at a time, 1 s apart from T = 1, none overlapping another."""
    return [
        op(k, (100 * k, 100 * k + 50), 1.0 + k, answer, policy) for k, answer in enumerate(answers)
    ]


def test_an_allow_over_max_calls_is_a_sequential_disagreement_naming_the_check() -> None:
    # OffByOneRateLimit: the third check of max_calls 2 allowed, with no concurrency at all.
    history = _sequential(FIVE | {"max_calls": 2}, [allow(1), allow(2, 1.0), allow(3, 1.0)])
    verdict = check_history(history)
    assert verdict.failure == "sequential"
    (wrong,) = verdict.disagreements
    assert (wrong.id, wrong.clauses) == (2, ("RATE-1",))
    assert wrong.expected == block("RATE_LIMIT", 2, 1.0)
    text = verdict.explain()
    assert "SEQUENTIAL DISAGREEMENT" in text and "not a race" in text
    assert "not linearizable" not in text and "Furthest order" not in text
    assert "check #2 (p2): now=3.0 max_calls=2 window=60.0 cooldown=0.0" in text
    assert 'status           "ALLOW"                  "BLOCK"                  <- differs' in text
    assert "calls_in_window  3                        2                        <- differs" in text
    assert "an ALLOW with |R| = 2 >= max_calls 2" in text and "Breaks RATE-1" in text
    assert "None" not in text
    record = json.loads(json.dumps(verdict.to_dict()))
    assert record["failure"] == "sequential" and record["disagreements"][0]["id"] == 2


@pytest.mark.parametrize(
    ("answers", "clauses", "why"),
    [
        # OldestAsLast: the age runs from the oldest event, 2 s, not the newest, 1 s.
        ([allow(1), allow(2, 1.0), allow(3, 2.0)], ("DEC-3",), "last is not the greatest"),
        # CountWithoutNewCall: an ALLOW's count leaves out the call allowed.
        ([allow(0)], ("DEC-2",), "R is empty"),
        # AgeAfterReservation: the age measured from the event just reserved.
        ([allow(1, 0.0)], ("DEC-3", "RES-1"), "its own event"),
        # RecordsOnBlock: the last event is a BLOCKed check's.
        ([allow(1), block("RATE_LIMIT", 1, 1.0), block("RATE_LIMIT", 2, 1.0)],
         ("RES-1", "DEC-3"), "BLOCKed check"),
        # PruneAfterCheck: counts an event older than the window.
        ([allow(1), allow(2, 1.0), allow(3, 1.0)], ("RET-1", "DEC-2"), "inside the window"),
    ],
    ids=["oldest-as-last", "count-without-new-call", "age-after-reservation",
         "records-on-block", "prune-after-check"],
)  # fmt: skip
def test_answers_no_state_gives_cite_their_clause(
    answers: list[DecisionFields], clauses: tuple[str, ...], why: str
) -> None:
    policy = {"max_calls": 1 if "BLOCK" in str(answers) else 5, "window": 60.0, "cooldown": 0.0}
    if clauses == ("RET-1", "DEC-2"):
        policy["window"] = 1.5  # at T = 3 only the event at 2 is retained
    verdict = check_history(_sequential(policy, answers))
    assert verdict.failure == "sequential"
    (wrong,) = verdict.disagreements
    assert wrong.id == len(answers) - 1 and wrong.clauses == clauses
    assert why in wrong.why, wrong.why


def test_a_replay_one_check_at_a_time_has_the_last_word() -> None:
    history = _sequential(FIVE | {"max_calls": 2}, [allow(1), allow(2, 1.0), allow(3, 1.0)])
    verdict = check_history(history)
    # Right one at a time: the answer no single state gives was a torn read, a race.
    torn = verdict.with_replay(Replay(3))
    assert torn.failure == "race"
    assert "it read the state torn by a concurrent write" in torn.explain()
    # A replay that could not finish decides nothing: the recorded answer stands.
    unfinished = verdict.with_replay(Replay(0, inconclusive="the target crashed"))
    assert unfinished.failure == "sequential"
    assert "not run again one check at a time: the target crashed" in unfinished.explain()


def test_lost_and_resurrected_writes_are_a_race_not_a_logic_bug() -> None:
    # ReadThenWrite: two checks read the empty gate and both write; the first write is lost.
    # A later check sees the survivor only: right for a state, wrong for every order.
    first, lost = op(0, (0, 10), 1.0, allow(1), FIVE), op(1, (5, 15), 1.5, allow(1), FIVE)
    later = op(2, (20, 30), 2.0, allow(2, 0.5), FIVE)
    verdict = check_history([first, lost, later])
    assert not verdict.linearizable and verdict.failure == "race"
    assert "Each check's answer is one some state gives" in verdict.explain()


@st.composite
def _racing(draw: st.DrawFn) -> list[Operation]:
    """A store that reads a snapshot, decides by the spec, and later writes the snapshot (plus
    its event) back over whatever is there, or appends its event to it: lost, stale and
    resurrected writes, double counts; never a torn read, never an invented time."""
    count = draw(st.integers(2, 7))
    policy = {
        "max_calls": draw(st.integers(1, 3)),
        "window": draw(st.sampled_from([None, 1.0, 2.5])),
        "cooldown": draw(st.sampled_from([0.0, 0.5])),
    }
    overwrite = draw(st.booleans())
    spans = []
    for k in range(count):
        invoke = 10 * k + draw(st.integers(0, 5))
        read = invoke + draw(st.integers(0, 30))
        write = read + draw(st.integers(0, 30))
        spans.append((invoke, read, write, write + draw(st.integers(0, 5))))
    now = [0.5 * k + draw(st.sampled_from([0.0, 0.25, -0.75])) for k in range(count)]
    instants = sorted((span[i], i, k) for k, span in enumerate(spans) for i in (1, 2))
    state: tuple[float, ...] = ()
    seen: dict[int, tuple[tuple[float, ...], DecisionFields]] = {}
    for _, phase, k in instants:
        if phase == 1:  # the read: decide on the state as it is now
            seen[k] = step(tuple(sorted(state)), now[k], policy)
        else:  # the write
            after, result = seen[k]
            mine = (now[k],) if result.status == "ALLOW" else ()
            state = after if overwrite else tuple(sorted((*state, *mine)))
    return [op(k, (spans[k][0], spans[k][3]), now[k], seen[k][1], policy) for k in range(count)]


@settings(max_examples=300, deadline=None)
@given(_racing())
def test_a_race_is_never_called_a_logic_bug(history: list[Operation]) -> None:
    verdict = check_history(history)
    assert verdict.failure in (None, "race"), verdict.explain()


# Indeterminate operations (ERR-3), as Knossos's :info.


def test_an_indeterminate_check_may_have_recorded_its_event() -> None:
    unknown = op(0, (0, None), 1.0, None, FIVE)
    saw_it = op(1, (10, 20), 2.0, allow(2, 1.0), FIVE)
    assert check_history([unknown, saw_it]).linearizable
    assert not check_history([saw_it]).linearizable  # nothing else explains the count


def test_an_indeterminate_check_may_have_recorded_nothing() -> None:
    unknown = op(0, (0, None), 1.0, None, FIVE)
    first = op(1, (10, 20), 2.0, allow(1), FIVE)
    second = op(1, (30, 40), 3.0, allow(2, 1.0), FIVE)
    assert check_history([unknown, first, second]).linearizable


def test_an_indeterminate_check_may_take_effect_after_it_returned() -> None:
    # A timed-out write can land later: the STORE_ERROR came back at 5, the event shows at 30.
    unknown = op(0, (0, 5), 1.0, None, FIVE)
    before = op(1, (10, 20), 2.0, allow(1), FIVE)
    after = op(1, (30, 40), 3.0, allow(3, 1.0), FIVE)
    assert check_history([unknown, before, after]).linearizable


def test_an_indeterminate_check_cannot_act_before_it_was_invoked() -> None:
    saw_it = op(1, (0, 10), 2.0, allow(2, 1.0), FIVE)
    too_late = op(0, (20, None), 1.0, None, FIVE)
    assert not check_history([saw_it, too_late]).linearizable


# CD-1, ORD-1: cooldown, and its order before the rate limit.


def test_cooldown_blocks_a_concurrent_check_and_a_second_allow_is_not_linearizable() -> None:
    policy = {"max_calls": 5, "window": 60.0, "cooldown": 5.0}
    first = op(0, (0, 10), 1.0, allow(1), policy)
    assert check_history(
        [first, op(1, (5, 15), 2.0, block("COOLDOWN", 1, 1.0), policy)]
    ).linearizable
    assert not check_history([first, op(1, (5, 15), 2.0, allow(1), policy)]).linearizable


def test_cooldown_wins_over_the_rate_limit() -> None:
    policy = {"max_calls": 1, "window": 60.0, "cooldown": 5.0}
    first = op(0, (0, 10), 1.0, allow(1), policy)
    rate = op(1, (5, 15), 2.0, block("RATE_LIMIT", 1, 1.0), policy)
    assert not check_history([first, rate]).linearizable
    cooldown = op(1, (5, 15), 2.0, block("COOLDOWN", 1, 1.0), policy)
    assert check_history([first, cooldown]).linearizable


# ID-2: gates never share state, so they are checked apart.


def test_gates_are_partitioned() -> None:
    other = ("n", "a", "q")
    history = [op(0, (0, 10), 1.0, allow(1)), op(1, (5, 15), 1.5, allow(1), gate=other)]
    verdict = check_history(history)
    assert verdict.linearizable and verdict.gates == 2
    both = [*history, op(2, (7, 17), 1.7, allow(1), gate=other)]
    (counterexample,) = check_history(both).counterexamples
    assert counterexample.gate == other and counterexample.ids == (1, 2)


# RET-4: a store may drop an event once a check of any gate makes it too old for the window.


def test_housekeeping_after_a_later_check_of_another_gate_is_allowed() -> None:
    policy = {"max_calls": 5, "window": 10.0, "cooldown": 0.0}
    recorded = op(0, (0, 5), 0.0, allow(1), policy)
    late_clock = op(1, (30, 40), 5.0, allow(1), policy)  # its clock lags: the event at 0 is gone
    elsewhere = op(2, (10, 20), 100.0, allow(1), policy, gate=("n", "a", "other"))
    assert check_history([recorded, elsewhere, late_clock]).linearizable
    # At T' = 9 no check could drop the event at 0 (0 >= 9 - 10): it must still be there.
    not_yet = op(2, (10, 20), 9.0, allow(1), policy, gate=("n", "a", "other"))
    assert not check_history([recorded, not_yet, late_clock]).linearizable


# The model is the spec's procedure; the checker takes any model.


def test_the_model_gives_the_spec_examples() -> None:
    # TIME-2: 0.3 - 0.2 = 0.09999999999999998, so an event at 0.1 is retained.
    events, _ = step((0.1,), 0.3, {"max_calls": 5, "window": 0.2, "cooldown": 0.0})
    assert events == (0.1, 0.3)
    # CLK-1: ALLOWs at 100 and 101, then checks at 95 and 96.
    policy = {"max_calls": 3, "window": 10.0, "cooldown": 0.0}
    events, result = step((100.0, 101.0), 95.0, policy)
    assert result == allow(3, -6.0)
    assert step(events, 96.0, policy)[1] == block("RATE_LIMIT", 3, -5.0)
    # CD-2: a cooldown longer than the window ends with the window.
    policy = {"max_calls": 5, "window": 10.0, "cooldown": 60.0}
    assert step((0.0,), 10.0, policy)[1] == block("COOLDOWN", 1, 10.0)
    assert step((0.0,), 10.5, policy)[1] == allow(1)


def test_any_model_with_init_and_step_plugs_in() -> None:
    class Counter:
        """A counter whose every operation returns the count including itself."""

        def init(self) -> Hashable:
            return 0

        def step(self, state: Any, operation: Operation) -> tuple[Hashable, object]:
            return state + 1, allow(state + 1)

    ordered = [op(0, (0, 10), 1.0, allow(2)), op(1, (5, 15), 1.0, allow(1))]
    assert check_history(ordered, Counter()).linearizable
    same = [op(0, (0, 10), 1.0, allow(1)), op(1, (5, 15), 1.0, allow(1))]
    assert not check_history(same, Counter()).linearizable
    assert isinstance(RateLimitModel().init(), tuple)


def test_a_search_out_of_budget_is_undecided_not_a_verdict() -> None:
    history, events = [], ()
    for k in range(5):
        events, result = step(events, 1.0 + k, FIVE)
        history.append(op(k, (k, 100), 1.0 + k, result, FIVE))
    assert check_history(history).linearizable
    verdict = check_history(history, budget=2)
    assert verdict.undecided == (G,) and not verdict.counterexamples
    assert not verdict.linearizable and "undecided" in verdict.explain()


def test_decision_records_give_the_compared_fields() -> None:
    record = {"status": "BLOCK", "reason": "COOLDOWN", "calls_in_window": 2, "time_since_last": 1}
    assert fields_from_record(record) == block("COOLDOWN", 2, 1.0)
    failed = {"status": "ALLOW", "reason": "STORE_ERROR", "calls_in_window": 0}
    assert fields_from_record({**failed, "time_since_last": None}) is None  # indeterminate


def test_operations_must_be_well_formed() -> None:
    with pytest.raises(ValueError, match="return_ns must be >= invoke_ns"):
        op(0, (10, 5), 1.0, allow(1))
    with pytest.raises(ValueError, match="must have a return_ns"):
        op(0, (10, None), 1.0, allow(1))


# The performance target: 10,000 operations on one gate from 8 contending threads.


@pytest.mark.slow
def test_ten_thousand_operations_on_one_gate(record_property: Any) -> None:
    history = record_threads(
        YieldingStore(),
        [Gate("bench", "linearizability", "one-gate")],
        [Policy(max_calls=4, window=0.02), Policy(max_calls=6, window=0.03, cooldown=0.001)],
        threads=8,
        checks_per_thread=1250,
    )
    verdict = check_history(history)
    # Measured, not asserted: in JUnit XML (--junitxml) as a property, and shown under -s.
    record_property("check_seconds", round(verdict.seconds, 2))
    print(f"10,000 operations, 8 threads, one gate: checked in {verdict.seconds:.2f} s")
    assert len(history) == 10_000
    assert verdict.ok, verdict.explain()


# The search against brute force: every order of every subset of indeterminate operations.


class _WithoutHousekeeping(RateLimitModel):
    """The model with RET-4 left out, so that brute force can replay it order by order."""

    def step(self, state: Any, operation: Operation) -> tuple[Any, DecisionFields]:
        return super().step(state, replace(operation, horizon=None))


def _brute_force(history: list[Operation], model: RateLimitModel) -> bool:
    determinate = [o for o in history if o.result is not None]
    unknown = [o for o in history if o.result is None]
    for size in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, size):
            for order in itertools.permutations([*determinate, *chosen]):
                if _respects_real_time(order) and _replays(order, model):
                    return True
    return False


def _respects_real_time(order: tuple[Operation, ...]) -> bool:
    # b may not follow a if b returned before a was invoked; an indeterminate op never returns.
    return not any(
        b.result is not None and b.return_ns is not None and b.return_ns < a.invoke_ns
        for k, a in enumerate(order)
        for b in order[k + 1 :]
    )


def _replays(order: tuple[Operation, ...], model: RateLimitModel) -> bool:
    state: Any = model.init()
    for operation in order:
        state, output = model.step(state, operation)
        if operation.result is not None and output != operation.result:
            return False
    return True


@st.composite
def _histories(draw: st.DrawFn) -> list[Operation]:
    """A few checks a correct sequential store answered, their intervals around their
    linearization points, and sometimes one result or interval tampered with."""
    model = RateLimitModel()
    count = draw(st.integers(1, 6))
    state: Any = model.init()
    operations = []
    for position in range(count):
        policy = {
            "max_calls": draw(st.integers(0, 3)),
            "window": draw(st.sampled_from([None, 1.0, 2.5])),
            "cooldown": draw(st.sampled_from([0.0, 0.5])),
        }
        now = draw(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]))  # steps back too (CLK-1)
        probe = Operation(0, 0, 0, G, policy, now, None)
        indeterminate = draw(st.booleans()) and draw(st.booleans())
        took_effect = not indeterminate or draw(st.booleans())
        new_state, output = model.step(state, probe)
        if took_effect:
            state = new_state
        point = 10 * position + 5
        invoke = point - draw(st.integers(0, 25))
        end = point + draw(st.integers(0, 25))
        result = None if indeterminate else output
        operations.append(Operation(position, invoke, end, G, policy, now, result))
    if draw(st.booleans()):
        k = draw(st.integers(0, count - 1))
        target = operations[k]
        if target.result is not None:
            calls = target.result.calls_in_window + draw(st.sampled_from([-1, 1]))
            operations[k] = replace(target, result=target.result._replace(calls_in_window=calls))
        else:
            operations[k] = replace(target, invoke_ns=target.invoke_ns + 30, return_ns=None)
    return operations


@settings(max_examples=300, deadline=None)
@given(_histories())
def test_the_search_agrees_with_brute_force(history: list[Operation]) -> None:
    model = _WithoutHousekeeping()
    assert check_history(history, model).linearizable == _brute_force(history, model)
