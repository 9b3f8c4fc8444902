"""Sequential disagreement: a target already wrong one check at a time, told from a race.

A history no order explains has two causes, which a porter fixes in different places: a logic
bug (an answer the spec never gives, concurrency or not) or a race (RES-1: each answer is one
some state gives, but no sequence of checks leads to those states). Two tests tell them apart:

- ``first_impossible``, on the recorded history alone: a check whose answer no state gives.
  A racing store shows a check lost, stale or resurrected writes, but only events some check
  recorded: never a time no check had. So a check's possible states are taken as every
  sub-multiset of the times of its gate's ALLOWed (or indeterminate) checks invoked before it
  returned, retained at its T (RET-1). That is generous on purpose: an answer no such state
  gives is wrong under any interleaving, and a race is never called a logic bug, unless the
  store reads one state torn (its count and its last event from two moments), which the next
  test settles.
- ``replay.OracleReplay``, beside the target run again one check at a time (the atomicity
  layer drives it): the same checks in the order they were invoked, judged by the oracle. A
  disagreement there needs no concurrency; agreement on every check means the concurrent
  failure needs it. It also catches the logic bugs some state could hide (an event a check
  pruned and a later one counted, RET-2; an event exactly window old dropped, RET-1).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .history import DecisionFields, Operation, gate_text, policy_text, show, times_text
from .model import decide, limits, prune

__all__ = [
    "CLAUSES",
    "RACE",
    "SEQUENTIAL",
    "Disagreement",
    "Replay",
    "broken_clauses",
    "first_impossible",
    "retained",
]

SEQUENTIAL, RACE = "sequential", "race"  # the kinds of failure a history's verdict names
DECISIONS = {("ALLOW", None), ("BLOCK", "COOLDOWN"), ("BLOCK", "RATE_LIMIT")}  # DEC-1
CLAUSES = {  # what each clause a disagreement cites asks, in brief (SEMANTICS.md has it whole)
    "DEC-1": "status and reason come only in the combinations DEC-1 lists",
    "DEC-2": "calls_in_window is |R| + 1 on an ALLOW, |R| on a BLOCK",
    "DEC-3": "time_since_last is T - last, last the greatest event of R, before the reservation",
    "RATE-1": "the rate limit blocks iff |R| >= max_calls",
    "CD-1": "the cooldown blocks iff cooldown > 0, R is not empty and T - last < cooldown",
    "ORD-1": "the cooldown rule comes before the rate limit",
    "RET-1": "an event is retained iff t >= T - window",
    "RET-2": "an event a check discarded is never counted again",
    "RET-4": "housekeeping drops no event a later check could retain",
    "RES-1": "an ALLOW records one event at T, a BLOCK none",
}
FIELDS = ("status", "reason", "calls_in_window", "time_since_last")


@dataclass(frozen=True)
class Disagreement:
    """A check whose answer is not the spec's, with no concurrency to blame.

    ``source`` is ``"history"`` (no state explains the recorded answer; ``expected`` is the
    spec's answer over ``events``, those the checks that returned before it recorded, as their
    answers say) or ``"replay"`` (the target run again one check at a time gave ``got``;
    ``expected`` is the oracle's over ``events``, the spec's retained events of the gate).
    ``id`` is the check's position in the history; ``why`` says what no state explains.
    """

    source: str
    id: int
    operation: Operation
    got: DecisionFields | None
    expected: DecisionFields
    events: tuple[float, ...]
    clauses: tuple[str, ...]
    why: str = ""
    answered: str = ""  # what the target answered when it is no decision (an error)

    def lines(self) -> list[str]:
        op = self.operation
        if self.source == "replay":
            head = (
                "Run again one check at a time (no concurrency), in the order they were invoked, "
                f"the target answers check #{self.id} against the spec:"
            )
            state = f"the spec's events of the gate then, retained at T: {times_text(self.events)}"
        else:
            head = f"Check #{self.id}'s answer is one no state gives, whatever the interleaving:"
            state = (
                "the spec's answer is over the events the checks that returned before it had "
                f"recorded (as their answers say), retained at T: {times_text(self.events)}"
            )
        lines = [
            f"gate {gate_text(op.gate)}: sequential disagreement (a logic bug, not a race).",
            head,
            f"  check #{self.id} (p{op.process}): now={show(op.now)} {policy_text(op.policy)}",
            f"    {'field':<16} {'target':<24} spec",
        ]
        if self.got is None:
            lines.append(f"    answered {self.answered}, not a decision")
        for name, wanted in zip(FIELDS, self.expected, strict=True):
            if self.got is not None:
                value = getattr(self.got, name)
                mark = "" if value == wanted else "<- differs"
                lines.append(f"    {name:<16} {show(value):<24} {show(wanted):<24} {mark}".rstrip())
        if self.why:
            lead = "No state explains it: " if self.source == "history" else ""
            lines.append(f"  {lead}{self.why}.")
        lines.append(f"  ({state})")
        lines += [f"  Breaks {c}: {CLAUSES.get(c, 'see SEMANTICS.md')}." for c in self.clauses]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "id": self.id,
            "operation": self.operation.to_dict(),
            "got": None if self.got is None else self.got._asdict(),
            "expected": self.expected._asdict(),
            "clauses": list(self.clauses),
            "why": self.why or self.answered,
        }


@dataclass(frozen=True)
class Replay:
    """The target run again one check at a time: ``checks`` run, the first ``disagreement``,
    or ``inconclusive`` saying why the run could not finish (then it decides nothing)."""

    checks: int
    disagreement: Disagreement | None = None
    inconclusive: str | None = None

    @property
    def conclusive(self) -> bool:
        return self.inconclusive is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "disagreement": None if self.disagreement is None else self.disagreement.to_dict(),
            "inconclusive": self.inconclusive,
        }


def broken_clauses(expected: DecisionFields, got: DecisionFields) -> tuple[str, ...]:
    """The clauses an answer ``got`` breaks where the spec says ``expected``, field by field."""
    found = []
    if (got.status, got.reason) not in DECISIONS:
        found.append("DEC-1")
    elif (got.status, got.reason) != (expected.status, expected.reason):
        reasons = {got.reason, expected.reason} - {None}
        found += ["CD-1"] if "COOLDOWN" in reasons else []
        found += ["ORD-1"] if reasons == {"COOLDOWN", "RATE_LIMIT"} else []
        found += ["RATE-1"] if reasons == {"RATE_LIMIT"} else []
    # |R| as each answer implies it: the count differs beyond the ALLOW's own call (DEC-2).
    if retained(got) != retained(expected):
        found.append("DEC-2")
    if got.time_since_last != expected.time_since_last:
        found.append("DEC-3")
    return tuple(found)


def retained(fields: DecisionFields) -> int:
    """|R| as a decision has it (DEC-2)."""
    return fields.calls_in_window - (fields.status == "ALLOW")


class _Recorded:
    """The times of the checks that may have recorded an event, as a sorted multiset."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def count(self, low: float, high: float) -> int:
        return bisect_right(self.times, high) - bisect_left(self.times, low)

    def near(self, time: float, slack: float) -> list[float]:
        return self.times[
            bisect_left(self.times, time - slack) : bisect_right(self.times, time + slack)
        ]


