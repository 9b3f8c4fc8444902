"""Linearizability of check histories: does some sequential order explain every decision?

Theory of operation
-------------------
RES-1 says a check reads a gate's state and reserves against it atomically. A store that reads,
then writes, passes every sequential vector yet lets two concurrent checks both claim the last
slot. So we record a concurrent history (each check's invoke and return instants, its gate,
policy, ``now`` and decision fields) and ask whether some total order of the checks (1) respects
real time (a check that returned before another was invoked comes first) and (2) gives, replayed
through the sequential model, exactly the recorded decisions. That is Herlihy and Wing's
linearizability; a history is linearizable iff each gate's sub-history is (ID-2: gates never
share state), so each gate is checked on its own, as Porcupine does.

The search is Wing and Gong's, with Lowe's memoisation, over a doubly linked list of call and
return entries sorted by time:

- scan the list from its head; a call entry met before any return entry belongs to an operation
  that may be linearized next (no unplaced operation returned before it was invoked). Step the
  model; if the output equals the recorded result and the pair (state, set of linearized
  operations) was never seen, linearize it: push it, unlink its two entries, rescan from the head;
- reaching a return entry means its operation had to be placed by now: try the indeterminate
  operations invoked before that instant (below); failing those, backtrack: pop the last placed
  operation, relink it and continue the scan after it;
- it is linearizable when every determinate operation is placed; it is not when backtracking
  finds the stack empty.

Each (state, linearized set) pair is explored at most once, so the work is bounded by the number
of such pairs reachable: with operations overlapping at most ``c`` at a time, ``O(n * 2^c)``
pairs in the worst case; on a correct history the search mostly runs straight through, about
``n * c`` model steps (the linearized set is a Python int used as a bitset). Proving a history
*not* linearizable visits every pair reachable before the conflict, far more. ``budget`` caps
the steps per gate; a gate that runs out is reported undecided, never as a verdict.

Indeterminate operations (result None: a STORE_ERROR decision or a timeout, whose write may or
may not have landed, ERR-3) are Knossos's ``:info`` operations: they have no return entry (a
write may land after the caller gave up), may take effect at any point after their invocation
with any output, or never. "Never" is not placing them. They are tried only where the search is
stuck, and a depth-first search that tries them there can spend its time on their combinations
before it backtracks the choice that was wrong; so each gate is searched first with none of them
placed, then with at most 1, 3, 7, ..., and with no limit last, stopping at a pass that succeeds
or that fails without having left one out. Two further cuts keep them cheap and lose nothing: a
placement that leaves the state as it was is skipped (not placing it leaves more options), and
so is a set of them that no remaining operation outside the set can see (the model's ``floor``
and ``inert``, when it has them).

The sequential model is anything with ``init()`` and ``step(state, op) -> (state, output)``
(states hashable; outputs compared with ``==`` to ``op.result``). ``RateLimitModel`` is
SEMANTICS.md section 5 transcribed, with RET-4: a store may drop an event between checks once it
is older than ``T' - window``, ``T'`` the time of any check the store already carried out. Those
checks may be of other gates, which a partition cannot see, so each operation carries a
``horizon``: the greatest ``now`` of any check (of any gate) invoked before it returned (for an
indeterminate one, before the instant it is placed at), an upper bound of ``T'`` at its
linearization point. Events older than ``horizon - window`` become *droppable* for good; a check
that retains some may see any subset of them, and the model takes the one that explains the
recorded result (as the oracle's ``choose`` does). This errs towards accepting: the reference
MemoryStore's housekeeping is observable under concurrency, and a model without RET-4 flags
many of its correct histories.

A counterexample is local: from the furthest point the search reached, the operation it could
not place, the unplaced operations invoked before that one returned, and the placed ones that
overlap them, after the state the earlier operations led to. If those alone admit no order
(else later operations are added), each is dropped in turn while the rest still admit none,
both without it and with it present but indeterminate (so that an operation whose event explains
another's result stays).

Nothing here imports ``actiongate``: the model is an independent reading of the spec.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate, pairwise
from typing import Any, NamedTuple, Protocol

from . import oracle

__all__ = [
    "Counterexample",
    "DecisionFields",
    "History",
    "HistoryVerdict",
    "Model",
    "Operation",
    "RateLimitModel",
    "check_history",
    "decide",
    "fields_from_record",
    "prune",
    "step",
]

BUDGET = 5_000_000  # search steps per gate before its verdict is left undecided
SUB_BUDGET = 200_000  # search steps per trial while a counterexample is cut down
MINIMISE_BUDGET = 500_000  # search steps for all the trials of one minimisation
EXTEND_LIMIT = 256  # operations a counterexample may grow to while it is looked for
MINIMISE_LIMIT = 64  # operations; a larger counterexample is shown whole, not minimised


class DecisionFields(NamedTuple):
    """The compared fields of a decision (DEC-1 to DEC-3), as JSON spells them."""

    status: str
    reason: str | None
    calls_in_window: int
    time_since_last: float | None

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return (
            f"{self.status}{reason} calls_in_window={self.calls_in_window} "
            f"time_since_last={self.time_since_last!r}"
        )


@dataclass(frozen=True)
class Operation:
    """One check as a client saw it.

    ``invoke_ns`` and ``return_ns`` are instants of one system-wide monotonic clock
    (``time.monotonic_ns``), not the check's ``now``. ``policy`` is the JSON shape of a policy
    (``max_calls``, ``window``, ``cooldown``, ...). ``result`` None makes the operation
    indeterminate: it may have taken effect at any point after its invocation, or never; its
    ``return_ns``, if any, is only shown. ``horizon`` is filled in by ``check_history``.
    """

    process: int
    invoke_ns: int
    return_ns: int | None
    gate: tuple[str, str, str]
    policy: Mapping[str, Any]
    now: float
    result: DecisionFields | None
    horizon: float | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        namespace, action, principal = self.gate
        return {
            "process": self.process,
            "invoke_ns": self.invoke_ns,
            "return_ns": self.return_ns,
            "gate": {"namespace": namespace, "action": action, "principal": principal},
            "policy": dict(self.policy),
            "now": self.now,
            "result": None if self.result is None else self.result._asdict(),
        }

    def __post_init__(self) -> None:
        if self.result is not None and self.return_ns is None:
            raise ValueError("an operation with a result must have a return_ns")
        if self.return_ns is not None and self.return_ns < self.invoke_ns:
            raise ValueError(
                f"return_ns must be >= invoke_ns, got {self.return_ns} < {self.invoke_ns}"
            )


def fields_from_record(record: Mapping[str, Any]) -> DecisionFields | None:
    """The compared fields of a decision record (spec/decision.schema.json); None for a
    STORE_ERROR decision, which says nothing of the state (ERR-3)."""
    if record.get("reason") == "STORE_ERROR":
        return None
    since = record["time_since_last"]
    return DecisionFields(
        record["status"],
        record["reason"],
        record["calls_in_window"],
        None if since is None else float(since),
    )


@dataclass(frozen=True)
class History:
    """Operations recorded against one store, plus anything a driver saw that is not order.

    ``errors`` are anomalies such as an exception escaping a check (ERR-3) or a STORE_ERROR
    decision that contradicts its policy's ``on_store_error`` (ERR-1).
    """

    operations: tuple[Operation, ...]
    errors: tuple[str, ...] = ()
    description: str = ""

    def __len__(self) -> int:
        return len(self.operations)


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
    max_calls, window, cooldown = _limits(policy)
    kept = prune(events, now, window)
    result = decide(len(kept), kept[-1] if kept else None, now, max_calls, cooldown)
    if result.status == "ALLOW":  # RES-1: one event at now; RES-2: duplicates count
        kept = tuple(sorted((*kept, now)))
    return kept, result


def _limits(policy: Mapping[str, Any]) -> tuple[int, float | None, float]:
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
        max_calls, window, cooldown = _limits(op.policy)
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
        # R is the events plus any k of the droppable ones. Nothing dropped comes first; else
        # the decision depends only on |R| and its greatest, and the observed count fixes k.
        # An indeterminate check (nothing observed) takes the world most likely to allow, all
        # dropped: its effect is then the widest (its event); not taking effect is the other.
        last = events[-1] if events else None
        if droppable and observed is None:
            return decide(len(events), last, now, max_calls, cooldown)
        greatest = max(events[-1:] + droppable[-1:], default=None)
        answer = decide(len(events) + len(droppable), greatest, now, max_calls, cooldown)
        if not droppable or observed is None or answer == observed:
            return answer
        count = observed.calls_in_window - (1 if observed.status == "ALLOW" else 0)
        k = count - len(events)
        if not 0 <= k <= len(droppable):
            return answer
        # k of them whose greatest is droppable[j] need j >= k - 1 (the others come before it).
        candidates = {last} if k == 0 else {
            t if last is None else max(last, t) for t in droppable[k - 1 :]
        }  # fmt: skip
        for candidate_last in sorted(candidates, key=lambda t: -math.inf if t is None else t):
            candidate = decide(count, candidate_last, now, max_calls, cooldown)
            if candidate == observed:
                return candidate
        return answer


# The search.


@dataclass(frozen=True)
class _Failure:
    """The furthest the search got: ``placed`` in order, then ``stuck`` could not be placed.

    ``steps`` are the operations as stepped (an indeterminate one carries the horizon of the
    instant it was placed at), so that replaying them gives the search's states.
    """

    placed: tuple[int, ...]
    steps: tuple[Operation, ...]
    stuck: int
    state: Hashable
    limited: bool = False  # an indeterminate operation was left out for want of allowance


class _Exhausted(Exception):
    """The search took more steps than its budget."""


class _Budget:
    """Search steps left; -1 (counting down from there) means unbounded."""

    def __init__(self, steps: int | None) -> None:
        self.left = -1 if steps is None else steps


def _linearize(
    ops: Sequence[Operation],
    model: Model,
    state: Hashable,
    budget: int | None = None,
    *,
    horizon_at: Callable[[int], float | None] | None = None,
    outer: _Budget | None = None,
) -> _Failure | None:
    """None if ``ops``, after ``state``, are linearizable; else the furthest attempt.

    Indeterminate operations mostly took no effect, and a depth-first search that places one
    wherever it is stuck can spend its time on their combinations before it backtracks the
    choice that was wrong. So search first with none of them, then with at most 1, 3, 7, ...
    placed, and unrestricted last; a pass that fails without having left one out is final.
    """
    if outer is not None:
        budget = outer.left if budget is None else min(budget, outer.left)
    if budget is not None and budget <= 0:
        raise _Exhausted
    steps = _Budget(budget)
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
    budget: _Budget,
    *,
    horizon_at: Callable[[int], float | None] | None,
    allowance: int | None,
) -> _Failure | None:
    """One pass of ``_linearize``, placing at most ``allowance`` indeterminate operations.

    Raises _Exhausted when the budget runs out. ``horizon_at(instant)`` is the RET-4 horizon
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
            raise _Exhausted
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


