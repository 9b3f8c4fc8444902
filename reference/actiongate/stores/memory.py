"""MemoryStore: the state of every gate in one process, one EventLog per gate.

One lock guards the whole store. A check holds it for about a microsecond, and under the GIL
per-gate locks would buy no parallelism while costing a lock object per gate that must itself be
freed; one lock makes every check-and-reserve atomic (RES-1) with nothing to leak.

Memory follows live state. A check that leaves a gate with no events drops the gate. Gates that
go idle are dropped by housekeeping (RET-4): each gate with a window has one entry in a heap
ordered by the time its newest event leaves that window, and every check pops the entries that
are due at its ``now`` and drops the gates whose events a check at that time would all discard.
A gate with a null window is never dropped (RET-3).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading

from .._decide import EventLog, Reply
from .._types import Gate, Policy

__all__ = ["AsyncMemoryStore", "MemoryStore"]


class _GateEntry(EventLog):
    """A gate's events plus the housekeeping facts the store keeps about it."""

    __slots__ = ("token", "window")

    def __init__(self) -> None:
        super().__init__()
        self.window: float | None = None  # the window of the gate's latest check (RET-4)
        self.token = -1  # the sequence number of its live heap entry; -1 when none


class MemoryStore:
    """Thread-safe, atomic per check, amortised O(1) per check in the retained events."""

    __slots__ = ("_expiry", "_gates", "_high_water", "_lock", "_sequence")

    def __init__(self) -> None:
        self._gates: dict[Gate, _GateEntry] = {}
        self._lock = threading.Lock()
        self._expiry: list[tuple[float, int, Gate]] = []  # (due, sequence, gate), a heap
        self._sequence = itertools.count()
        self._high_water = 0  # the most gates held since the dict was last rebuilt

    def __len__(self) -> int:
        """The number of gates holding events."""
        return len(self._gates)

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Reply:
        with self._lock:
            entry = self._gates.get(gate)
            known = entry is not None
            if entry is None:
                entry = _GateEntry()
            reply = entry.check(now, policy)
            if reply[0]:  # calls_in_window: the events the gate holds after the check
                if not known:
                    self._gates[gate] = entry
                    self._high_water = max(self._high_water, len(self._gates))
                entry.window = policy.window
                if entry.token < 0 and policy.window is not None:
                    self._schedule(gate, entry, now)
            elif known:
                del self._gates[gate]
            if self._expiry and self._expiry[0][0] < now:
                self._sweep(now)
            return reply

    def clear(self, gate: Gate) -> None:
        with self._lock:
            self._gates.pop(gate, None)  # its heap entry, if any, is now stale and skipped

    def clear_all(self) -> None:
        with self._lock:
            self._gates = {}
            self._expiry = []
            self._high_water = 0

    def _schedule(self, gate: Gate, entry: _GateEntry, now: float) -> None:
        window = entry.window
        last = entry.last
        if window is None or last is None:
            entry.token = -1
            return
        # Due when the newest event leaves the window. Never due at or before ``now``, so an
        # entry whose rounding disagrees with the exact test in _sweep cannot spin.
        due = max(last + window, math.nextafter(now, math.inf))
        entry.token = next(self._sequence)
        heapq.heappush(self._expiry, (due, entry.token, gate))

    def _sweep(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] < now:
            _, token, gate = heapq.heappop(expiry)
            entry = self._gates.get(gate)
            if entry is None or entry.token != token:
                continue  # cleared or rescheduled since
            if entry.window is not None and entry.expired(now, entry.window):
                del self._gates[gate]
            else:
                self._schedule(gate, entry, now)
        # A dict never shrinks as keys go; rebuild it once it is mostly empty, so memory
        # follows live gates (amortised O(1): the copy is paid for by the deletions).
        if self._high_water > 1024 and len(self._gates) < self._high_water // 4:
            self._gates = dict(self._gates)
            self._high_water = len(self._gates)


class AsyncMemoryStore:
    """The async face of a MemoryStore; both faces of one store share its state.

    A memory check never waits on I/O, so the coroutines call the store directly.
    """

    __slots__ = ("store",)

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store if store is not None else MemoryStore()

    async def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Reply:
        return self.store.check_and_reserve(gate, now, policy)

    async def clear(self, gate: Gate) -> None:
        self.store.clear(gate)

    async def clear_all(self) -> None:
        self.store.clear_all()
