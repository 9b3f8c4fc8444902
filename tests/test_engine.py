"""The Engine's public API: validation, decorators, modes, listeners, failures, async."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import actiongate
import pytest
from actiongate import (
    MISSING,
    AsyncMemoryStore,
    Blocked,
    BlockReason,
    Decision,
    Emitter,
    Engine,
    Gate,
    InvalidGate,
    InvalidPolicy,
    InvalidTime,
    MemoryStore,
    Mode,
    Policy,
    Result,
    Status,
    StoreErrorMode,
)

from .conftest import ManualClock

GATE = Gate("api", "search", "user:1")
ONE = Policy(max_calls=1, window=60)


def engine_at(clock: ManualClock, store: Any = None) -> Engine:
    return Engine(store=store if store is not None else MemoryStore(), clock=clock)


# Validation at construction (ID-3, POL-1..4)


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"max_calls": True}, "max_calls", "max_calls must be an integer, got True"),
        ({"max_calls": 2.0}, "max_calls", "max_calls must be an integer, got 2.0"),
        ({"max_calls": -1}, "max_calls", "got -1"),
        ({"max_calls": 2**53}, "max_calls", "2**53 - 1"),
        ({"window": math.nan}, "window", "window must be finite, got nan"),
        ({"window": math.inf}, "window", "window must be finite, got inf"),
        ({"window": 0}, "window", "window must be > 0 or None, got 0"),
        ({"window": "60"}, "window", "window must be a number, got '60'"),
        ({"window": 10**400}, "window", "window must be finite"),
        ({"cooldown": -1e-300}, "cooldown", "cooldown must be >= 0"),
        ({"cooldown": None}, "cooldown", "cooldown must be a number, got None"),
        ({"mode": "hard"}, "mode", "mode must be one of ['HARD', 'SOFT'], got 'hard'"),
        ({"on_store_error": None}, "on_store_error", "on_store_error must be one of"),
    ],
)
def test_invalid_policies_name_the_field(kwargs: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Policy(**kwargs)
    assert caught.value.field == field
    assert text in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, TypeError)


def test_valid_policy_edges_are_accepted() -> None:
    assert Policy(max_calls=2**53 - 1).max_calls == 2**53 - 1
    assert Policy(window=None).window is None
    assert Policy(window=5e-324).window == 5e-324
    assert Policy(cooldown=-0.0).cooldown == 0.0
    assert Policy(mode="SOFT").mode is Mode.SOFT  # the record spelling is accepted too
    assert Policy(window=60) == Policy(window=60.0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ((5, "a", "p"), "namespace"),
        (("n", None, "p"), "action"),
        (("n", "a", "\ud800"), "principal"),
    ],
)
def test_invalid_gates_name_the_field(fields: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InvalidGate) as caught:
        Gate(*fields)
    assert caught.value.field == field


def test_gate_defaults_and_identity() -> None:
    assert Gate("n", "a").principal == "global"
    assert Gate("a:b", "c", "p") != Gate("a", "b:c", "p")
    assert Gate("a:b", "c", "p").key != Gate("a", "b:c", "p").key
    assert Gate("a", "b", "").key != Gate("a", "", "b").key
    assert Gate("", "", "") == Gate("", "", "")


def test_a_clock_out_of_range_is_rejected_and_records_nothing(clock: ManualClock) -> None:
    engine = engine_at(clock)
    for bad in (math.nan, math.inf, 2.0**53 + 2, True):
        clock.now = bad
        with pytest.raises(InvalidTime):
            engine.check(GATE, ONE)
    clock.now = 0.0
    assert engine.check(GATE, ONE).calls_in_window == 1


def test_check_rejects_a_non_gate_before_touching_the_store(clock: ManualClock) -> None:
    with pytest.raises(InvalidGate):
        engine_at(clock).check(("api", "search", "u"), ONE)  # type: ignore[arg-type]


# Decisions


def test_check_allows_then_blocks_and_reports_the_spec_fields(clock: ManualClock) -> None:
    engine = engine_at(clock)
    first = engine.check(GATE, Policy(max_calls=2, window=10, cooldown=1))
    assert first and first.allowed and not first.blocked
    assert (first.status, first.reason, first.calls_in_window, first.time_since_last) == (
        Status.ALLOW,
        None,
        1,
        None,
    )
    clock.now = 0.5
    second = engine.check(GATE, Policy(max_calls=2, window=10, cooldown=1))
    assert not second
    assert (second.reason, second.calls_in_window, second.time_since_last) == (
        BlockReason.COOLDOWN,
        1,
        0.5,
    )
    assert second.now == 0.5
    assert second.message


def test_registered_policy_is_used_when_check_gets_none(clock: ManualClock) -> None:
    engine = engine_at(clock)
    assert engine.policy_for(GATE) == Policy()
    engine.register(GATE, ONE)
    assert engine.policy_for(GATE) is ONE
    assert engine.check(GATE).allowed
    assert engine.check(GATE).reason is BlockReason.RATE_LIMIT


def test_enforce_raises_only_for_a_hard_block(clock: ManualClock) -> None:
    engine = engine_at(clock)
    for mode, raises in ((Mode.HARD, True), (Mode.SOFT, False)):
        policy = Policy(max_calls=0, mode=mode)
        decision = engine.check(GATE, policy)
        assert decision.blocked
        if raises:
            with pytest.raises(Blocked) as caught:
                engine.enforce(decision)
            assert caught.value.decision is decision
        else:
            engine.enforce(decision)
    engine.enforce(engine.check(GATE, Policy(max_calls=5)))  # an ALLOW never raises


# Decorators: the four combinations of guard/guard_result and HARD/SOFT (section 11)


@pytest.mark.parametrize("mode", [Mode.HARD, Mode.SOFT])
def test_guard_raises_blocked_in_both_modes_and_never_runs_the_function(
    clock: ManualClock, mode: Mode
) -> None:
    engine = engine_at(clock)
    calls: list[int] = []

    @engine.guard(GATE, Policy(max_calls=1, mode=mode))
    def action(x: int) -> int:
        calls.append(x)
        return x * 2

    assert action(3) == 6
    with pytest.raises(Blocked) as caught:
        action(4)
    assert caught.value.decision.reason is BlockReason.RATE_LIMIT
    assert calls == [3]


@pytest.mark.parametrize("mode", [Mode.HARD, Mode.SOFT])
def test_guard_result_never_raises_and_never_runs_the_function_on_block(
    clock: ManualClock, mode: Mode
) -> None:
    engine = engine_at(clock)
    calls: list[int] = []

    @engine.guard_result(GATE, Policy(max_calls=1, mode=mode))
    def action(x: int) -> int | None:
        calls.append(x)
        return None

    ran = action(1)
    assert ran.ok and ran.has_value and ran.value is None and ran.unwrap() is None
    blocked = action(2)
    assert not blocked.ok and not blocked.has_value and blocked.value is None
    assert blocked.unwrap_or(7) == 7
    with pytest.raises(ValueError, match="no value"):
        blocked.unwrap()
    assert calls == [1]


def test_each_decorated_function_keeps_its_own_policy(clock: ManualClock) -> None:
    engine = engine_at(clock)

    @engine.guard_result(GATE, Policy(max_calls=1))
    def strict() -> str:
        return "strict"

    @engine.guard_result(GATE, Policy(max_calls=3))
    def lenient() -> str:
        return "lenient"

    engine.register(GATE, Policy(max_calls=100))
    assert strict().ok  # 1 event
    assert lenient().ok  # 2 events
    assert not strict().ok  # its own max_calls=1 still applies
    assert lenient().ok  # 3 events
    assert not lenient().ok
    assert engine.check(GATE).allowed  # the registry's 100


def test_a_fail_open_allow_runs_the_function(clock: ManualClock) -> None:
    engine = engine_at(clock, FailingStore())

    @engine.guard(GATE, Policy(on_store_error=StoreErrorMode.FAIL_OPEN))
    def action() -> str:
        return "ran"

    assert action() == "ran"


# Store failures (ERR-1..3)


class FailingStore:
    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        raise ConnectionRefusedError("no server")

    def clear(self, gate: Gate) -> None:
        raise ConnectionRefusedError("no server")

    def clear_all(self) -> None:
        raise ConnectionRefusedError("no server")


class GarbageStore(FailingStore):
    def __init__(self, reply: Any) -> None:
        self.reply = reply

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        return self.reply


@pytest.mark.parametrize(
    ("on_store_error", "status"),
    [(StoreErrorMode.FAIL_CLOSED, Status.BLOCK), (StoreErrorMode.FAIL_OPEN, Status.ALLOW)],
)
def test_a_failing_store_is_a_decision_never_an_exception(
    clock: ManualClock, on_store_error: StoreErrorMode, status: Status
) -> None:
    decision = engine_at(clock, FailingStore()).check(GATE, Policy(on_store_error=on_store_error))
    assert decision.status is status
    assert decision.reason is BlockReason.STORE_ERROR
    assert (decision.calls_in_window, decision.time_since_last) == (0, None)
    assert "ConnectionRefusedError: no server" in (decision.message or "")


@pytest.mark.parametrize(
    "reply", [None, (1, True), ("1", True, None), (1, 1, None), (-1, True, None)]
)
def test_a_malformed_store_reply_is_a_store_error(clock: ManualClock, reply: Any) -> None:
    decision = engine_at(clock, GarbageStore(reply)).check(GATE, ONE)
    assert decision.reason is BlockReason.STORE_ERROR


def test_a_failing_clear_is_raised(clock: ManualClock) -> None:
    with pytest.raises(ConnectionRefusedError):
        engine_at(clock, FailingStore()).clear(GATE)


class UpstreamStyleStore:
    """A store written to upstream 0.3.0's protocol and nothing of ours: a dict of lists."""

    def __init__(self) -> None:
        self.events: dict[Gate, list[float]] = {}

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        kept = [
            t
            for t in self.events.get(gate, [])
            if policy.window is None or t >= now - policy.window
        ]
        age = now - max(kept) if kept else None
        if policy.cooldown > 0 and age is not None and age < policy.cooldown:
            return len(kept), False, age
        if len(kept) >= policy.max_calls:
            return len(kept), False, age
        self.events[gate] = [*kept, now]
        return len(kept) + 1, True, age

    def clear(self, gate: Gate) -> None:
        self.events.pop(gate, None)

    def clear_all(self) -> None:
        self.events.clear()


