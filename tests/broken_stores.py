"""Stores for testing the suite (targets ``py:tests.broken_stores:NAME``).

``ListStore`` is correct and plain; ``EagerHousekeeping`` is correct too, dropping every event the
moment RET-4 allows; ``YieldingStore`` is a correct store whose checks overlap under threads.
``ReadThenWriteStore`` (not atomic) and ``RecordsThenFails`` (records a failed check) pass every
vector and are caught by the atomicity and fault checks. The others are broken in ways every
hand-written vector misses, and only a longer sequence shows: each changes one thing, says what.
"""

from __future__ import annotations

import bisect
import math
import time
from typing import Any

from actiongate import Gate, MemoryStore, Policy
from actiongate_conformance.checkers.linearizability import step
from actiongate_conformance.targets.faulty_store import FaultyStore


class ListStore:
    """A correct store: each gate's events in a sorted list; no housekeeping."""

    def __init__(self) -> None:
        self.gates: dict[Gate, list[float]] = {}

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        events = self.gates.setdefault(gate, [])
        if policy.window is not None:
            events[:] = [t for t in events if t >= now - policy.window]  # RET-1, RET-2
        self.pruned(gate, now, policy)
        count, last = len(events), (events[-1] if events else None)
        since = None if last is None else now - last
        if self.cooling(gate, since, policy) or count >= policy.max_calls:
            return count, False, since
        self.record(gate, events, now)
        self.recorded(gate, now, policy)
        return count + 1, True, since

    def cooling(self, gate: Gate, since: float | None, policy: Policy) -> bool:
        return policy.cooldown > 0 and since is not None and since < policy.cooldown

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        bisect.insort(events, now)

    def pruned(self, gate: Gate, now: float, policy: Policy) -> None:
        """After a check's pruning."""

    def recorded(self, gate: Gate, now: float, policy: Policy) -> None:
        """After a check was carried out."""

    def clear(self, gate: Gate) -> None:
        self.gates.pop(gate, None)

    def clear_all(self) -> None:
        self.gates.clear()


class EagerHousekeeping(ListStore):
    """Correct: after every check, drops each event t < T' - window (RET-4), where T' is the
    greatest time seen and window that of the gate's latest check."""

    def __init__(self) -> None:
        super().__init__()
        self.greatest = -math.inf
        self.windows: dict[Gate, float | None] = {}

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        reply = super().check_and_reserve(gate, now, policy)
        self.greatest = max(self.greatest, now)
        self.windows[gate] = policy.window
        for other, events in self.gates.items():
            window = self.windows[other]
            if window is not None:
                events[:] = [t for t in events if not t < self.greatest - window]
        return reply


class ClearThenBackwards(ListStore):
    """A gate re-created by clear appends its events, assuming time only moves on for a fresh
    gate: after a backwards step its list is out of order, and ``last`` is the wrong event."""

    def __init__(self) -> None:
        super().__init__()
        self.fresh: set[Gate] = set()

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        if gate in self.fresh:
            events.append(now)
        else:
            super().record(gate, events, now)

    def clear(self, gate: Gate) -> None:
        super().clear(gate)
        self.fresh.add(gate)


class SixthEqualTimestamp(ListStore):
    """Events are members keyed by (time, sequence mod 5), as in a sorted set: a sixth event at
    one time overwrites the first, so bursts of more than five count five."""

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        if events.count(now) < 5:
            super().record(gate, events, now)


class ClearForgetsCooldowns(ListStore):
    """The cooldown reads a cache of each gate's last event, and clear(G) empties the whole
    cache, not G's entry: every other gate forgets its cooldown until its next ALLOW."""

    def __init__(self) -> None:
        super().__init__()
        self.lasts: dict[Gate, float] = {}

    def cooling(self, gate: Gate, since: float | None, policy: Policy) -> bool:
        return gate in self.lasts and super().cooling(gate, since, policy)

    def pruned(self, gate: Gate, now: float, policy: Policy) -> None:
        if not self.gates[gate]:
            self.lasts.pop(gate, None)

    def recorded(self, gate: Gate, now: float, policy: Policy) -> None:
        self.lasts[gate] = self.gates[gate][-1]

    def clear(self, gate: Gate) -> None:
        super().clear(gate)
        self.lasts.clear()


class NineGatesEvictOldest(ListStore):
    """A bounded cache: holding eight gates, a ninth evicts the gate checked longest ago,
    with its events."""

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        events = self.gates.pop(gate, [])
        if len(self.gates) >= 8:
            del self.gates[next(iter(self.gates))]
        self.gates[gate] = events  # most recently checked last
        return super().check_and_reserve(gate, now, policy)


class HousekeepingByFirstWindow(ListStore):
    """Housekeeping drops a gate once its newest event is older than T' - window, as the
    reference does, but with the window of the gate's first check, not its latest (RET-4): a
    gate whose window widened loses events that a check still retains."""

    def __init__(self) -> None:
        super().__init__()
        self.greatest = -math.inf
        self.windows: dict[Gate, float | None] = {}

    def recorded(self, gate: Gate, now: float, policy: Policy) -> None:
        self.windows.setdefault(gate, policy.window)

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        reply = super().check_and_reserve(gate, now, policy)
        self.greatest = max(self.greatest, now)
        for other, events in list(self.gates.items()):
            window = self.windows.get(other)
            if window is not None and events and events[-1] < self.greatest - window:
                del self.gates[other]
                del self.windows[other]
        return reply

    def clear(self, gate: Gate) -> None:
        super().clear(gate)
        self.windows.pop(gate, None)

    def clear_all(self) -> None:
        super().clear_all()
        self.windows.clear()


class YieldingStore:
    """A correct store with wide calls: yields the GIL around each atomic MemoryStore check."""

    def __init__(self) -> None:
        self.store = MemoryStore()

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        time.sleep(0)
        reply = self.store.check_and_reserve(gate, now, policy)
        time.sleep(0)
        return reply

    def clear(self, gate: Gate) -> None:
        self.store.clear(gate)

    def clear_all(self) -> None:
        self.store.clear_all()


class ReadThenWriteStore:
    """Not atomic: reads a gate's events, decides, yields the GIL, then writes them back."""

    def __init__(self) -> None:
        self.events: dict[Gate, tuple[float, ...]] = {}

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        events, result = step(self.events.get(gate, ()), now, policy.to_dict())
        time.sleep(0)  # another thread reads the same state here
        self.events[gate] = events
        return result.calls_in_window, result.status == "ALLOW", result.time_since_last

    def clear(self, gate: Gate) -> None:
        self.events.pop(gate, None)

    def clear_all(self) -> None:
        self.events.clear()


class RecordsThenFails(FaultyStore):
    """Breaks ERR-2: when failing, it commits the check and only then raises."""

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        reply = self.store.check_and_reserve(gate, now, policy)
        self._guard("check_and_reserve")
        return reply


def records_then_fails() -> RecordsThenFails:
    """RecordsThenFails over a MemoryStore, as a ``py:`` target's factory."""
    return RecordsThenFails(MemoryStore())
