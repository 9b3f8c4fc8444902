"""Unseen store mutants (targets ``py:tests.mutants.unseen:NAME``), written after the suite.

The mutants of ``tests/mutants/stores.py`` were written alongside the suite's strategies; these
were written from SEMANTICS.md and the store contract alone, without reading the strategies or
the vectors and without running the suite on them, to measure how the suite does on bugs its
authors did not design a test for. Each is a shortcut a store vendor or a porter would take:
a correct store (the lock-guarded ``Mutant`` of stores.py, or a wrapper of one) but for one bug,
the first line of its docstring, and atomic like a real store.
``StaleReplyOnError`` is a ``FaultyStore`` around such a store, as ``StoreErrorRecorded`` is:
its bug is in what it does when the store fails.
"""

from __future__ import annotations

import bisect
import math
import struct
import threading

from actiongate import Gate, Policy
from actiongate_conformance.targets.faulty_store import FaultyStore, InjectedFault

from .stores import Mutant, Reply

__all__ = [
    "UNSEEN_STORES",
    "BisectInsertionOrder",
    "ClearCacheOnly",
    "CooldownDeadlineAtAllow",
    "CooldownPerAction",
    "EpochMillis",
    "ExpiringCounter",
    "FalsyZeroLast",
    "Float32Column",
    "LowercasedKey",
    "LruGates256",
    "StaleReplyOnError",
    "TrimEvery100Checks",
    "TruncatedFields255",
    "TtlExactlyWindow",
]


def _pruned(events: list[float], now: float, policy: Policy) -> None:
    """RET-1, RET-2, as ListStore prunes: keep ``t >= now - window``, for good."""
    if policy.window is not None:
        cutoff = now - policy.window
        events[:] = [t for t in events if t >= cutoff]


# Time: TIME-2.


class EpochMillis(Mutant):
    """Times kept as integer milliseconds, ``int(T * 1000)``, and the arithmetic done in ms.

    As a BIGINT column or a Redis score of ``int(time.time() * 1000)`` keeps them: the prune
    bound is ``now_ms - window_ms`` and an age is ``(now_ms - last_ms) / 1000``.
    """

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        events = self.gates.setdefault(gate, [])
        now_ms = int(now * 1000)
        if policy.window is not None:
            # (A window longer than the range of T retains everything: capped, not to overflow.)
            cutoff = now_ms - int(min(policy.window, 2.0**54) * 1000)
            events[:] = [t for t in events if t >= cutoff]
        count = len(events)
        since = None if not events else (now_ms - events[-1]) / 1000
        if self.cooling(gate, since, policy) or count >= policy.max_calls:
            return count, False, since
        bisect.insort(events, now_ms)
        return count + 1, True, since


class Float32Column(Mutant):
    """Event times stored as float32, as a ``REAL`` column or a numpy ``float32`` array is."""

    def record(self, gate: Gate, events: list[float], now: float) -> None:
        super().record(gate, events, struct.unpack("f", struct.pack("f", now))[0])


# Retention: RET-1 to RET-4.


