"""The decision procedure of SEMANTICS.md, and nothing else.

Theory of operation
-------------------
A gate's state is a multiset of event times (SEMANTICS.md section 1). A check of a gate at time
``now`` under a policy is a transition ``(events, now, policy) -> (reply, events')``:

1. prune: keep the events ``t >= now - window`` and discard the rest for good (RET-1, RET-2);
2. cooldown: block if ``cooldown > 0`` and ``now - last < cooldown`` (CD-1), checked before
   the rate limit so that COOLDOWN wins when both would block (ORD-1);
3. rate limit: block if the retained count is ``>= max_calls`` (RATE-1);
4. otherwise allow and record exactly one event at ``now`` (RES-1).

``EventLog.check`` is that transition. It mutates the log in place instead of returning a copy,
so a check costs O(log n) in the retained events rather than O(n). It has no clock, no lock and
no I/O: stores wrap it in whatever makes it atomic, and the Redis Lua script is a port of it.

The reply is the upstream store protocol's ``(calls_in_window, allowed, time_since_last)``.
``decision_from_reply`` turns a reply from any store into a Decision: it re-derives the block
reason with the same ``cooldown_blocks`` predicate the transition used, which is exact because
the cooldown is checked first (a block whose age satisfies it was a cooldown block).

All arithmetic is Python float, i.e. binary64 (TIME-2); nothing rounds or adds an epsilon.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from ._errors import StoreError
from ._types import BlockReason, Decision, Gate, Policy, Status, StoreErrorMode, new_decision

__all__ = ["EventLog", "Reply", "cooldown_blocks", "decision_from_reply", "store_error_decision"]

Reply = tuple[int, bool, "float | None"]


def cooldown_blocks(time_since_last: float | None, cooldown: float) -> bool:
    """CD-1: blocks iff cooldown > 0, an event is retained, and its age is < cooldown.

    A negative age (a backwards clock, CLK-1) is less than any positive cooldown.
    """
    return cooldown > 0 and time_since_last is not None and time_since_last < cooldown


class EventLog:
    """The events of one gate, sorted ascending; ``_times[:_head]`` are discarded already."""

    __slots__ = ("_head", "_times")

    def __init__(self) -> None:
        self._times: list[float] = []
        self._head = 0

    def __len__(self) -> int:
        return len(self._times) - self._head

    @property
    def last(self) -> float | None:
        """The greatest event, or None when there is none."""
        return self._times[-1] if len(self._times) > self._head else None

    def check(self, now: float, policy: Policy) -> Reply:
        """One check: prune, cooldown, rate limit, reserve. Returns the reply."""
        times = self._times
        window = policy.window
        # RET-1: an event is retained iff t >= now - window; RET-2: the rest go for good,
        # on an ALLOW and a BLOCK alike. A null window retains everything (RET-3).
        if window is not None and len(times) > self._head:
            cutoff = now - window
            if times[self._head] < cutoff:
                self._discard_before(bisect_left(times, cutoff, self._head))
        retained = len(times) - self._head
        # DEC-3: the age of the greatest retained event, before the reservation; negative
        # when the clock stepped back past it (CLK-1).
        time_since_last = now - times[-1] if retained else None
        # ORD-1: cooldown first (CD-1), then the rate limit (RATE-1). DEC-2: a BLOCK reports
        # the retained count.
        if cooldown_blocks(time_since_last, policy.cooldown) or retained >= policy.max_calls:
            return retained, False, time_since_last
        # RES-1: exactly one event at now. After a backwards step it goes in order, so that
        # the list stays sorted and "last" stays the greatest event (CLK-1 item 4).
        if retained == 0 or now >= times[-1]:
            times.append(now)
        else:
            insort(times, now, self._head)
        # DEC-2: an ALLOW counts the call it allows.
        return retained + 1, True, time_since_last

    def expired(self, now: float, window: float) -> bool:
        """RET-4: True iff a check at ``now`` with ``window`` would discard every event."""
        return len(self._times) == self._head or self._times[-1] < now - window

    def _discard_before(self, index: int) -> None:
        # Advance the head; compact once at least half the list is discarded, so each
        # event is moved at most once on average (amortised O(1) per check).
        times = self._times
        if index == len(times):
            times.clear()
            self._head = 0
        elif index > len(times) // 2:
            del times[:index]
            self._head = 0
        else:
            self._head = index


def decision_from_reply(gate: Gate, policy: Policy, now: float, reply: object) -> Decision:
    """The Decision for a store's reply (DEC-1 to DEC-4); a malformed reply is a StoreError."""
    calls_in_window, allowed, time_since_last = _checked_reply(reply)
    if allowed:
        return new_decision(
            Status.ALLOW, gate, policy, None, None, calls_in_window, time_since_last, now
        )
    if cooldown_blocks(time_since_last, policy.cooldown):
        reason = BlockReason.COOLDOWN
        message = f"cooldown: last call {time_since_last!r} s ago, cooldown {policy.cooldown!r} s"
    else:
        reason = BlockReason.RATE_LIMIT
        message = f"rate limit: {calls_in_window} calls in window, max_calls {policy.max_calls}"
    return new_decision(
        Status.BLOCK, gate, policy, reason, message, calls_in_window, time_since_last, now
    )


def _checked_reply(reply: object) -> tuple[int, bool, float | None]:
    # The exact types come first: that is what every well-behaved store returns, and the
    # check costs a few type comparisons. Anything else is checked field by field.
    if type(reply) is tuple and len(reply) == 3:
        calls_in_window, allowed, time_since_last = reply
        if (
            type(calls_in_window) is int
            and calls_in_window >= 0
            and type(allowed) is bool
            and (time_since_last is None or type(time_since_last) is float)
        ):
            return calls_in_window, allowed, time_since_last
    if isinstance(reply, (tuple, list)) and len(reply) == 3:
        calls_in_window, allowed, time_since_last = reply
        if (
            isinstance(calls_in_window, int)
            and not isinstance(calls_in_window, bool)
            and calls_in_window >= 0
            and isinstance(allowed, bool)
            and (
                time_since_last is None
                or (
                    isinstance(time_since_last, (int, float))
                    and not isinstance(time_since_last, bool)
                )
            )
        ):
            age = None if time_since_last is None else float(time_since_last)
            return int(calls_in_window), allowed, age
    raise StoreError(f"store returned {reply!r}, not (calls_in_window, allowed, time_since_last)")


def store_error_decision(gate: Gate, policy: Policy, now: float, error: BaseException) -> Decision:
    """ERR-1: BLOCK (FAIL_CLOSED) or ALLOW (FAIL_OPEN) with STORE_ERROR, no count, no age."""
    fail_open = policy.on_store_error is StoreErrorMode.FAIL_OPEN
    return new_decision(
        Status.ALLOW if fail_open else Status.BLOCK,
        gate,
        policy,
        BlockReason.STORE_ERROR,
        f"store error ({'failing open' if fail_open else 'failing closed'}): "
        f"{type(error).__name__}: {error}",
        0,
        None,
        now,
    )
