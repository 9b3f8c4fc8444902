"""The oracle: SEMANTICS.md 1.0's decision clauses, transcribed literally, for the stateful model.

Independent of the reference (it imports no ``actiongate``; a test holds it to that), so a
misreading of the spec in either shows against the other and the vectors. Plain JSON values in
(non-finite numbers as ``{"$float": "NaN"}``), a list of event times per gate, a vector's
``expect`` out.

RET-4: once ``t < T' - window`` (``T'`` the greatest time of a check the store carried out,
``window`` not null and that of the gate's latest such check) a store may drop event ``t``, so
the oracle marks it *droppable*, for good. A check that retains droppable events has one result
per subset of them still there (a result depends on the count and the greatest event only), and
``Verdict.open`` says so. The caller's ``choose`` picks the one the implementation gave, and the
state follows it. Which droppable events survive stays unknown, so the oracle errs towards
accepting; a check that retains none has exactly one result.

One model of RET-4 serves the suite: ``decide_retained`` decides such checks for the oracle and
for the linearizability model alike (which differ only in *which* events are droppable: the
oracle knows the order of checks, the concurrent model only bounds it). The reference engine's
housekeeping is not shared: it is what the oracle judges, and a judge that imported it could
not catch its mistakes.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GateEvents", "Oracle", "Verdict", "decide", "decide_retained"]

TIME_LIMIT = 2.0**53  # TIME-3
MAX_CALLS_LIMIT = 2**53 - 1  # POL-1
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_STORE_ERROR = {"error": "store_error", "field": None}  # a clear the store could not do
Expect = dict[str, Any]
GateKey = tuple[str, str, str]


@dataclass(frozen=True)
class Verdict:
    """The expected result of one check, and the clauses it used. ``open``: RET-4 allows other
    results too (the check retains events a store may already have dropped)."""

    expect: Expect
    open: bool
    clauses: frozenset[str]


def _float(value: Any) -> float | None:
    """The binary64 value a JSON number denotes (TIME-2); None for anything else."""
    if isinstance(value, Mapping) and set(value) == {"$float"}:
        return _SPECIAL.get(value["$float"])
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # a boolean is no number
        return None
    try:
        return float(value)  # an int rounds to the nearest binary64, as a JSON reader would
    except OverflowError:
        return math.inf


def _max_calls(value: Any) -> bool:
    # POL-1: an integer (not a boolean, not a float) with 0 <= max_calls <= 2^53 - 1.
    return type(value) is int and 0 <= value <= MAX_CALLS_LIMIT


def _window(value: Any) -> bool:
    number = _float(value)  # POL-2: null, or a finite number > 0
    return value is None or (number is not None and math.isfinite(number) and number > 0)


def _cooldown(value: Any) -> bool:
    number = _float(value)  # POL-3: a finite number >= 0 (-0.0 included); null is no number
    return number is not None and math.isfinite(number) and number >= 0


def _gate_field(value: Any) -> bool:
    # ID-3: a string of Unicode scalar values: no lone surrogate.
    return isinstance(value, str) and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)


# POL-5's order, each record's fields with their rule and clause: (field, valid, clause).
_GATE_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("namespace", _gate_field, "ID-3"),
    ("action", _gate_field, "ID-3"),
    ("principal", _gate_field, "ID-3"),
)
_POLICY_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("max_calls", _max_calls, "POL-1"),
    ("window", _window, "POL-2"),
    ("cooldown", _cooldown, "POL-3"),
    ("mode", lambda value: value in ("HARD", "SOFT"), "POL-4"),  # exact names
    ("on_store_error", lambda value: value in ("FAIL_CLOSED", "FAIL_OPEN"), "POL-4"),
)


def _invalid_record(
    record: Any, kind: str, rules: tuple[tuple[str, Callable[[Any], bool], str], ...]
) -> tuple[str, str, str] | None:
    """ID-4, POL-7: the record itself, each field in order (a missing one is invalid in its
    place; a record has no defaults), then a member of another name, the least in code point
    order. As (error, field, clause); None if the record is valid."""
    what, clause = ("gate", "ID-4") if kind == "invalid_gate" else ("policy", "POL-7")
    if not isinstance(record, Mapping):
        return kind, what, clause
    for name, valid, rule_clause in rules:
        if name not in record:
            return kind, name, clause
        if not valid(record[name]):
            return kind, name, rule_clause
    unknown = sorted(set(record) - {name for name, _, _ in rules})  # str order: code points
    return (kind, unknown[0], clause) if unknown else None


def _invalid(gate: Any, policy: Any, now: Any) -> tuple[str, str, str] | None:
    """POL-5: the first invalid input, as (error, field, clause); gate, then policy, then T."""
    found = _invalid_record(gate, "invalid_gate", _GATE_RULES) or _invalid_record(
        policy, "invalid_policy", _POLICY_RULES
    )
    if found:
        return found
    time = _float(now)
    # TIME-3: finite and -2^53 <= T <= 2^53.
    if time is None or not (math.isfinite(time) and -TIME_LIMIT <= time <= TIME_LIMIT):
        return "invalid_time", "now", "TIME-3"
    return None


def _number(value: Any) -> float:
    number = _float(value)  # one that validation accepted
    assert number is not None
    return number


def decide(count: int, last: float | None, now: float, max_calls: int, cooldown: float) -> Expect:
    """ORD-1 over R = ``count`` events whose greatest is ``last``: cooldown, rate limit, reserve."""
    since = None if last is None else now - last  # DEC-3: T - last over R, before reserving
    if cooldown > 0 and since is not None and since < cooldown:  # CD-1 (negative age: CLK-1)
        return _decision("BLOCK", "COOLDOWN", count, since)  # DEC-2: |R| on a BLOCK
    if count >= max_calls:  # RATE-1
        return _decision("BLOCK", "RATE_LIMIT", count, since)
    return _decision("ALLOW", None, count + 1, since)  # RES-1; DEC-2: |R| + 1 on an ALLOW


def decide_retained(
    firm: int,
    firm_last: float | None,
    maybe: Sequence[float],
    *,
    now: float,
    max_calls: int,
    cooldown: float,
    observed_calls: object = None,
    accept: Callable[[Expect], bool] | None = None,
) -> Expect:
    """RET-4 over R = ``firm`` events (greatest ``firm_last``) plus any k of ``maybe`` (sorted),
    the events a store may already have dropped: the decision of the world with nothing
    dropped, unless ``accept`` rejects it and accepts another world's.

    Only the worlds whose |R| can give ``observed_calls`` (the count the target reported) are
    tried: a decision depends on |R| and its greatest event alone, and k of them whose greatest
    is ``maybe[j]`` need ``j >= k - 1``. So this is O(len(maybe)), however many events there
    are. The oracle and the linearizability model both decide RET-4's open checks here.
    """
    greatest = max([*maybe[-1:], *([] if firm_last is None else [firm_last])], default=None)
    everything = decide(firm + len(maybe), greatest, now, max_calls, cooldown)
    if not maybe or accept is None or accept(everything):
        return everything
    if type(observed_calls) is not int:
        return everything
    for k in (observed_calls - firm, observed_calls - 1 - firm):  # a BLOCK's |R|, an ALLOW's
        if not 0 <= k <= len(maybe):
            continue
        # k dropped-or-kept events whose greatest is maybe[j], for each j >= k - 1
        lasts = {firm_last}
        if k > 0:
            lasts = {t if firm_last is None else max(firm_last, t) for t in maybe[k - 1 :]}
        for last in sorted(lasts, key=lambda t: -math.inf if t is None else t):
            candidate = decide(firm + k, last, now, max_calls, cooldown)
            if accept(candidate):
                return candidate
    return everything


def _decision(status: str, reason: str | None, calls: int, since: float | None) -> Expect:
    return {"status": status, "reason": reason, "calls_in_window": calls, "time_since_last": since}


class GateEvents:
    """One gate's events, each firm or droppable (RET-4), kept as two sorted lists: retention
    (RET-1) and droppability keep or take the earliest events, so each is a cut at one time,
    and a check costs O(log n) however many events a window holds (bulk vectors hold 10,000)."""

    __slots__ = ("droppable", "firm")

    def __init__(self) -> None:
        self.firm: list[float] = []
        self.droppable: list[float] = []

    def __len__(self) -> int:
        return len(self.firm) + len(self.droppable)

    def times(self) -> list[float]:
        """Every event, in order."""
        return sorted(self.firm + self.droppable)

    def greatest(self) -> float | None:
        return max([*self.firm[-1:], *self.droppable[-1:]], default=None)

    def holds(self, time: float) -> bool:
        return any(
            index < len(events) and events[index] == time
            for events in (self.firm, self.droppable)
            for index in [bisect_left(events, time)]
        )

    def retain_from(self, cutoff: float) -> None:
        """RET-2: discard every event before ``cutoff``, for good."""
        del self.firm[: bisect_left(self.firm, cutoff)]
        del self.droppable[: bisect_left(self.droppable, cutoff)]

    def add(self, time: float) -> None:
        insort(self.firm, time)

    def mark_droppable_before(self, threshold: float) -> None:
        """RET-4: every event before ``threshold`` becomes droppable, and stays so."""
        cut = bisect_left(self.firm, threshold)
        if cut:
            self.droppable = sorted(self.droppable + self.firm[:cut])
            del self.firm[:cut]


class Oracle:
    """The state of every gate, and the expected result of each operation on it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh store: no events, not failing."""
        self.events: dict[GateKey, GateEvents] = {}
        self.latest: dict[GateKey, tuple[Any, ...]] = {}  # gate -> policy of its latest check
        self.greatest = -math.inf  # RET-4: T', the greatest T of a check the store carried out
        self.failing = False  # set by store_fail, unset by store_recover (ERR-1, ERR-2)

    def clear(self, gate: Any) -> Verdict:
        """CLR-1: every event of the gate goes; no other gate changes. CLR-3: an invalid gate
        is rejected first, even while the store fails; a failing store clears nothing."""
        invalid = _invalid_record(gate, "invalid_gate", _GATE_RULES)
        if invalid is not None:
            found = {"error": invalid[0], "field": invalid[1]}
            return Verdict(found, False, frozenset({"CLR-3", invalid[2]}))
        if self.failing:
            return Verdict(_STORE_ERROR, False, frozenset({"CLR-1"}))
        self.events.pop((gate["namespace"], gate["action"], gate["principal"]), None)
        return Verdict({"ok": True}, False, frozenset({"CLR-1"}))

    def clear_all(self) -> Verdict:
        """CLR-2: every gate's events go; a failing store clears nothing."""
        if self.failing:
            return Verdict(_STORE_ERROR, False, frozenset({"CLR-2"}))
        self.events.clear()
        return Verdict({"ok": True}, False, frozenset({"CLR-2"}))

    def check(
        self,
        gate: Any,
        policy: Any,
        now: Any,
        choose: Callable[[Expect], bool] | None = None,
        observed: Any = None,
    ) -> Verdict:
        """One check. Where RET-4 allows several results, the one ``choose`` accepts (else the
        one with nothing dropped) is taken, and the state follows it; ``observed`` is the
        decision record the target gave, which narrows the search (``decide_retained``)."""
        invalid = _invalid(gate, policy, now)
        if invalid is not None:  # POL-5: no decision, no state changes; ERR-4 even when failing
            found = {"error": invalid[0], "field": invalid[1]}
            clauses = {"POL-5", invalid[2], *(["ERR-4"] if self.failing else [])}
            return Verdict(found, False, frozenset(clauses))
        key: GateKey = (gate["namespace"], gate["action"], gate["principal"])  # ID-1: exact
        time, cooldown, max_calls = _number(now), _number(policy["cooldown"]), policy["max_calls"]
        window = None if policy["window"] is None else _number(policy["window"])
        if self.failing:  # ERR-1: STORE_ERROR, by on_store_error; ERR-2: no record, no prune
            status = "ALLOW" if policy.get("on_store_error") == "FAIL_OPEN" else "BLOCK"
            found = _decision(status, "STORE_ERROR", 0, None)
            return Verdict(found, False, frozenset({"ERR-1", "ERR-2", "DEC-1"}))
        events = self.events.setdefault(key, GateEvents())
        held_before = len(events)
        # RET-1: retained iff the window is null (RET-3) or t >= T - window (binary64, TIME-2);
        # RET-2: the events not retained are gone for good, whatever the decision.
        if window is not None:
            events.retain_from(time - window)
        maybe = events.droppable
        observed_calls = observed.get("calls_in_window") if isinstance(observed, Mapping) else None
        found = decide_retained(
            len(events.firm), max(events.firm, default=None), maybe,
            now=time, max_calls=max_calls, cooldown=cooldown,
            observed_calls=observed_calls, accept=choose,
        )  # fmt: skip
        status, reason = found["status"], found["reason"]
        greatest = events.greatest()
        held = {
            "RET-1": len(events) > 0,
            "RET-2": len(events) < held_before,
            "RET-3": window is None,
            "RET-4": bool(maybe),
            "CLK-1": greatest is not None and greatest > time,
            "RES-1": status == "ALLOW",
            "RES-2": status == "ALLOW" and events.holds(time),
            "CD-1": reason == "COOLDOWN",
            "ORD-1": reason == "COOLDOWN" and found["calls_in_window"] >= max_calls,
            "CD-2": reason == "COOLDOWN" and window is not None and cooldown > window,
            "RATE-1": reason == "RATE_LIMIT",
            "POL-6": self.latest.get(key, (max_calls, window, cooldown))
            != (max_calls, window, cooldown),
            "ID-2": any(other != key and len(evs) for other, evs in self.events.items()),
        }
        open_check = bool(maybe)
        if status == "ALLOW":
            events.add(time)  # RES-1: exactly one event at T; RES-2: duplicates count
        self.latest[key] = (max_calls, window, cooldown)
        self.greatest = max(self.greatest, time)
        for other, held_events in self.events.items():
            # RET-4: droppable once t < T' - window, the window of the gate's latest check,
            # and for good; never under a null window.
            other_window = self.latest[other][1]
            if other_window is not None:
                held_events.mark_droppable_before(self.greatest - other_window)
        clauses = {"DEC-1", "DEC-2", "DEC-3", "DEC-4"} | {c for c, h in held.items() if h}
        return Verdict(found, open_check, frozenset(clauses))
