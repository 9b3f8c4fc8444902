"""Store mutants (targets ``py:tests.mutants.stores:NAME``): each a correct store but for one bug.

Each is ``tests.broken_stores.ListStore`` (plain and correct) behind a lock, so that it is atomic
like a real store and differs from a correct one in its bug alone; the bug is one override, and
the first line of the class docstring says what it is. ``ReadThenWrite`` has no lock: that is its
bug. ``StoreErrorRecorded`` is ``tests.broken_stores.RecordsThenFails`` over a MemoryStore.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import threading
import time

from actiongate import Gate, MemoryStore, Policy

from tests.broken_stores import ListStore, RecordsThenFails

__all__ = [
    "STORES",
    "AgeAfterReservation",
    "AppendOrder",
    "BlockForgetsPrune",
    "ClearByPrefix",
    "CountWithoutNewCall",
    "EmptyGateAllowed",
    "EqualTimesCollapse",
    "ExclusiveWindow",
    "InclusiveCooldown",
    "JoinedKey",
    "Mutant",
    "NullWindowExpires",
    "OffByOneRateLimit",
    "OldestAsLast",
    "PruneAfterCheck",
    "ReadThenWrite",
    "RecordsOnBlock",
    "RingBuffer32",
    "RingBuffer64",
    "RingBuffer1000",
    "RingBuffer10000",
    "RoundedToMicroseconds",
    "StoreErrorRecorded",
    "WindowEpsilon",
]

Reply = tuple[int, bool, "float | None"]
EPSILON = 1e-9  # "against float error"


class Mutant(ListStore):
    """ListStore behind one lock; ``decide`` is the check the lock makes atomic (RES-1)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Reply:
        with self.lock:
            return self.decide(gate, now, policy)

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        return super().check_and_reserve(gate, now, policy)

    def clear(self, gate: Gate) -> None:
        with self.lock:
            super().clear(gate)

    def clear_all(self) -> None:
        with self.lock:
            super().clear_all()

    def allow_anyway(self, gate: Gate, now: float, reply: Reply) -> Reply:
        """Turn a BLOCK into the ALLOW it would be had the rules let it through."""
        count, _, since = reply
        self.record(gate, self.gates[gate], now)
        return count + 1, True, since


class ExclusiveWindow(Mutant):
    """Retention boundary exclusive, ``t > T - window``: an event exactly window old is dropped."""

    def pruned(self, gate: Gate, now: float, policy: Policy) -> None:
        if policy.window is not None:
            cutoff = now - policy.window
            self.gates[gate][:] = [t for t in self.gates[gate] if t > cutoff]


class WindowEpsilon(Mutant):
    """Window widened by a 1e-9 s epsilon against float error: an event just outside it counts."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        if policy.window is not None:
            policy = dataclasses.replace(policy, window=policy.window + EPSILON)
        return super().decide(gate, now, policy)


class InclusiveCooldown(Mutant):
    """Cooldown inclusive, ``age <= cooldown`` blocks: an event exactly cooldown old blocks."""

    def cooling(self, gate: Gate, since: float | None, policy: Policy) -> bool:
        return policy.cooldown > 0 and since is not None and since <= policy.cooldown


class OldestAsLast(Mutant):
    """Events kept newest first, so the cooldown and ``time_since_last`` run from the oldest."""

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        bisect.insort(events, now, key=lambda t: -t)


class AppendOrder(Mutant):
    """Events appended in arrival order: after a backwards step, ``last`` is not the greatest."""

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        events.append(now)


class CountWithoutNewCall(Mutant):
    """``calls_in_window`` of an ALLOW leaves out the call being allowed."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        count, allowed, since = super().decide(gate, now, policy)
        return (count - 1 if allowed else count), allowed, since


class AgeAfterReservation(Mutant):
    """``time_since_last`` of an ALLOW measured after the reservation, from the event added."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        count, allowed, since = super().decide(gate, now, policy)
        if allowed:
            since = now - self.gates[gate][-1]
        return count, allowed, since


class PruneAfterCheck(Mutant):
    """Prunes after deciding, not before: expired events still count and cool down the check."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        reply = super().decide(gate, now, dataclasses.replace(policy, window=None))
        if policy.window is not None:
            cutoff = now - policy.window
            self.gates[gate][:] = [t for t in self.gates[gate] if t >= cutoff]
        return reply


class BlockForgetsPrune(Mutant):
    """A BLOCK prunes a copy and keeps the old events: its prune is not persisted."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        before = list(self.gates.get(gate, []))
        reply = super().decide(gate, now, policy)
        if not reply[1]:
            self.gates[gate] = before
        return reply


class RecordsOnBlock(Mutant):
    """Records an event on every check, BLOCKs included."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        reply = super().decide(gate, now, policy)
        if not reply[1]:
            self.record(gate, self.gates[gate], now)
        return reply