def test_a_store_written_for_upstream_works_unchanged(clock: ManualClock) -> None:
    engine = engine_at(clock, UpstreamStyleStore())
    policy = Policy(max_calls=2, window=10, cooldown=1)
    assert engine.check(GATE, policy).allowed
    clock.now = 0.5
    assert engine.check(GATE, policy).reason is BlockReason.COOLDOWN
    clock.now = 2
    assert engine.check(GATE, policy).calls_in_window == 2
    clock.now = 3
    assert engine.check(GATE, policy).reason is BlockReason.RATE_LIMIT


# Listeners


def test_listeners_hear_every_decision_and_never_break_a_check(clock: ManualClock) -> None:
    engine = engine_at(clock)
    heard: list[Decision] = []
    engine.on_decision(heard.append)
    engine.on_decision(lambda decision: 1 / 0)
    first = engine.check(GATE, ONE)
    second = engine.check(GATE, ONE)
    assert heard == [first, second]
    assert engine.listener_errors == 2


def test_a_shared_emitter_collects_from_several_engines(clock: ManualClock) -> None:
    emitter = Emitter()
    heard: list[Decision] = []
    emitter.add(heard.append)
    Engine(clock=clock, emitter=emitter).check(GATE, ONE)
    Engine(clock=clock, emitter=emitter).check(GATE, ONE)
    assert len(heard) == 2


