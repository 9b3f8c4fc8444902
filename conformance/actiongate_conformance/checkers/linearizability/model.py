"""The sequential specification the checker replays: SEMANTICS.md section 5 with RET-4."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from .. import oracle
from .history import DecisionFields, Operation

__all__ = ["Model", "RateLimitModel", "decide", "limits", "prune", "step"]


class Model(Protocol):
    """A sequential specification: states must be hashable; outputs are compared with ``==``.

    Optional, to keep indeterminate operations cheap: ``floor(op) -> float``, before which no
    effect is visible to ``op``; ``inert(state, op, floor) -> bool``, true if placing ``op`` in
    ``state`` changes nothing that an operation with that floor or a later one can see.
    """

    def init(self) -> Hashable: ...

    def step(self, state: Any, op: Operation) -> tuple[Hashable, object]: ...


# The decision procedure of SEMANTICS.md section 5, on a sorted tuple of event times.


def prune(events: tuple[float, ...], now: float, window: float | None) -> tuple[float, ...]:
    """RET-1, RET-2, RET-3: keep the events with ``t >= now - window`` (all when no window)."""
    if window is None or not events or events[0] >= now - window:
        return events
    # The events are sorted: those kept are a suffix, from the first t >= now - window.
    return events[bisect_left(events, now - window) :]


def decide(
    count: int, last: float | None, now: float, max_calls: int, cooldown: float
) -> DecisionFields:
    """The oracle's decision (ORD-1, CD-1, RATE-1, DEC-2, DEC-3) over R of ``count`` events
    whose greatest is ``last``: one transcription of the rules serves both models."""
    return DecisionFields(**oracle.decide(count, last, now, max_calls, cooldown))


def step(
    events: tuple[float, ...], now: float, policy: Mapping[str, Any]
) -> tuple[tuple[float, ...], DecisionFields]:
    """One check of one gate: prune, cooldown, rate limit, reserve (ORD-1, RES-1)."""
    max_calls, window, cooldown = limits(policy)
    kept = prune(events, now, window)
    result = decide(len(kept), kept[-1] if kept else None, now, max_calls, cooldown)
    if result.status == "ALLOW":  # RES-1: one event at now; RES-2: duplicates count
        kept = tuple(sorted((*kept, now)))
    return kept, result


def limits(policy: Mapping[str, Any]) -> tuple[int, float | None, float]:
    window = policy["window"]
    return policy["max_calls"], None if window is None else float(window), float(policy["cooldown"])


ModelState = tuple[tuple[float, ...], tuple[float, ...], "float | None"]


class RateLimitModel:
    """The spec as a model: state ``(events, droppable, least window)``.

    ``events`` are sorted event times; ``droppable`` are events a store may already have dropped
    by RET-4 (present or not, unknown, for good); ``least window`` is the least window of the
    gate's checks so far (None: none bounded). See the module docstring.
    """

    def init(self) -> ModelState:
        return (), (), None

    def step(self, state: ModelState, op: Operation) -> tuple[ModelState, DecisionFields]:
        events, droppable, least = state
        max_calls, window, cooldown = limits(op.policy)
        now = op.now
        if op.horizon is not None and least is not None and events:
            # RET-4: before this check the store may have dropped any event t < T' - window,
            # T' <= horizon. The window is the latest check's; the least so far is read in its
            # place, which accepts every drop RET-4 allows (and a few more, when a gate's
            # windows differ) and does not depend on the order of the checks before.
            cutoff = op.horizon - least
            if events[0] < cutoff:
                droppable = tuple(sorted((*droppable, *(t for t in events if t < cutoff))))
                events = tuple(t for t in events if t >= cutoff)
        events, droppable = prune(events, now, window), prune(droppable, now, window)
        result = self._explain(events, droppable, now, max_calls, cooldown, observed=op.result)
        if result.status == "ALLOW":
            events = tuple(sorted((*events, now)))
        if window is not None and (least is None or window < least):
            least = window
        return (events, droppable, least), result

    def floor(self, op: Operation) -> float:
        """RET-1: ``op`` sees no event earlier than ``now - window`` (any, with no window)."""
        window = op.policy["window"]
        return -math.inf if window is None else op.now - float(window)

    def inert(self, state: ModelState, op: Operation, floor: float) -> bool:
        """Placing ``op`` now is invisible to checks whose floor is at least ``floor``.

        Its event is at ``now`` and all it prunes is older: such checks retain neither, and
        it leaves the least window as it is.
        """
        window = op.policy["window"]
        least = state[2]
        return op.now < floor and (window is None or (least is not None and window >= least))

    @staticmethod
    def _explain(
        events: tuple[float, ...],
        droppable: tuple[float, ...],
        now: float,
        max_calls: int,
        cooldown: float,
        *,
        observed: DecisionFields | None,
    ) -> DecisionFields:
        # R is the events plus any k of the droppable ones (the oracle's decide_retained). An
        # indeterminate check (nothing observed) takes the world most likely to allow, all
        # dropped: its effect is then the widest (its event); not taking effect is the other.
        last = events[-1] if events else None
        if droppable and observed is None:
            return decide(len(events), last, now, max_calls, cooldown)
        found = oracle.decide_retained(
            len(events), last, droppable, now=now, max_calls=max_calls, cooldown=cooldown,
            observed_calls=None if observed is None else observed.calls_in_window,
            accept=None if observed is None else lambda d: DecisionFields(**d) == observed,
        )  # fmt: skip
        return DecisionFields(**found)