def _failure(best: tuple[int, Any, Hashable, int]) -> _Failure:
    _, trail, state, stuck = best
    placed: list[tuple[int, Operation]] = []
    while trail is not None:
        placed.append(trail[0])
        trail = trail[1]
    placed.reverse()
    return _Failure(tuple(i for i, _ in placed), tuple(op for _, op in placed), stuck, state)


# Counterexamples.


@dataclass(frozen=True)
class Counterexample:
    """Operations of one gate that no order explains, starting from ``start``.

    ``start`` is the model state after the ``prefix`` earlier operations of the gate, in the
    order the search found for them; ``operations`` (in invocation order; ``ids`` are their
    positions in the history) are the frontier where every order failed. If ``proven``, the
    search showed that no order of them alone fits after ``start``; if ``minimised`` too,
    without any one of them some order does. ``furthest`` (positions in ``operations``) is the
    longest order found, after which ``operations[stuck]`` was expected to give ``expected``.
    """

    gate: tuple[str, str, str]
    operations: tuple[Operation, ...]
    ids: tuple[int, ...]
    start: Hashable
    prefix: int
    proven: bool
    minimised: bool
    furthest: tuple[int, ...]
    stuck: int
    expected: object

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": dict(zip(("namespace", "action", "principal"), self.gate, strict=True)),
            "ids": list(self.ids),
            "operations": [op.to_dict() for op in self.operations],
            "start": _state_text(self.start),
            "prefix": self.prefix,
            "proven": self.proven,
            "minimised": self.minimised,
            "timeline": self.timeline(),
        }

    def timeline(self) -> str:
        """The operations as a readable timeline: one line each, times in us from the first."""
        ops, ids = self.operations, self.ids
        origin = min(op.invoke_ns for op in ops)
        ends = [op.return_ns if op.result is not None else None for op in ops]
        span = max(
            [op.invoke_ns - origin for op in ops] + [e - origin for e in ends if e is not None],
            default=1,
        )
        width = 20
        gate = "/".join(repr(part) for part in self.gate)
        what = (
            f"No order of these {len(ops)} operations explains every result"
            if len(ops) > 1
            else "This operation's result is not the model's"
        )
        lines = [
            f"gate {gate}: not linearizable. {what},",
            f"starting from {_state_text(self.start)} "
            f"(after {self.prefix} earlier operation{'s' if self.prefix != 1 else ''}):",
            f"  {'op':>6} {'proc':>5} {'invoke_us':>10} {'return_us':>10}  {'':<{width + 1}}  "
            f"{'now':<20} {'policy':<38} result",
        ]
        for op, number, end in zip(ops, ids, ends, strict=True):
            first = (op.invoke_ns - origin) * width // max(span, 1)
            last = width if end is None else (end - origin) * width // max(span, 1)
            bar = " " * first + "[" + "-" * max(last - first - 1, 0) + ("]" if end else ">")
            returned = "never" if op.return_ns is None else f"{(op.return_ns - origin) / 1e3:.1f}"
            result = "indeterminate (STORE_ERROR)" if op.result is None else str(op.result)
            lines.append(
                f"  {'#' + str(number):>6} {'p' + str(op.process):>5} "
                f"{(op.invoke_ns - origin) / 1e3:>10.1f} {returned:>10}  {bar:<{width + 1}}  "
                f"{op.now!r:<20} {_policy_text(op.policy):<38} {result}"
            )
        order = ", ".join(f"#{ids[i]}" for i in self.furthest) or "nothing"
        lines.append(
            f"Furthest order: {order}; then #{ids[self.stuck]} should have given "
            f"{self.expected}, but gave {self.operations[self.stuck].result}."
        )
        if not self.proven:
            lines.append(
                "(Every order the search found fails here, but only together with later "
                "operations too many to show.)"
            )
        elif not self.minimised:
            lines.append("(Not minimised: too many operations, or too long a search.)")
        return "\n".join(lines)


