"""The values of ActionGate: Gate, Policy, Decision, Result and their enums.

Gate and Policy validate at construction (SEMANTICS.md ID-3, POL-1 to POL-4), so a value that
exists is a valid one and nothing downstream checks again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from ._errors import InvalidGate, InvalidPolicy

__all__ = [
    "MAX_CALLS_LIMIT",
    "MISSING",
    "SCHEMA_VERSION",
    "BlockReason",
    "Decision",
    "Gate",
    "Mode",
    "Policy",
    "Result",
    "Status",
    "StoreErrorMode",
]

SCHEMA_VERSION = "1.0"
MAX_CALLS_LIMIT = 2**53 - 1  # POL-1: the largest integer every JSON reader holds exactly

T = TypeVar("T")


class Mode(Enum):
    """How a host surfaces a BLOCK; never changes the decision (MODE-1)."""

    HARD = "HARD"
    SOFT = "SOFT"


class StoreErrorMode(Enum):
    """The decision when the store fails (ERR-1)."""

    FAIL_CLOSED = "FAIL_CLOSED"
    FAIL_OPEN = "FAIL_OPEN"


class Status(Enum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"


class BlockReason(Enum):
    RATE_LIMIT = "RATE_LIMIT"
    COOLDOWN = "COOLDOWN"
    STORE_ERROR = "STORE_ERROR"


def _check_gate_field(name: str, value: object) -> None:
    # ID-3: a string of Unicode scalar values; a lone surrogate cannot be encoded as UTF-8.
    if not isinstance(value, str):
        raise InvalidGate(name, f"{name} must be a string, got {value!r}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidGate(
                name, f"{name} must not contain lone surrogates, got {value!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class Gate:
    """The identity of an action stream (ID-1): three strings, compared exactly."""

    namespace: str
    action: str
    principal: str = "global"
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_gate_field("namespace", self.namespace)
        _check_gate_field("action", self.action)
        _check_gate_field("principal", self.principal)
        # Gates are dict keys on every check; hash the fields once, not per lookup.
        object.__setattr__(self, "_hash", hash((self.namespace, self.action, self.principal)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        # For people only: the joined form is ambiguous (ID-2), so nothing parses it.
        return f"{self.namespace}:{self.action}@{self.principal}"

    @property
    def key(self) -> str:
        """An injective string for this gate: each field is prefixed by its length.

        Upstream joined the fields with ':', so ("a:b", "c") and ("a", "b:c") collided; a store
        written for upstream that keys by ``gate.key`` gets distinct keys here (ID-2).
        """
        ns, action = self.namespace, self.action
        return f"ag:{len(ns)}:{ns}:{len(action)}:{action}:{self.principal}"

    def to_dict(self) -> dict[str, str]:
        return {"namespace": self.namespace, "action": self.action, "principal": self.principal}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gate:
        """Read a gate record; every field is required, none may be extra."""
        for name in _GATE_FIELDS:
            if name not in data:
                raise InvalidGate(name, f"gate has no {name}")
        unknown = sorted(set(data) - set(_GATE_FIELDS))
        if unknown:
            raise InvalidGate(unknown[0], f"unknown gate field {unknown[0]!r}")
        return cls(data["namespace"], data["action"], data["principal"])


_GATE_FIELDS = ("namespace", "action", "principal")


def _number(name: str, value: object) -> float:
    # bool is an int subclass in Python; the spec says a boolean is not a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidPolicy(name, f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise InvalidPolicy(name, f"{name} must be finite, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidPolicy(name, f"{name} must be finite, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class Policy:
    """The parameters of a check (POL-1 to POL-4); invalid values raise InvalidPolicy."""

    max_calls: int = 3
    window: float | None = 60.0
    cooldown: float = 0.0
    mode: Mode = Mode.HARD
    on_store_error: StoreErrorMode = StoreErrorMode.FAIL_CLOSED

    def __post_init__(self) -> None:
        max_calls = self.max_calls
        if isinstance(max_calls, bool) or not isinstance(max_calls, int):
            raise InvalidPolicy("max_calls", f"max_calls must be an integer, got {max_calls!r}")
        if not 0 <= max_calls <= MAX_CALLS_LIMIT:
            raise InvalidPolicy(
                "max_calls", f"max_calls must be between 0 and 2**53 - 1, got {max_calls!r}"
            )
        if self.window is not None:
            window = _number("window", self.window)
            if not window > 0:
                raise InvalidPolicy("window", f"window must be > 0 or None, got {self.window!r}")
            object.__setattr__(self, "window", window)
        cooldown = _number("cooldown", self.cooldown)
        if not cooldown >= 0:
            raise InvalidPolicy("cooldown", f"cooldown must be >= 0, got {self.cooldown!r}")
        object.__setattr__(self, "cooldown", cooldown)
        object.__setattr__(self, "mode", _member(Mode, "mode", self.mode))
        object.__setattr__(
            self, "on_store_error", _member(StoreErrorMode, "on_store_error", self.on_store_error)
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "max_calls": self.max_calls,
            "window": self.window,
            "cooldown": self.cooldown,
            "mode": self.mode.value,
            "on_store_error": self.on_store_error.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Read a policy record, validating fields in the order of POL-5."""
        unknown = sorted(set(data) - set(_POLICY_FIELDS))
        if unknown:
            raise InvalidPolicy(unknown[0], f"unknown policy field {unknown[0]!r}")
        for name in _POLICY_FIELDS[:3]:
            if name not in data:
                raise InvalidPolicy(name, f"policy has no {name}")
        return cls(
            max_calls=data["max_calls"],
            window=data["window"],
            cooldown=data["cooldown"],
            mode=data.get("mode", Mode.HARD),
            on_store_error=data.get("on_store_error", StoreErrorMode.FAIL_CLOSED),
        )


