"""The RedisStore against the MemoryStore, step by step: one state machine, both backends.

Gates, times and windows come from small pools so that they recur: separator lookalikes,
binary64 boundary values, backwards steps, 2**53. After every check both replies must be equal
in binary64 (TIME-2 compares a zero age without its sign; everything else is exact).
"""

from __future__ import annotations

from actiongate import Gate, MemoryStore, Policy
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from .redis_servers import Backend

GATES = [
    Gate("a:b", "c", "p"),
    Gate("a", "b:c", "p"),
    Gate("a", "b", ""),
    Gate("a", "", "b"),
    Gate("{x}", "\x00", "é"),
]
EXTREMES = [1_700_000_000.1234567, 2.0**53, -(2.0**53)]
TIMES = (
    st.sampled_from(
        [0.0, -0.0, 0.1, 0.3, 0.4, 0.30000000000000004, 1.0, 5.0, 10.0, 10.5, 1e9, -5.0, *EXTREMES]
    )
    | st.integers(0, 12).map(float)
    | st.floats(-20, 20)
)
POLICIES = st.builds(
    Policy,
    max_calls=st.integers(0, 4),
    window=st.none()
    | st.sampled_from([0.1, 0.2, 1.0, 2.0, 5.0, 10.0, 1e300])
    | st.floats(1e-3, 30),
    cooldown=st.sampled_from([0.0, 0.5, 5.0, 60.0]) | st.floats(0, 10),
)


def same(one: tuple[object, ...], other: tuple[object, ...]) -> bool:
    """Equal field by field, and of the same types (an int is not a float, nor a bool)."""
    return all(type(a) is type(b) and a == b for a, b in zip(one, other, strict=True))


def test_redis_store_matches_the_memory_store_step_by_step(redis_topology: Backend) -> None:
    store = redis_topology.store()

    class SideBySide(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            store.clear_all()
            # One MemoryStore per gate: its housekeeping of other gates (RET-4) is observable
            # after a backwards step, and a Redis TTL counts real seconds instead.
            self.memory = {gate: MemoryStore() for gate in GATES}

        @rule(gate=st.sampled_from(GATES), now=TIMES, policy=POLICIES)
        def check(self, gate: Gate, now: float, policy: Policy) -> None:
            expected = self.memory[gate].check_and_reserve(gate, now, policy)
            actual = store.check_and_reserve(gate, now, policy)
            assert same(actual, expected), (actual, expected)

        @rule(gate=st.sampled_from(GATES))
        def clear(self, gate: Gate) -> None:
            store.clear(gate)
            self.memory[gate].clear(gate)

    try:
        run_state_machine_as_test(
            SideBySide,
            settings=settings(max_examples=40, stateful_step_count=30, deadline=None),
        )
    finally:
        store.clear_all()
        store.close()