class ExpiringCounter(Mutant):
    """A count and the newest time, not events: ``INCR`` + ``EXPIRE window``, reset when idle.

    The approximate decay of a counter key whose expiry each call renews: the count drops to 0
    at once when the newest call is more than window old, never one call at a time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counters: dict[Gate, tuple[int, float]] = {}  # gate -> (count, newest)

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        count, newest = self.counters.get(gate, (0, math.nan))
        if count and policy.window is not None and newest < now - policy.window:
            del self.counters[gate]  # the key expired: the whole count goes
            count = 0
        since = now - newest if count else None
        if self.cooling(gate, since, policy) or count >= policy.max_calls:
            return count, False, since
        self.counters[gate] = (count + 1, max(newest, now) if count else now)
        return count + 1, True, since

    def clear(self, gate: Gate) -> None:
        with self.lock:
            self.counters.pop(gate, None)

    def clear_all(self) -> None:
        with self.lock:
            self.counters.clear()


class TrimEvery100Checks(Mutant):
    """Counts by range (``ZCOUNT``) but trims expired events only on every 100th check.

    The trim (``ZREMRANGEBYSCORE``) is a write, so it is saved for one check in 100; between
    trims the expired events are only skipped by the count, not discarded.
    """

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        events = self.gates.setdefault(gate, [])
        self.checks += 1
        if self.checks % 100 == 0:
            _pruned(events, now, policy)
        if policy.window is None:
            retained = events
        else:
            retained = events[bisect.bisect_left(events, now - policy.window) :]
        count = len(retained)
        since = now - retained[-1] if retained else None
        if self.cooling(gate, since, policy) or count >= policy.max_calls:
            return count, False, since
        self.record(gate, events, now)
        return count + 1, True, since


class TtlExactlyWindow(Mutant):
    """A gate's key expires at ``newest + window``: at that ``T`` its events are already gone.

    ``PEXPIREAT key (newest + window)``, and a key is expired once its deadline has come: an
    event exactly window old, which a check retains, has expired with its key.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = -math.inf  # the server's clock: the latest T seen, it never steps back
        self.deadlines: dict[Gate, float] = {}

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        self.clock = max(self.clock, now)
        for other, deadline in list(self.deadlines.items()):
            if deadline <= self.clock:  # a key is expired once its deadline has come
                del self.deadlines[other]
                self.gates.pop(other, None)
        reply = super().decide(gate, now, policy)
        events = self.gates.get(gate)
        if events and policy.window is not None:
            self.deadlines[gate] = events[-1] + policy.window
        else:
            self.deadlines.pop(gate, None)  # no events, or a null window: no expiry
        return reply

    def clear(self, gate: Gate) -> None:
        with self.lock:
            self.gates.pop(gate, None)
            self.deadlines.pop(gate, None)

    def clear_all(self) -> None:
        with self.lock:
            self.gates.clear()
            self.deadlines.clear()


class BisectInsertionOrder(Mutant):
    """Events kept in arrival order, trimmed by a binary search that takes it for time order.

    Rows with an auto-increment id: ``DELETE WHERE id < X``, X found by bisection as the first
    row whose time is retained; the count and the newest time are read by time, over what the
    trim left. After a backwards step of the clock the trim cuts in the wrong place.
    """

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        events = self.gates.setdefault(gate, [])
        retained = events
        if policy.window is not None:
            cutoff = now - policy.window
            del events[: bisect.bisect_left(events, cutoff)]
            retained = [t for t in events if t >= cutoff]
        count = len(retained)
        since = now - max(retained) if retained else None
        if self.cooling(gate, since, policy) or count >= policy.max_calls:
            return count, False, since
        events.append(now)
        return count + 1, True, since


class LruGates256(Mutant):
    """A bounded store: an LRU of 256 gates, the least recently checked evicted with its events."""

    CAPACITY = 256

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        events = self.gates.pop(gate, None)
        if events is None and len(self.gates) >= self.CAPACITY:
            del self.gates[next(iter(self.gates))]  # the least recently checked
        self.gates[gate] = [] if events is None else events  # most recently checked last
        return super().decide(gate, now, policy)


# Identity: ID-1, ID-2.


class _KeyedBy(Mutant):
    """State keyed by ``key(gate)``, a gate of its own, instead of by the gate."""

    def key(self, gate: Gate) -> Gate:
        return gate

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        return super().decide(self.key(gate), now, policy)

    def clear(self, gate: Gate) -> None:
        super().clear(self.key(gate))


class TruncatedFields255(_KeyedBy):
    """Each gate field kept in a ``VARCHAR(255)`` column that silently truncates a longer one.

    As MySQL does outside strict mode: gates differing only after 255 characters of a field
    share their state.
    """

    def key(self, gate: Gate) -> Gate:
        return Gate(gate.namespace[:255], gate.action[:255], gate.principal[:255])


class LowercasedKey(_KeyedBy):
    """Gate fields lowercased into the key: ``("a", "Send", "Bob")`` is ``("a", "send", "bob")``."""

    def key(self, gate: Gate) -> Gate:
        return Gate(gate.namespace.lower(), gate.action.lower(), gate.principal.lower())


