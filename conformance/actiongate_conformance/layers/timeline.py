"""Steps for people: a vector's timeline of one gate, with what the target answered and the
events the spec says the gate holds after each step (the oracle's)."""

from __future__ import annotations

import json
from typing import Any

from ..checkers.oracle import Oracle
from ..data.vectors import ExpectedDecision, ExpectedError, ExpectedStatus, Step, Vector

__all__ = ["describe_step", "show", "timeline"]


def timeline(vector: Vector, upto: int | None = None, responses: tuple[Any, ...] = ()) -> list[str]:
    """The vector's steps as lines, with what each got when ``responses`` are known.

    With ``upto``, the steps up to it that touch its gate (and the gate-less ones), each with
    the gate's events after it as the spec has them (the oracle's), so a reader sees which
    events a check should have counted. A bulk's checks are one line (the failing one apart).
    """
    steps = vector.steps if upto is None else vector.steps[: upto + 1]
    focus = vector.steps[upto].gate if upto is not None else None
    shown = [
        group
        for group in _groups(steps)
        if focus is None or group[0].gate is None or group[0].gate == focus
    ]
    events = _events_after(steps, focus, {group[-1].index for group in shown}) if focus else {}
    lines = []
    for group in shown:
        step, last = group[0], group[-1]
        got = [responses[s.index] for s in group if s.index < len(responses)]
        if len(group) == 1:
            line = f"t={show(step.now):<22} {describe_step(step)}"
            line += f"   -> got {_outcome_of(got[0])}" if got else ""
        else:
            line = f"t={show(step.now)}..{show(last.now)} {_describe_bulk(group)}"
            line += f"   -> got {_tally(got)}" if got else ""
        if step.note:
            line += f"   # {step.note}"
        lines.append(line)
        if last.index in events:
            spec = _times(events[last.index])
            lines.append(f"{'':<24} the spec's events of this gate after it: {spec}")
    return lines


def _groups(steps: tuple[Step, ...]) -> list[list[Step]]:
    """The steps, a bulk's consecutive checks together; the final step is always alone."""
    groups: list[list[Step]] = []
    for step in steps:
        previous = groups[-1][-1] if groups else None
        joins = (
            previous is not None
            and step.repeat is not None
            and previous.repeat is not None
            and step.number == previous.number
            and step is not steps[-1]
        )
        if joins:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def _describe_bulk(group: list[Step]) -> str:
    policy = ", ".join(f"{key}={show(value)}" for key, value in (group[0].policy or {}).items())
    assert group[0].repeat is not None
    first, count = group[0].repeat
    checks = f"checks {first}..{first + len(group) - 1} of {count}"
    return f"bulk {_gate(group[0].gate)} [{policy}] {checks}, expect ALLOW each"


def _tally(responses: list[Any]) -> str:
    outcomes: dict[str, int] = {}
    for response in responses:
        decision = response.get("decision") if isinstance(response, dict) else None
        text = "no decision"
        if isinstance(decision, dict):
            text = f"{decision.get('status')} {decision.get('reason') or ''}".strip()
        outcomes[text] = outcomes.get(text, 0) + 1
    return ", ".join(f"{text} x{count}" for text, count in outcomes.items())


def _times(times: list[float]) -> str:
    """Event times, the middle elided past a dozen: bulk windows hold thousands."""
    if len(times) <= 12:
        return show(times)
    head, tail = ", ".join(map(show, times[:3])), ", ".join(map(show, times[-3:]))
    return f"{len(times)} events [{head}, ..., {tail}]"


def _events_after(steps: tuple[Step, ...], gate: Any, wanted: set[int]) -> dict[int, list[float]]:
    """The oracle's events of ``gate`` after each step in ``wanted``; {} when the gate is not
    a valid key."""
    try:
        key = (gate["namespace"], gate["action"], gate["principal"])
        hash(key)
    except (TypeError, KeyError):
        return {}
    model = Oracle()
    after: dict[int, list[float]] = {}
    for step in steps:
        if step.op == "check":
            model.check(step.gate, step.policy, step.now)
        elif step.op == "clear" and step.gate is not None:
            model.clear(step.gate)
        elif step.op == "clear_all":
            model.clear_all()
        else:
            model.failing = step.op == "store_fail"
        if step.index in wanted:
            held = model.events.get(key)
            after[step.index] = held.times() if held is not None else []
    return after


def describe_step(step: Step) -> str:
    expect = step.expect
    if step.op != "check":
        gate = f" {_gate(step.gate)}" if step.op == "clear" else ""  # null included
        wanted = ""
        if isinstance(expect, ExpectedError):
            wanted = f" expect error {expect.error} ({show(expect.field)})"
        return f"{step.op}{gate}{wanted}"
    policy = step.policy
    policy_text = (  # a policy as written may be any JSON value (POL-7)
        "[" + ", ".join(f"{key}={show(value)}" for key, value in policy.items()) + "]"
        if isinstance(policy, dict)
        else show(policy)
    )
    if isinstance(expect, ExpectedDecision):
        wanted = _decision_text(
            expect.status, expect.reason, expect.calls_in_window, expect.time_since_last
        )
    elif isinstance(expect, ExpectedStatus):
        wanted = f"{expect.status} {expect.reason or ''}(a bulk's check, {step.label})"
    elif isinstance(expect, ExpectedError):
        wanted = f"error {expect.error} ({expect.field})"
    else:
        wanted = "?"
    return f"check {_gate(step.gate)} {policy_text} expect {wanted}"


def _decision_text(status: Any, reason: Any, calls: Any, since_last: Any) -> str:
    return f"{status} {reason or ''} calls={calls} since_last={show(since_last)}"


def _outcome_of(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("decision"), dict):
        d = response["decision"]
        return _decision_text(
            d.get("status"), d.get("reason"), d.get("calls_in_window"), d.get("time_since_last")
        )
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        error = response["error"]
        return f"error {error.get('kind')} ({error.get('field')})"
    return show(response)


def _gate(gate: Any) -> str:
    if isinstance(gate, dict) and set(gate) == {"namespace", "action", "principal"}:
        return "(" + ", ".join(show(gate[k]) for k in ("namespace", "action", "principal")) + ")"
    return show(gate)


def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)
