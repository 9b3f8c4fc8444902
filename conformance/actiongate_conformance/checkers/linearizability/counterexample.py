"""A counterexample: the operations of one gate no order explains, cut down and shown."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .history import Operation, gate_text, policy_text, show, times_text
from .model import Model
from .search import Budget, Exhausted, Failure, linearize

__all__ = ["Counterexample", "counterexample"]

SUB_BUDGET = 200_000  # search steps per trial while a counterexample is cut down
MINIMISE_BUDGET = 500_000  # search steps for all the trials of one minimisation
EXTEND_LIMIT = 256  # operations a counterexample may grow to while it is looked for
MINIMISE_LIMIT = 64  # operations; a larger counterexample is shown whole, not minimised


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
        gate = gate_text(self.gate)
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
                f"{show(op.now):<20} {policy_text(op.policy):<38} {result}"
            )
        stuck, got = f"#{ids[self.stuck]}", self.operations[self.stuck].result
        if self.furthest:
            order = ", ".join(f"#{ids[i]}" for i in self.furthest)
            lines.append(f"Furthest order: {order}; then {stuck} should have given {self.expected}")
        else:  # no operation of these could even go first
            lines.append(f"Placed first, {stuck} should have given {self.expected}")
        lines[-1] += f", but gave {got}."
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
        text = f"events {times_text(events)}"
        return text + (f" and possibly {times_text(droppable)} (RET-4)" if droppable else "")
    return f"state {state!r}"  # another model's state: only it knows how to spell it


def counterexample(
    gate: tuple[str, str, str],
    ops: Sequence[Operation],
    ids: Sequence[int],
    model: Model,
    failure: Failure,
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
    cut = next((k for k, i in enumerate(placed) if not returned_by(ops[i], first)), len(placed))
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
        proven = fails(ops, trial, model, state, horizon_at=horizon_at)
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
            linearize(chosen, model, state, SUB_BUDGET, horizon_at=horizon_at) if proven else None
        )
    except Exhausted:  # not expected: _fails just ran this very search
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
    budget = Budget(MINIMISE_BUDGET)
    for i in sorted(members, key=lambda i: ops[i].invoke_ns, reverse=True):
        smaller = [m for m in members if m != i]
        if smaller and all(
            fails(ops, trial, model, state, horizon_at=horizon_at, free=free, budget=budget)
            for trial, free in ((smaller, frozenset()), (members, frozenset({i})))
        ):
            members = smaller
        if budget.left <= 0:
            return members, False
    return members, True


def fails(
    ops: Sequence[Operation],
    members: list[int],
    model: Model,
    state: Hashable,
    *,
    horizon_at: Callable[[int], float | None] | None,
    free: frozenset[int] = frozenset(),
    budget: Budget | None = None,
) -> bool:
    """Shown within SUB_BUDGET steps (and what ``budget`` has left, which pays for them) that
    no order of ``members`` fits after ``state``, those in ``free`` being indeterminate."""
    trial = [replace(ops[i], result=None) if i in free else ops[i] for i in members]
    try:
        failure = linearize(trial, model, state, SUB_BUDGET, horizon_at=horizon_at, outer=budget)
    except Exhausted:
        return False
    return failure is not None


def returned_by(op: Operation, instant: int) -> bool:
    return op.result is not None and op.return_ns is not None and op.return_ns < instant