class OffByOneRateLimit(Mutant):
    """Rate limit blocks only when ``count > max_calls``: one call too many is allowed."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        count, allowed, since = reply = super().decide(gate, now, policy)
        if not allowed and count == policy.max_calls and not self.cooling(gate, since, policy):
            return self.allow_anyway(gate, now, reply)
        return reply


class EmptyGateAllowed(Mutant):
    """A gate with no retained events is allowed at once: ``max_calls`` 0 lets one call by."""

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        reply = super().decide(gate, now, policy)
        if not reply[1] and reply[0] == 0:
            return self.allow_anyway(gate, now, reply)
        return reply


class EqualTimesCollapse(Mutant):
    """Events are set members named by their time: two ALLOWs at one ``T`` record one event."""

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        if now not in events:
            super().record(gate, events, now)


class RoundedToMicroseconds(Mutant):
    """Event times stored rounded to microseconds, as a datetime column would."""

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        super().record(gate, events, round(now, 6))


class JoinedKey(Mutant):
    """Keyed by ``f"{ns}:{action}:{principal}"``: ``("a:b", "c", p)`` is ``("a", "b:c", p)``."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, Gate] = {}  # the joined string -> the gate first stored under it

    def key(self, gate: Gate) -> Gate:
        return self.keys.setdefault(f"{gate.namespace}:{gate.action}:{gate.principal}", gate)

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        return super().decide(self.key(gate), now, policy)

    def clear(self, gate: Gate) -> None:
        super().clear(self.key(gate))


class ClearByPrefix(Mutant):
    """``clear(G)`` deletes each gate whose joined key starts with G's, as ``SCAN MATCH key*``."""

    def clear(self, gate: Gate) -> None:
        prefix = f"{gate.namespace}:{gate.action}:{gate.principal}"
        with self.lock:
            for other in list(self.gates):
                if f"{other.namespace}:{other.action}:{other.principal}".startswith(prefix):
                    del self.gates[other]


class NullWindowExpires(Mutant):
    """Housekeeping expires a gate ``cooldown`` s after its newest event when its window is null."""

    def __init__(self) -> None:
        super().__init__()
        self.greatest = -math.inf  # the latest T of a check carried out (RET-4's T')
        self.ttls: dict[Gate, float | None] = {}

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        reply = super().decide(gate, now, policy)
        self.greatest = max(self.greatest, now)
        # The TTL of a key: the window, as RET-4 allows; with none, the cooldown (the bug).
        self.ttls[gate] = policy.window if policy.window is not None else policy.cooldown or None
        for other, events in self.gates.items():
            ttl = self.ttls.get(other)
            if ttl is not None and events and events[-1] < self.greatest - ttl:
                events.clear()
        return reply


class RingBuffer(Mutant):
    """Keeps only a gate's newest ``CAPACITY`` events, as a ring buffer or a capped list would."""

    CAPACITY = 0

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        super().record(gate, events, now)
        del events[: -self.CAPACITY]


def _ring_buffer(capacity: int) -> type[RingBuffer]:
    doc = f"Keeps only a gate's newest {capacity:,} events, as a ring buffer or capped list would."
    return type(f"RingBuffer{capacity}", (RingBuffer,), {"CAPACITY": capacity, "__doc__": doc})


RingBuffer32 = _ring_buffer(32)
RingBuffer64 = _ring_buffer(64)
RingBuffer1000 = _ring_buffer(1000)
RingBuffer10000 = _ring_buffer(10000)


class ReadThenWrite(ListStore):
    """No lock: reads a gate's events, decides, yields, then writes a new list back."""

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        updated = sorted([*events, now])
        time.sleep(0)  # another thread reads the old events here, and its write is lost
        self.gates[gate] = updated


class StoreErrorRecorded(RecordsThenFails):
    """Commits a check, then reports a store failure: the failed check's event is recorded."""

    def __init__(self) -> None:
        super().__init__(MemoryStore())


# The zoo's order: by the clause each breaks, as SEMANTICS.md orders them.
STORES: tuple[type, ...] = (
    ExclusiveWindow,
    WindowEpsilon,
    PruneAfterCheck,
    BlockForgetsPrune,
    NullWindowExpires,
    InclusiveCooldown,
    OldestAsLast,
    AppendOrder,
    OffByOneRateLimit,
    EmptyGateAllowed,
    RecordsOnBlock,
    EqualTimesCollapse,
    RingBuffer32,
    RingBuffer64,
    RingBuffer1000,
    RingBuffer10000,
    ReadThenWrite,
    CountWithoutNewCall,
    AgeAfterReservation,
    RoundedToMicroseconds,
    JoinedKey,
    ClearByPrefix,
    StoreErrorRecorded,
)