def _state_text(state: Hashable) -> str:
    if isinstance(state, tuple) and len(state) == 3 and isinstance(state[0], tuple):
        events, droppable, _ = state
        text = f"events {_times_text(events)}"
        return text + (f" and possibly {_times_text(droppable)} (RET-4)" if droppable else "")
    return f"state {state!r}"


def _times_text(times: tuple[float, ...]) -> str:
    if len(times) <= 8:
        return repr(list(times))
    shown = ", ".join(repr(t) for t in times[-5:])
    return f"[{times[0]!r}, ... ({len(times) - 6} more), {shown}] ({len(times)} events)"


def _policy_text(policy: Mapping[str, Any]) -> str:
    return (
        f"max_calls={policy.get('max_calls')!r} window={policy.get('window')!r} "
        f"cooldown={policy.get('cooldown')!r}"
    )


def _counterexample(
    gate: tuple[str, str, str],
    ops: Sequence[Operation],
    ids: Sequence[int],
    model: Model,
    failure: _Failure,
    *,
    horizon_at: Callable[[int], float | None] | None,
) -> Counterexample:
    """The operations around the furthest failure, minimised when shown to fail on their own."""
    placed = list(failure.placed)
    stuck = ops[failure.stuck]
    assert stuck.return_ns is not None  # the stuck operation is determinate
    # The frontier: the stuck operation and every one not placed that was invoked before it
    # returned (each might have gone before it); with them, the placed operations that overlap
    # any of those (each might have gone after). What precedes the first of these stays put.
    in_placed = set(placed)
    frontier = {failure.stuck} | {
        i for i, op in enumerate(ops) if i not in in_placed and op.invoke_ns <= stuck.return_ns
    }
    first = min(ops[i].invoke_ns for i in frontier)
    cut = next((k for k, i in enumerate(placed) if not _returned_by(ops[i], first)), len(placed))
    members = sorted(frontier | set(placed[cut:]), key=lambda i: ops[i].invoke_ns)
    state = model.init()
    for stepped in failure.steps[:cut]:
        state, _ = model.step(state, stepped)
    # Usually the frontier alone admits no order. If it does, later operations are needed to
    # rule its orders out: add some (the search failed from here on all that remains).
    rest = sorted(
        set(range(len(ops))) - set(placed[:cut]) - set(members), key=lambda i: ops[i].invoke_ns
    )
    trial, taken, proven = members, 0, False
    while True:
        proven = _fails(ops, trial, model, state, horizon_at=horizon_at)
        if proven or taken >= len(rest) or len(trial) >= EXTEND_LIMIT:
            break
        more = rest[taken : taken + max(len(trial), 1)]
        trial, taken = sorted(trial + more, key=lambda i: ops[i].invoke_ns), taken + len(more)
    minimised = False
    if proven:
        members = trial
        if len(members) <= MINIMISE_LIMIT:
            members, minimised = _minimised(ops, members, model, state, horizon_at=horizon_at)
    chosen = [ops[i] for i in members]
    try:
        last = (
            _linearize(chosen, model, state, SUB_BUDGET, horizon_at=horizon_at) if proven else None
        )
    except _Exhausted:  # not expected: _fails just ran this very search
        last = None
    if last is not None and last.stuck >= 0:
        replay = state
        for stepped in last.steps:
            replay, _ = model.step(replay, stepped)
        path, stuck_op = [members[k] for k in last.placed], members[last.stuck]
    else:  # the main search's own furthest attempt, seen from the cut
        replay, path, stuck_op = failure.state, placed[cut:], failure.stuck
    _, expected = model.step(replay, ops[stuck_op])
    position = {i: k for k, i in enumerate(members)}
    return Counterexample(
        gate=gate,
        operations=tuple(chosen),
        ids=tuple(ids[i] for i in members),
        start=state,
        prefix=cut,
        proven=proven,
        minimised=minimised,
        furthest=tuple(position[i] for i in path),
        stuck=position[stuck_op],
        expected=expected,
    )


