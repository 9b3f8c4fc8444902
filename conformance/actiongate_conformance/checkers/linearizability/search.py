"""The search for an order: Wing and Gong's, with Lowe's memoisation (see the package)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from .history import Operation
from .model import Model

__all__ = ["BUDGET", "Budget", "Exhausted", "Failure", "linearize"]

BUDGET = 5_000_000  # search steps per gate before its verdict is left undecided


@dataclass(frozen=True)
class Failure:
    """The furthest the search got: ``placed`` in order, then ``stuck`` could not be placed.

    ``steps`` are the operations as stepped (an indeterminate one carries the horizon of the
    instant it was placed at), so that replaying them gives the search's states.
    """

    placed: tuple[int, ...]
    steps: tuple[Operation, ...]
    stuck: int
    state: Hashable
    limited: bool = False  # an indeterminate operation was left out for want of allowance


class Exhausted(Exception):
    """The search took more steps than its budget."""


class Budget:
    """Search steps left; -1 (counting down from there) means unbounded."""

    def __init__(self, steps: int | None) -> None:
        self.left = -1 if steps is None else steps


def linearize(
    ops: Sequence[Operation],
    model: Model,
    state: Hashable,
    budget: int | None = None,
    *,
    horizon_at: Callable[[int], float | None] | None = None,
    outer: Budget | None = None,
) -> Failure | None:
    """None if ``ops``, after ``state``, are linearizable; else the furthest attempt.

    Indeterminate operations mostly took no effect, and a depth-first search that places one
    wherever it is stuck can spend its time on their combinations before it backtracks the
    choice that was wrong. So search first with none of them, then with at most 1, 3, 7, ...
    placed, and unrestricted last; a pass that fails without having left one out is final.
    """
    if outer is not None:
        budget = outer.left if budget is None else min(budget, outer.left)
    if budget is not None and budget <= 0:
        raise Exhausted
    steps = Budget(budget)
    pending = sum(op.result is None for op in ops)
    allowance: int | None = 0
    while True:
        before = steps.left
        try:
            failure = _search(ops, model, state, steps, horizon_at=horizon_at, allowance=allowance)
        finally:
            if outer is not None:
                outer.left -= before - steps.left
        if failure is None or not failure.limited or allowance is None:
            return failure
        allowance = None if 2 * allowance + 1 >= pending else 2 * allowance + 1


class _Pending:
    """The indeterminate operations of one search, tried only where it is stuck.

    If the model has ``floor(op)`` (events before it are invisible to ``op``) and
    ``inert(state, op, floor)`` (placing ``op`` now changes nothing an operation with that floor
    or a later one can see), a set of them whose effects no remaining operation outside the set
    can see is skipped: placing them or not leads to the same futures. Without that, every
    indeterminate operation would stay a candidate to the end of the history.
    """

    def __init__(
        self,
        ops: Sequence[Operation],
        indices: list[int],
        model: Model,
        horizon_at: Callable[[int], float | None] | None,
    ) -> None:
        self.ops = ops
        self.order = sorted(indices, key=lambda i: ops[i].invoke_ns)
        self.invoke = [ops[i].invoke_ns for i in self.order]
        self.placed = [False] * len(self.order)
        floor = getattr(model, "floor", None)
        self.inert = getattr(model, "inert", None)
        self.floors = None
        if floor is not None and self.inert is not None:
            self.floors = [floor(ops[i]) for i in self.order]
        self.horizon_at = horizon_at

    def quiet(self, state: Hashable, floor: float | None) -> set[int]:
        """Positions of unplaced operations jointly invisible to everything else remaining."""
        if self.floors is None or self.inert is None or floor is None:
            return set()
        unplaced = [j for j, done in enumerate(self.placed) if not done]
        while True:
            quiet = {j for j in unplaced if self.inert(state, self.ops[self.order[j]], floor)}
            outside = min((self.floors[j] for j in unplaced if j not in quiet), default=floor)
            if outside >= floor:
                return quiet
            floor = outside

    def stepped(self, j: int, limit: int) -> Operation:
        """Pending operation j as placed before ``limit``: no check invoked after it ran yet."""
        op = self.ops[self.order[j]]
        return op if self.horizon_at is None else replace(op, horizon=self.horizon_at(limit))


def _search(  # noqa: PLR0915 - the hot loop, kept in one piece
    ops: Sequence[Operation],
    model: Model,
    state: Hashable,
    budget: Budget,
    *,
    horizon_at: Callable[[int], float | None] | None,
    allowance: int | None,
) -> Failure | None:
    """One pass of ``linearize``, placing at most ``allowance`` indeterminate operations.

    Raises Exhausted when the budget runs out. ``horizon_at(instant)`` is the RET-4 horizon
    of an indeterminate operation placed before ``instant``.
    """
    results = [op.result for op in ops]
    determinate = [i for i, result in enumerate(results) if result is not None]
    pending = _Pending(ops, [i for i, r in enumerate(results) if r is None], model, horizon_at)
    # Nodes: 0 head, 1 tail, 2 + 2k the call and 3 + 2k the return of determinate[k]. At equal
    # instants calls sort before returns: two such operations count as overlapping, the
    # permissive reading of a tie.
    entries: list[tuple[int, int, int]] = []
    for k, i in enumerate(determinate):
        entries.append((ops[i].invoke_ns, 0, 2 + 2 * k))
        entries.append((ops[i].return_ns or 0, 1, 3 + 2 * k))  # determinate: never None
    entries.sort()
    order = [0, *(node for _, _, node in entries), 1]
    size = 2 + 2 * len(determinate)
    nxt, prv = [0] * size, [0] * size
    for a, b in pairwise(order):
        nxt[a], prv[b] = b, a
    return_time = [0] * size
    for instant, kind, node in entries:
        if kind:
            return_time[node] = instant
    # A lower bound of the floors of the determinate operations not placed, cheaply: the head
    # of the list is the earliest invoked of them; take the least floor from it on.
    floor = getattr(model, "floor", None)
    floor_from: list[float] = [0.0] * size
    if floor is not None and pending.order:
        least = math.inf
        for _, kind, node in reversed(entries):
            if not kind:
                least = min(least, floor(ops[determinate[(node - 2) >> 1]]))
                floor_from[node] = least

    model_step = model.step
    used = 0  # indeterminate operations placed
    limited = False
    seen: set[tuple[Hashable, int]] = set()
    # Stack entries: (call node, or ~j for pending j; state before; the return node it was
    # placed at, for a pending operation).
    stack: list[tuple[int, Hashable, int]] = []
    trail: tuple[Any, ...] | None = None  # the placed operations as a cons list: O(1) snapshots
    linearized = 0
    left = len(determinate)
    best: tuple[int, Any, Hashable, int] | None = None
    node = nxt[0]
    pending_from = 0
    while left:
        budget.left -= 1
        if not budget.left:
            raise Exhausted
        if not node & 1:  # a call entry before any return entry: try to place it now
            i = determinate[(node - 2) >> 1]
            op = ops[i]
            new_state, output = model_step(state, op)
            if output == results[i]:
                key = (new_state, linearized | (1 << i))
                if key not in seen:
                    seen.add(key)
                    stack.append((node, state, 0))
                    trail = ((i, op), trail)
                    state, linearized, left = new_state, key[1], left - 1
                    ret = node + 1  # unlink the call and its return
                    nxt[prv[node]], prv[nxt[node]] = nxt[node], prv[node]
                    nxt[prv[ret]], prv[nxt[ret]] = nxt[ret], prv[ret]
                    node, pending_from = nxt[0], 0
                    continue
            node = nxt[node]
            continue
        # A return entry: its operation must be placed before this instant, and no determinate
        # operation can be. An indeterminate one invoked by now may take effect here.
        if not pending_from:  # a fresh dead end for determinate operations: the furthest yet?
            depth = len(determinate) - left
            if best is None or depth > best[0]:
                best = (depth, trail, state, determinate[(node - 3) >> 1] if node > 1 else -1)
        limit = return_time[node]
        j = pending_from
        placed = False
        # Past the allowance, one candidate is enough to know this pass left one out.
        if (
            j < len(pending.order)
            and pending.invoke[j] <= limit
            and not (limited and used == allowance)
        ):
            quiet = pending.quiet(state, floor_from[nxt[0]] if floor is not None else None)
            while j < len(pending.order) and pending.invoke[j] <= limit:
                if not pending.placed[j] and j not in quiet:
                    if used == allowance:
                        limited = True
                        break
                    i = pending.order[j]
                    op = pending.stepped(j, limit)
                    new_state, _ = model_step(state, op)
                    key = (new_state, linearized | (1 << i))
                    # Placing it with no effect is never needed: not placing it at all leaves
                    # strictly more options.
                    if new_state != state and key not in seen:
                        seen.add(key)
                        stack.append((~j, state, node))
                        trail = ((i, op), trail)
                        pending.placed[j] = True
                        used += 1
                        state, linearized = new_state, key[1]
                        node, pending_from, placed = nxt[0], 0, True
                        break
                j += 1
        if placed:
            continue
        if not stack:
            assert best is not None
            return replace(_failure(best), limited=limited)
        top, state, stuck_at = stack.pop()
        trail = trail[1] if trail is not None else None
        if top >= 0:
            i = determinate[(top - 2) >> 1]
            linearized ^= 1 << i
            left += 1
            pending_from = 0
            ret = top + 1  # relink in the reverse order of unlinking
            nxt[prv[ret]] = prv[nxt[ret]] = ret
            nxt[prv[top]] = prv[nxt[top]] = top
            node = nxt[top]
        else:
            j = ~top
            pending.placed[j] = False
            used -= 1
            linearized ^= 1 << pending.order[j]
            node, pending_from = stuck_at, j + 1
    return None


def _failure(best: tuple[int, Any, Hashable, int]) -> Failure:
    _, trail, state, stuck = best
    placed: list[tuple[int, Operation]] = []
    while trail is not None:
        placed.append(trail[0])
        trail = trail[1]
    placed.reverse()
    return Failure(tuple(i for i, _ in placed), tuple(op for _, op in placed), stuck, state)