def first_impossible(ops: Sequence[Operation], ids: Sequence[int]) -> Disagreement | None:
    """The earliest invoked check of one gate's ``ops`` whose answer no state gives (see the
    module docstring), or None when every answer is one some state gives."""
    recorders = sorted(
        (op.invoke_ns, op.now)
        for op in ops
        if op.result is None or (op.result.status, op.result.reason) == ("ALLOW", None)
    )
    recorded, taken = _Recorded(), 0
    found: tuple[int, str, tuple[str, ...]] | None = None
    determinate = [k for k, op in enumerate(ops) if op.result is not None]
    for k in sorted(determinate, key=lambda k: ops[k].return_ns or 0):
        op = ops[k]
        while taken < len(recorders) and recorders[taken][0] <= (op.return_ns or 0):
            insort(recorded.times, recorders[taken][1])
            taken += 1
        if found is not None and op.invoke_ns >= ops[found[0]].invoke_ns:
            continue  # only the earliest invoked is shown
        problem = _impossible(op, recorded, ops)
        if problem is not None:
            found = (k, *problem)
    if found is None:
        return None
    k, why, clauses = found
    op = ops[k]
    assert op.result is not None
    events = _returned_before(ops, op)
    _, expected = _spec_over(events, op)
    return Disagreement("history", ids[k], op, op.result, expected, events, clauses, why)


def _returned_before(ops: Sequence[Operation], op: Operation) -> tuple[float, ...]:
    """The events the checks that returned before ``op`` was invoked recorded, by their answers."""
    return tuple(
        sorted(
            other.now
            for other in ops
            if other.result is not None
            and (other.result.status, other.result.reason) == ("ALLOW", None)
            and other.return_ns is not None
            and other.return_ns < op.invoke_ns
        )
    )


