"""Unseen engine mutants: patches of the reference, written after the suite.

Like ``tests/mutants/unseen.py``, written from SEMANTICS.md alone, without reading the suite's
strategies or vectors and without running the suite on them. ``UNSEEN_PATCHES[name]()`` applies
one in this process, as ``tests.mutants.engine.PATCHES`` does; ``python3 -m tests.mutants.serve
NAME`` serves the patched reference over the adapter protocol. Each patch wraps the name the
reference looks up where it can, so the mutant is the reference but for its bug, the first line
of its docstring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import actiongate._engine as engine_module
from actiongate import Decision, Engine, Gate, Policy
from actiongate._decide import decision_from_reply as _decision_from_reply
from actiongate._types import BlockReason, Status, new_decision

from .engine import _replace

__all__ = ["UNSEEN_PATCHES"]


def zero_age_as_null() -> None:
    """``time_since_last`` written as ``since || null``: an age of 0 (an event at ``T``) is null."""

    def decision_from_reply(gate: Gate, policy: Policy, now: float, reply: object) -> Decision:
        decision = _decision_from_reply(gate, policy, now, reply)
        if decision.time_since_last == 0:  # a port's encoder: 0 (and -0) is falsy
            return dataclasses.replace(decision, time_since_last=None)
        return decision

    _replace(engine_module, "decision_from_reply", decision_from_reply)


def max_calls_zero_short_circuit() -> None:
    """``max_calls`` 0 answered BLOCK ``RATE_LIMIT`` at once, without the store round trip."""
    original = Engine.check

    def check(self: Engine, gate: Gate, policy: Policy | None = None) -> Decision:
        resolved = self._resolve(gate, policy)  # the gate and the policy validated, POL-5
        if resolved.max_calls != 0:
            return original(self, gate, policy)
        now = engine_module._check_now(self._clock())  # then the time
        decision = new_decision(
            Status.BLOCK,
            gate,
            resolved,
            BlockReason.RATE_LIMIT,
            "rate limit: max_calls is 0",
            0,
            None,
            now,
        )
        if self._emitter:
            self._emitter.emit(decision)
        return decision

    _replace(Engine, "check", check)


UNSEEN_PATCHES: dict[str, Callable[[], None]] = {
    patch.__name__: patch for patch in (zero_age_as_null, max_calls_zero_short_circuit)
}