# clear / clear_all (CLR-1, CLR-2)


def test_clear_forgets_one_gate_and_clear_all_every_gate(clock: ManualClock) -> None:
    engine = engine_at(clock)
    other = Gate("api", "search", "user:2")
    for gate in (GATE, other):
        engine.check(gate, ONE)
    engine.clear(GATE)
    assert engine.check(GATE, ONE).allowed
    assert engine.check(other, ONE).blocked
    engine.clear_all()
    assert engine.check(other, ONE).allowed


# Async


def test_sync_and_async_checks_share_one_state(clock: ManualClock) -> None:
    engine = engine_at(clock)
    assert engine.check(GATE, Policy(max_calls=2)).allowed
    decision = asyncio.run(engine.async_check(GATE, Policy(max_calls=2)))
    assert decision.calls_in_window == 2
    assert engine.check(GATE, Policy(max_calls=2)).blocked


def test_async_checks_through_a_sync_store_share_its_state(clock: ManualClock) -> None:
    engine = engine_at(clock, UpstreamStyleStore())
    engine.check(GATE, ONE)
    assert asyncio.run(engine.async_check(GATE, ONE)).reason is BlockReason.RATE_LIMIT


def test_async_decorators(clock: ManualClock) -> None:
    engine = Engine(clock=clock, async_store=AsyncMemoryStore())

    @engine.async_guard(GATE, ONE)
    async def guarded() -> str:
        return "ran"

    @engine.async_guard_result(Gate("api", "other"), ONE)
    async def wrapped() -> str:
        return "ran"

    async def scenario() -> None:
        assert await guarded() == "ran"
        with pytest.raises(Blocked):
            await guarded()
        assert (await wrapped()).unwrap() == "ran"
        assert not (await wrapped()).ok
        await engine.async_enforce(await engine.async_check(GATE, Policy(max_calls=5)))
        await engine.async_clear(GATE)
        await engine.async_clear_all()

    asyncio.run(scenario())


def test_async_store_failures_are_decisions(clock: ManualClock) -> None:
    class Down:
        async def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
            raise TimeoutError("slow")

        async def clear(self, gate: Gate) -> None: ...

        async def clear_all(self) -> None: ...

    engine = Engine(clock=clock, async_store=Down())
    assert asyncio.run(engine.async_check(GATE, ONE)).reason is BlockReason.STORE_ERROR


# The public surface


def test_public_names_are_upstreams_and_more() -> None:
    upstream = {
        "Gate",
        "Policy",
        "Decision",
        "Result",
        "MISSING",
        "Mode",
        "StoreErrorMode",
        "Status",
        "BlockReason",
        "Engine",
        "Blocked",
        "Emitter",
        "Store",
        "AsyncStore",
        "MemoryStore",
        "AsyncMemoryStore",
    }
    assert upstream <= set(actiongate.__all__)
    assert Result(Decision(Status.BLOCK, GATE, ONE, now=0.0))._value is MISSING


def test_importing_actiongate_needs_only_the_standard_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import actiongate; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jsonschema', 'hypothesis', 'redis', 'referencing', 'actiongate_conformance')); "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
