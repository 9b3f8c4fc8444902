"""What the checker reads: operations (one check as a client saw it) and histories of them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "DecisionFields",
    "History",
    "Operation",
    "fields_from_record",
    "gate_text",
    "policy_text",
    "show",
    "times_text",
]


def show(value: Any) -> str:
    """A value as JSON spells it (``null``, ``true``, ``"text"``): what a porter reads in the
    protocol, not a Python repr. NaN and the infinities, which JSON lacks, as Python writes them."""
    return json.dumps(value, ensure_ascii=False)


def gate_text(gate: tuple[str, str, str]) -> str:
    return "/".join(show(part) for part in gate)


def policy_text(policy: Mapping[str, Any]) -> str:
    return " ".join(
        f"{name}={show(policy.get(name))}" for name in ("max_calls", "window", "cooldown")
    )


def times_text(times: Sequence[float]) -> str:
    """Event times as a JSON list, the middle elided when there are many."""
    if len(times) <= 8:
        return show(list(times))
    shown = ", ".join(show(t) for t in times[-5:])
    return f"[{show(times[0])}, ... ({len(times) - 6} more), {shown}] ({len(times)} events)"


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
            f"time_since_last={show(self.time_since_last)}"
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
