"""The oracle beside a target run one check at a time: where the target's logic parts from it.

A driver runs a history's checks again on the target with no concurrency and passes each answer
to ``OracleReplay.judge``; the first that is not the oracle's is a ``Disagreement`` naming the
fields that differ and, where the spec's events of the gate show it, why: the event the target
left out or counted too many, or the event its ``time_since_last`` was measured from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .. import oracle
from .history import DecisionFields, Operation, show
from .sequential import Disagreement, broken_clauses, retained

__all__ = ["OracleReplay"]


class OracleReplay:
    """The oracle's state across the checks judged so far, every gate's."""

    def __init__(self) -> None:
        self.model = oracle.Oracle()
        self.allowed: dict[tuple[str, str, str], list[float]] = {}  # the spec's ALLOWs, ever

    def judge(
        self, id: int, op: Operation, got: DecisionFields | None, answered: str = ""
    ) -> Disagreement | None:
        """The disagreement if ``got`` (None: ``answered``, no decision) is not the oracle's
        answer to check ``id`` of the history, ``op``."""
        gate = dict(zip(("namespace", "action", "principal"), op.gate, strict=True))
        held = self.model.events.get(op.gate)
        before = held.times() if held is not None else []
        window = op.policy.get("window")
        low = None if window is None else op.now - window  # RET-1, binary64
        events = tuple(t for t in before if low is None or t >= low)
        verdict = self.model.check(
            gate,
            dict(op.policy),
            op.now,
            choose=lambda e: got is not None and DecisionFields(**e) == got,
            observed=None if got is None else got._asdict(),
        )
        expected = DecisionFields(**verdict.expect)
        if expected.status == "ALLOW":
            self.allowed.setdefault(op.gate, []).append(op.now)
        if got == expected:
            return None
        if got is None:
            return Disagreement("replay", id, op, None, expected, events, ("DEC-1",), "", answered)
        gone = Counter(self.allowed.get(op.gate, [])) - Counter(before) - Counter([op.now])
        why, clauses = _why(
            got, expected, now=op.now, low=low, events=events, before=before,
            gone=sorted(gone.elements()),
        )  # fmt: skip
        return Disagreement("replay", id, op, got, expected, events, clauses, why)


def _why(
    got: DecisionFields,
    expected: DecisionFields,
    *,
    now: float,
    low: float | None,
    events: Sequence[float],
    before: Sequence[float],
    gone: Sequence[float],
) -> tuple[str, tuple[str, ...]]:
    """What the spec's events say of the difference; the clauses it breaks, the likely cause
    first. ``events``: R; ``before``: all the gate's events; ``gone``: those pruned away."""
    clauses = list(broken_clauses(expected, got))
    reasons = []
    more = retained(got) - retained(expected)
    # The same R (the same last), the count off by the call itself: DEC-2's +1 on an ALLOW left
    # out, or put on a BLOCK.
    same = got.status == expected.status and got.time_since_last == expected.time_since_last
    if more and same and got.calls_in_window == retained(expected):
        what = "leaves out the call allowed" if got.status == "ALLOW" else "counts the call blocked"
        reasons.append(f"calls_in_window {what}: R holds {retained(expected)} events")
    elif more:
        cause, clause = _count_cause(more, low=low, events=events, before=before, gone=gone)
        reasons.append(
            f"the target's |R| is {retained(got)}, the spec's {retained(expected)}: {cause}"
        )
        clauses = [clause, *(c for c in clauses if c not in (clause, "DEC-2"))]
    if got.time_since_last != expected.time_since_last and got.time_since_last is not None:
        last = events[-1] if events else None
        source = [t for t in events if now - t == got.time_since_last]
        if source and last is not None:
            which = "the oldest" if source[0] == events[0] else "an"
            reasons.append(
                f"time_since_last was measured from {show(source[0])}, {which} event of R, "
                f"not from last = {show(last)}, the greatest"
            )
        elif got.time_since_last == 0 and now not in events:
            reasons.append("an age of 0: measured from its own event, after the reservation")
    return "; ".join(reasons), tuple(clauses)


def _count_cause(
    more: int,
    *,
    low: float | None,
    events: Sequence[float],
    before: Sequence[float],
    gone: Sequence[float],
) -> tuple[str, str]:
    """Why the target counts ``more`` events than the spec (fewer when negative)."""
    if low is not None:
        edge = sum(t == low for t in events)
        outside = sum(t < low for t in before)
        if more < 0 and -more <= edge:
            return f"an event exactly window old ({show(low)}) is retained and counts", "RET-1"
        if 0 < more <= outside:
            return f"events before T - window ({show(low)}) are not retained", "RET-1"
        if 0 < more <= sum(t >= low for t in gone):
            return "events an earlier check discarded are counted again", "RET-2"
    if more > 0:
        return "the target counts events no ALLOW recorded", "RES-1"
    # RET-4 lets housekeeping drop only what no later check could retain.
    return f"events the spec retains are missing (R holds {len(events)})", "RET-1"