def _minimised(
    ops: Sequence[Operation],
    members: list[int],
    model: Model,
    state: Hashable,
    *,
    horizon_at: Callable[[int], float | None] | None,
) -> tuple[list[int], bool]:
    """Drop, latest first, each operation the contradiction does not need; True if all tried.

    An operation goes if the rest still fail without it, and also with it present but
    indeterminate (its effect available, its result free). The second test keeps an operation
    whose event explains another's result: dropping it would leave that result contradicting
    for a reason that says nothing.
    """
    budget = _Budget(MINIMISE_BUDGET)
    for i in sorted(members, key=lambda i: ops[i].invoke_ns, reverse=True):
        smaller = [m for m in members if m != i]
        if smaller and all(
            _fails(ops, trial, model, state, horizon_at=horizon_at, free=free, budget=budget)
            for trial, free in ((smaller, frozenset()), (members, frozenset({i})))
        ):
            members = smaller
        if budget.left <= 0:
            return members, False
    return members, True


def _fails(
    ops: Sequence[Operation],
    members: list[int],
    model: Model,
    state: Hashable,
    *,
    horizon_at: Callable[[int], float | None] | None,
    free: frozenset[int] = frozenset(),
    budget: _Budget | None = None,
) -> bool:
    """Shown within SUB_BUDGET steps (and what ``budget`` has left, which pays for them) that
    no order of ``members`` fits after ``state``, those in ``free`` being indeterminate."""
    trial = [replace(ops[i], result=None) if i in free else ops[i] for i in members]
    try:
        failure = _linearize(trial, model, state, SUB_BUDGET, horizon_at=horizon_at, outer=budget)
    except _Exhausted:
        return False
    return failure is not None