def _spec_over(
    events: tuple[float, ...], op: Operation
) -> tuple[tuple[float, ...], DecisionFields]:
    max_calls, window, cooldown = limits(op.policy)
    kept = prune(events, op.now, window)
    return kept, decide(len(kept), kept[-1] if kept else None, op.now, max_calls, cooldown)


Why = tuple[str, tuple[str, ...]]  # what no state explains, and the clauses it breaks


def _impossible(op: Operation, recorded: _Recorded, ops: Sequence[Operation]) -> Why | None:
    """Why no state of ``recorded`` events (``op``'s own aside) gives ``op``'s answer; None if
    one does. A decision depends on |R| and last alone (DEC-2, DEC-3, CD-1, RATE-1)."""
    got = op.result
    assert got is not None
    now, since = op.now, got.time_since_last
    max_calls, window, cooldown = limits(op.policy)
    if (got.status, got.reason) not in DECISIONS:
        return f"{show(got.status)} with reason {show(got.reason)}", ("DEC-1",)
    if since is None:  # R is empty (DEC-3): one answer only
        empty = decide(0, None, now, max_calls, cooldown)
        why = f"time_since_last null means R is empty, and then the spec says {empty}"
        return None if got == empty else (why, broken_clauses(empty, got) or ("DEC-3",))
    size = retained(got)  # |R| as the answer has it (DEC-2)
    cooling = cooldown > 0 and since < cooldown
    age = f"time_since_last {show(since)}"
    checks: list[tuple[bool, str, tuple[str, ...]]] = [
        (got.status == "ALLOW" and cooling, f"an ALLOW, though {age} is under the cooldown",
         ("CD-1",)),
        (got.reason == "COOLDOWN" and not cooling,
         f"COOLDOWN, though {age} is not under the cooldown {show(cooldown)}", ("CD-1",)),
        (got.reason == "RATE_LIMIT" and cooling, f"RATE_LIMIT, though {age} is under the cooldown",
         ("ORD-1",)),
        (got.reason == "RATE_LIMIT" and size < max_calls,
         f"RATE_LIMIT with |R| = {size} < max_calls {max_calls}", ("RATE-1",)),
        (got.status == "ALLOW" and size >= max_calls,
         f"an ALLOW with |R| = {size} >= max_calls {max_calls}", ("RATE-1",)),
    ]  # fmt: skip
    for wrong, why, clauses in checks:
        if wrong:
            return why, clauses
    low = -math.inf if window is None else now - window  # RET-1, in binary64 as the model has it
    own = got.status == "ALLOW"  # its own event is among the recorded, never in its own R

    def count(first: float, last: float) -> int:
        return recorded.count(first, last) - (own and first <= now <= last)

    slack = 4 * (math.ulp(now) + math.ulp(since))
    lasts = [t for t in recorded.near(now - since, slack) if now - t == since]
    lasts = [t for t in lasts if t >= low and count(t, t) > 0]
    if not lasts:
        return _no_last(op, ops, low, own)
    if size < 1:  # the event is there: the count is what is wrong
        return f"calls_in_window {got.calls_in_window} leaves R empty, yet {age}", ("DEC-2",)
    last = max(lasts)
    before, within = count(low, last), count(low, math.inf)
    if size <= before:
        return None
    if size <= within:
        why = (
            f"|R| = {size} needs {size} events at or before last = {show(last)}, and the checks "
            f"before it recorded {before}: last is not the greatest event of R"
        )
        return why, ("DEC-3",)
    why = f"|R| = {size}, but the checks before it recorded {within} events inside the window"
    return why, ("RET-1", "DEC-2")


def _no_last(op: Operation, ops: Sequence[Operation], low: float, own: bool) -> Why:
    """Why no recorded event is at ``T - time_since_last``."""
    since = op.result.time_since_last if op.result is not None else None
    at = [o for o in ops if o is not op and op.now - o.now == since]
    text = f"time_since_last {show(since)} is T - last for no event a check recorded"
    if own and since == 0 and not at:
        return f"{text}, only for its own event, reserved after R was read", ("DEC-3", "RES-1")
    if any(o.result is not None and o.result.status == "BLOCK" for o in at):
        return f"{text}, only for a BLOCKed check's time", ("RES-1", "DEC-3")
    if any(o.now < low for o in at):
        return f"{text}, only for one outside the window", ("RET-1", "DEC-3")
    if at:
        return f"{text} before it returned, only a check invoked later", ("DEC-3",)
    return text, ("DEC-3",)
