"""Engine mutants: bugs that live above the store, each one patch to the reference.

``PATCHES[name]()`` applies one in this process; ``python3 -m tests.mutants.serve NAME`` applies
it and serves the patched reference over the adapter protocol. Each patch replaces one name the
reference looks up when it runs (a function of ``actiongate._engine``, a validator of
``actiongate._types``, a dataclass hook; for the order of validation across gate and policy, the
adapter's check, which is where the reference takes that order), wrapping the original where it
can, so the mutant is the reference but for its bug; the first line of its docstring says what
the bug is.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import actiongate._engine as engine_module
import actiongate._types as types_module
from actiongate import (
    Decision,
    Gate,
    InvalidGate,
    InvalidInput,
    InvalidTime,
    Policy,
    StoreErrorMode,
)
from actiongate._decide import decision_from_reply as _decision_from_reply
from actiongate._decide import store_error_decision
from actiongate._types import BlockReason, Mode, Status
from actiongate_conformance.targets.adapter import ReferenceAdapter, _error, read_policy

__all__ = ["PATCHES"]

TIME_LIMIT = 2.0**53  # TIME-3


def _replace(owner: object, name: str, value: object) -> None:
    """The patch: ``owner.name`` becomes ``value``. A name the reference does not have is an
    error, not a mutant that changes nothing."""
    if not hasattr(owner, name):
        raise AttributeError(f"{owner!r} has no {name!r} to patch")
    setattr(owner, name, value)


def rate_limit_first() -> None:
    """Block reason tests the rate limit before the cooldown: over both, it says RATE_LIMIT."""

    def decision_from_reply(gate: Gate, policy: Policy, now: float, reply: object) -> Decision:
        decision = _decision_from_reply(gate, policy, now, reply)
        if decision.blocked and decision.calls_in_window >= policy.max_calls:
            return dataclasses.replace(decision, reason=BlockReason.RATE_LIMIT)
        return decision

    _replace(engine_module, "decision_from_reply", decision_from_reply)


def negative_age_clamped() -> None:
    """``time_since_last`` clamped to >= 0, as if an age could not be negative."""

    def decision_from_reply(gate: Gate, policy: Policy, now: float, reply: object) -> Decision:
        decision = _decision_from_reply(gate, policy, now, reply)
        age = decision.time_since_last
        if age is not None and age < 0:
            return dataclasses.replace(decision, time_since_last=0.0)
        return decision

    _replace(engine_module, "decision_from_reply", decision_from_reply)


def soft_mode_allows() -> None:
    """SOFT mode reports a BLOCK as ALLOW ("log, don't block"), though nothing is recorded."""

    def decision_from_reply(gate: Gate, policy: Policy, now: float, reply: object) -> Decision:
        decision = _decision_from_reply(gate, policy, now, reply)
        if decision.blocked and policy.mode is Mode.SOFT:
            return dataclasses.replace(decision, status=Status.ALLOW, reason=None)
        return decision

    _replace(engine_module, "decision_from_reply", decision_from_reply)


def fail_open_null_reason() -> None:
    """A FAIL_OPEN store failure is an ALLOW with reason null, not STORE_ERROR."""

    def failed(gate: Gate, policy: Policy, now: float, error: BaseException) -> Decision:
        decision = store_error_decision(gate, policy, now, error)
        if policy.on_store_error is StoreErrorMode.FAIL_OPEN:
            return dataclasses.replace(decision, reason=None)
        return decision

    _replace(engine_module, "store_error_decision", failed)


def nan_time_accepted() -> None:
    """The range of ``T`` tested as rejecting ``T < -2**53 or T > 2**53``, which NaN passes."""

    def check_now(now: object) -> float:
        if isinstance(now, bool) or not isinstance(now, (int, float)):
            raise InvalidTime("now", f"the clock must return a number, got {now!r}")
        if now < -TIME_LIMIT or now > TIME_LIMIT:
            raise InvalidTime("now", f"now must be finite and within +-2**53, got {now!r}")
        return float(now)

    _replace(engine_module, "_check_now", check_now)


def lone_surrogate_accepted() -> None:
    """Gate fields checked to be strings only, so a lone surrogate makes a valid gate."""

    def check_gate_field(name: str, value: object) -> None:
        if not isinstance(value, str):
            raise InvalidGate(name, f"{name} must be a string, got {value!r}")

    _replace(types_module, "_check_gate_field", check_gate_field)


def nfc_gates() -> None:
    """Gate fields normalized to NFC, so NFC and NFD spellings are one gate."""
    original = Gate.__post_init__

    def post_init(self: Gate) -> None:
        for name in ("namespace", "action", "principal"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, unicodedata.normalize("NFC", value))
        original(self)

    _replace(Gate, "__post_init__", post_init)


def policy_before_gate() -> None:
    """A check validates the policy before the gate, out of POL-5's order."""
    original = ReferenceAdapter._check

    def check(self: ReferenceAdapter, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            read_policy(request.get("policy"))
        except InvalidInput as error:
            return _error(error.kind, error.field, str(error))
        return original(self, request)  # the gate, the policy again, the time

    _replace(ReferenceAdapter, "_check", check)


PATCHES: dict[str, Callable[[], None]] = {
    patch.__name__: patch
    for patch in (
        rate_limit_first,
        negative_age_clamped,
        soft_mode_allows,
        fail_open_null_reason,
        nan_time_accepted,
        lone_surrogate_accepted,
        nfc_gates,
        policy_before_gate,
    )
}