def _returned_by(op: Operation, instant: int) -> bool:
    return op.result is not None and op.return_ns is not None and op.return_ns < instant


# The entry point.


@dataclass(frozen=True)
class HistoryVerdict:
    """The checker's answer: a counterexample per gate that no order explains.

    ``undecided`` lists the gates whose search ran out of budget (neither shown linearizable
    nor not); ``errors`` are the driver's anomalies carried over from the History.
    """

    operations: int
    gates: int
    counterexamples: tuple[Counterexample, ...]
    undecided: tuple[tuple[str, str, str], ...]
    errors: tuple[str, ...]
    seconds: float

    @property
    def linearizable(self) -> bool:
        """Shown linearizable: no counterexample and no undecided gate."""
        return not self.counterexamples and not self.undecided

    @property
    def ok(self) -> bool:
        """Linearizable, and the driver saw no other anomaly."""
        return self.linearizable and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "gates": self.gates,
            "linearizable": self.linearizable,
            "ok": self.ok,
            "counterexamples": [c.to_dict() for c in self.counterexamples],
            "undecided": [
                dict(zip(("namespace", "action", "principal"), gate, strict=True))
                for gate in self.undecided
            ],
            "errors": list(self.errors),
            "seconds": self.seconds,
        }

    def explain(self) -> str:
        verdict = (
            "linearizable"
            if self.linearizable
            else "NOT linearizable"
            if self.counterexamples
            else "undecided"
        )
        parts = [
            f"{self.operations} operations on {self.gates} gate{'s' if self.gates != 1 else ''}:"
            f" {verdict} (checked in {self.seconds:.2f} s)",
            *(c.timeline() for c in self.counterexamples),
        ]
        parts += [
            f"gate {'/'.join(map(repr, gate))}: undecided, the search ran out of budget"
            for gate in self.undecided
        ]
        parts += [f"error: {error}" for error in self.errors]
        return "\n\n".join(parts)