_POLICY_FIELDS = ("max_calls", "window", "cooldown", "mode", "on_store_error")


E = TypeVar("E", bound=Enum)


def _member(enum: type[E], name: str, value: object) -> E:
    # A member, or its exact name (how JSON records and the protocol spell it).
    if isinstance(value, enum):
        return value
    if isinstance(value, str) and value in enum.__members__:
        return enum[value]
    raise InvalidPolicy(name, f"{name} must be one of {list(enum.__members__)}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check (SEMANTICS.md section 6). Truthy iff allowed."""

    status: Status
    gate: Gate
    policy: Policy
    reason: BlockReason | None = None
    message: str | None = None
    calls_in_window: int = 0
    time_since_last: float | None = None
    now: float = field(kw_only=True)  # DEC-4: the time T the check used

    @property
    def allowed(self) -> bool:
        return self.status is Status.ALLOW

    @property
    def blocked(self) -> bool:
        return self.status is Status.BLOCK

    def __bool__(self) -> bool:
        return self.status is Status.ALLOW

    def to_dict(self) -> dict[str, object]:
        """The decision record of spec/decision.schema.json."""
        return {
            "schema_version": SCHEMA_VERSION,
            "status": self.status.value,
            "reason": None if self.reason is None else self.reason.value,
            "message": self.message,
            "gate": self.gate.to_dict(),
            "policy": self.policy.to_dict(),
            "calls_in_window": self.calls_in_window,
            "time_since_last": self.time_since_last,
            "now": self.now,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Read a record written by ``to_dict`` (or by any conforming implementation)."""
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version must be {SCHEMA_VERSION!r}, got {data.get('schema_version')!r}"
            )
        reason = data["reason"]
        return cls(
            status=Status(data["status"]),
            gate=Gate.from_dict(data["gate"]),
            policy=Policy.from_dict(data["policy"]),
            reason=None if reason is None else BlockReason(reason),
            message=data["message"],
            calls_in_window=data["calls_in_window"],
            time_since_last=data["time_since_last"],
            now=data["now"],
        )


# Decision is frozen, so its generated __init__ sets each field through object.__setattr__,
# which costs about a microsecond a check. The engine builds decisions with the slots' own
# setters instead: the same object, about half the cost.
(
    _SET_STATUS,
    _SET_GATE,
    _SET_POLICY,
    _SET_REASON,
    _SET_MESSAGE,
    _SET_CALLS,
    _SET_AGE,
    _SET_NOW,
) = (vars(Decision)[name].__set__ for name in Decision.__slots__)


def new_decision(  # noqa: PLR0917 - positional: it is the hot path
    status: Status,
    gate: Gate,
    policy: Policy,
    reason: BlockReason | None,
    message: str | None,
    calls_in_window: int,
    time_since_last: float | None,
    now: float,
) -> Decision:
    """``Decision(...)`` for the engine's hot path; the arguments are already valid."""
    decision: Decision = object.__new__(Decision)
    _SET_STATUS(decision, status)
    _SET_GATE(decision, gate)
    _SET_POLICY(decision, policy)
    _SET_REASON(decision, reason)
    _SET_MESSAGE(decision, message)
    _SET_CALLS(decision, calls_in_window)
    _SET_AGE(decision, time_since_last)
    _SET_NOW(decision, now)
    return decision


class _Missing:
    """Marks a Result with no value, so a function that returned None still has one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Result(Generic[T]):
    """What ``guard_result`` returns: the decision, and the value iff the function ran."""

    decision: Decision
    _value: T | _Missing = MISSING

    @property
    def ok(self) -> bool:
        return self.decision.allowed

    @property
    def has_value(self) -> bool:
        return not isinstance(self._value, _Missing)

    @property
    def value(self) -> T | None:
        return None if isinstance(self._value, _Missing) else self._value

    def unwrap(self) -> T:
        """The value; raises ValueError if the call was blocked."""
        if isinstance(self._value, _Missing):
            raise ValueError(f"no value: {self.decision.message or 'blocked'}")
        return self._value

    def unwrap_or(self, default: T) -> T:
        return default if isinstance(self._value, _Missing) else self._value
