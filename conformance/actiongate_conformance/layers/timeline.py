"""Steps for people: a vector's timeline of one gate, with what the target answered and the
events the spec says the gate holds after each step (the oracle's)."""

from __future__ import annotations

import json
from typing import Any

from ..checkers.oracle import Oracle
from ..data.vectors import ExpectedDecision, ExpectedError, Step, Vector

__all__ = ["describe_step", "show", "timeline"]


def timeline(vector: Vector, upto: int | None = None, responses: tuple[Any, ...] = ()) -> list[str]:
    """The vector's steps as lines, with what each got when ``responses`` are known.

    With ``upto``, the steps up to it that touch its gate (and the gate-less ones), each with
    the gate's events after it as the spec has them (the oracle's), so a reader sees which
    events a check should have counted.
    """
    steps = vector.steps if upto is None else vector.steps[: upto + 1]
    focus = vector.steps[upto].gate if upto is not None else None
    events = _events_after(steps, focus) if focus is not None else {}
    lines = []
    for step in steps:
        if focus is not None and step.gate is not None and step.gate != focus:
            continue
        line = f"t={show(step.now):<22} {describe_step(step)}"
        if step.index < len(responses):
            line += f"   -> got {_outcome_of(responses[step.index])}"
        if step.note:
            line += f"   # {step.note}"
        lines.append(line)
        if step.index in events:
            lines.append(f"{'':<24} events of this gate after it: {show(events[step.index])}")
    return lines


def _events_after(steps: tuple[Step, ...], gate: Any) -> dict[int, list[float]]:
    """The oracle's events of ``gate`` after each step; {} when the gate is not a valid key."""
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
        held = model.events.get(key)
        after[step.index] = held.times() if held is not None else []
    return after


def describe_step(step: Step) -> str:
    if step.op != "check":
        gate = f" {_gate(step.gate)}" if step.gate is not None else ""
        return f"{step.op}{gate}"
    policy = step.policy or {}
    policy_text = ", ".join(f"{key}={show(value)}" for key, value in policy.items())
    expect = step.expect
    if isinstance(expect, ExpectedDecision):
        wanted = _decision_text(
            expect.status, expect.reason, expect.calls_in_window, expect.time_since_last
        )
    elif isinstance(expect, ExpectedError):
        wanted = f"error {expect.error} ({expect.field})"
    else:
        wanted = "?"
    return f"check {_gate(step.gate)} [{policy_text}] expect {wanted}"


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