def check_history(
    history: History | Iterable[Operation], model: Model | None = None, budget: int = BUDGET
) -> HistoryVerdict:
    """Whether ``history`` is linearizable under ``model`` (default: ``RateLimitModel``).

    ``history`` must hold every check the store carried out while it was recorded, starting
    from empty gates: RET-4 horizons are computed across all of them. ``budget`` bounds the
    search steps per gate; a gate that exhausts it is reported undecided.
    """
    started = time.perf_counter()
    errors = history.errors if isinstance(history, History) else ()
    ops = list(history.operations if isinstance(history, History) else history)
    model = RateLimitModel() if model is None else model
    ops, horizon_at = _with_horizons(ops)
    partitions: dict[tuple[str, str, str], list[int]] = {}
    for index, op in enumerate(ops):
        partitions.setdefault(op.gate, []).append(index)
    found = []
    undecided = []
    for gate, ids in partitions.items():
        part = [ops[i] for i in ids]
        try:
            failure = _linearize(part, model, model.init(), budget, horizon_at=horizon_at)
        except _Exhausted:
            undecided.append(gate)
            continue
        if failure is not None:
            found.append(_counterexample(gate, part, ids, model, failure, horizon_at=horizon_at))
    return HistoryVerdict(
        operations=len(ops),
        gates=len(partitions),
        counterexamples=tuple(found),
        undecided=tuple(undecided),
        errors=tuple(errors),
        seconds=time.perf_counter() - started,
    )


def _with_horizons(
    ops: list[Operation],
) -> tuple[list[Operation], Callable[[int], float | None]]:
    """The operations with their RET-4 horizons, and the horizon of any instant.

    horizon(instant) is the greatest ``now`` of any check invoked by that instant; an
    operation's is that of its return (an indeterminate one's, of the instant it is placed
    before, which the search knows). Failed checks count too: an unknown outcome may have been
    carried out.
    """
    by_invoke = sorted(ops, key=lambda op: op.invoke_ns)
    invokes = [op.invoke_ns for op in by_invoke]
    greatest = list(accumulate((op.now for op in by_invoke), max))

    def horizon_at(instant: int) -> float | None:
        count = bisect_right(invokes, instant)
        return greatest[count - 1] if count else None

    out = []
    for op in ops:
        end = op.return_ns if op.result is not None else None
        horizon = greatest[-1] if end is None else horizon_at(end)
        out.append(replace(op, horizon=horizon))
    return out, horizon_at