class CooldownPerAction(Mutant):
    """The last call cached per ``(namespace, action)``: a principal's call cools down the rest.

    The events, and so the rate limit, are per gate; the "last call" key that the cooldown
    and ``time_since_last`` read is per namespace and action, not per gate. It is pruned as an
    event is, and cleared with any gate of its action.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lasts: dict[tuple[str, str], float] = {}

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        events = self.gates.setdefault(gate, [])
        _pruned(events, now, policy)
        action = (gate.namespace, gate.action)
        last = self.lasts.get(action)
        if last is not None and policy.window is not None and last < now - policy.window:
            del self.lasts[action]
            last = None
        count = len(events)
        since = None if last is None else now - last
        if self.cooling(gate, since, policy) or count >= policy.max_calls:
            return count, False, since
        self.record(gate, events, now)
        self.lasts[action] = now if last is None else max(last, now)
        return count + 1, True, since

    def clear(self, gate: Gate) -> None:
        with self.lock:
            self.gates.pop(gate, None)
            self.lasts.pop((gate.namespace, gate.action), None)

    def clear_all(self) -> None:
        with self.lock:
            self.gates.clear()
            self.lasts.clear()


# Cooldown: CD-1, POL-6, DEC-3.


class CooldownDeadlineAtAllow(Mutant):
    """The cooldown is a deadline set at each ALLOW, ``T + cooldown``: a new cooldown is ignored.

    A check with a cooldown blocks while ``T < until`` (and an event is retained), ``until``
    written by the latest ALLOW under that ALLOW's policy, not the checking one's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = math.nan
        self.until: dict[Gate, float] = {}

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        self.now = now
        return super().decide(gate, now, policy)

    def cooling(self, gate: Gate, since: float | None, policy: Policy) -> bool:
        until = self.until.get(gate, -math.inf)
        return policy.cooldown > 0 and since is not None and self.now < until

    def recorded(self, gate: Gate, now: float, policy: Policy) -> None:
        self.until[gate] = now + policy.cooldown

    def clear(self, gate: Gate) -> None:
        with self.lock:
            self.gates.pop(gate, None)
            self.until.pop(gate, None)

    def clear_all(self) -> None:
        with self.lock:
            self.gates.clear()
            self.until.clear()


class FalsyZeroLast(Mutant):
    """``time_since_last = now - last if last else None``: a last event at time 0 is no event.

    It still counts toward the rate limit, but has no age and cools nothing down.
    """

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        events = self.gates.setdefault(gate, [])
        _pruned(events, now, policy)
        count = len(events)
        last = events[-1] if events else None
        since = now - last if last else None
        if self.cooling(gate, since, policy) or count >= policy.max_calls:
            return count, False, since
        self.record(gate, events, now)
        return count + 1, True, since


# Clearing and failure: CLR-1, ERR-1, ERR-3.


class ClearCacheOnly(Mutant):
    """``clear(G)`` evicts G from the cache, not from the store behind it, which reloads it.

    ``self.gates`` is a read-through cache, written through to ``self.backend`` after every
    check; ``clear`` is the inherited one, which knows only the cache. ``clear_all`` flushes
    both.
    """

    def __init__(self) -> None:
        super().__init__()
        self.backend: dict[Gate, list[float]] = {}

    def decide(self, gate: Gate, now: float, policy: Policy) -> Reply:
        if gate not in self.gates and gate in self.backend:
            self.gates[gate] = list(self.backend[gate])  # a cache miss: load
        reply = super().decide(gate, now, policy)
        self.backend[gate] = list(self.gates[gate])  # write through
        return reply

    def clear_all(self) -> None:
        with self.lock:
            self.gates.clear()
            self.backend.clear()


class StaleReplyOnError(FaultyStore):
    """A store error is swallowed and the gate's last good reply served instead, "stale".

    With no reply of that gate to serve, the error is raised as it should be. Faults are
    injected as into StoreErrorRecorded: this is a FaultyStore, its ``failing`` the backend's.
    """

    def __init__(self) -> None:
        super().__init__(Mutant())
        self.lock = threading.Lock()
        self.replies: dict[Gate, Reply] = {}

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Reply:
        with self.lock:
            try:
                self._guard("check_and_reserve")
            except InjectedFault:
                if gate in self.replies:
                    return self.replies[gate]
                raise
            reply: Reply = self.store.check_and_reserve(gate, now, policy)
            self.replies[gate] = reply
            return reply

    def clear(self, gate: Gate) -> None:
        with self.lock:
            super().clear(gate)
            self.replies.pop(gate, None)

    def clear_all(self) -> None:
        with self.lock:
            super().clear_all()
            self.replies.clear()


# The order: by the clause each breaks, as SEMANTICS.md orders them.
UNSEEN_STORES: tuple[type, ...] = (
    EpochMillis,
    Float32Column,
    TruncatedFields255,
    LowercasedKey,
    CooldownPerAction,
    ExpiringCounter,
    TrimEvery100Checks,
    BisectInsertionOrder,
    TtlExactlyWindow,
    LruGates256,
    CooldownDeadlineAtAllow,
    FalsyZeroLast,
    StaleReplyOnError,
    ClearCacheOnly,
)
