"""The fault cases, as data, and what the spec expects of each of their checks.

A case is checks on one fresh gate, some marked to fail. Each case runs under both values of
``on_store_error`` (``MODES``), each run on a gate of its own, at times above every earlier
run's, then again as its *control*: the same checks without the failing ones, ``CONTROL``
later on another gate, which ERR-2 says every later check must match.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actiongate import Gate

from ...checkers.linearizability import DecisionFields, step

__all__ = [
    "CONTROL",
    "FAULT_CASES",
    "MODES",
    "FaultCase",
    "control_of",
    "expected_checks",
    "gates",
]

CONTROL = 500.0  # a case's control runs this long after its base, before the next case's
MODES = ("FAIL_CLOSED", "FAIL_OPEN")  # each case runs under both on_store_error values
RUN = 1000.0  # the n-th run of a case starts at n * RUN


@dataclass(frozen=True)
class FaultCase:
    """Checks on one fresh gate; the steps marked ``fail`` meet a failing store (their one store
    call raises, for a Python store; ``store_fail`` before them, for a port).

    ``policy`` is the JSON shape without ``on_store_error``: each case runs once under
    FAIL_CLOSED and once under FAIL_OPEN. Times are relative to the run's own base.
    """

    id: str
    description: str
    clauses: tuple[str, ...]
    policy: Mapping[str, Any]
    steps: tuple[tuple[float, bool], ...]


def _case(
    id: str, description: str, clauses: str, policy: tuple[int, float | None, float], steps: str
) -> FaultCase:
    max_calls, window, cooldown = policy
    parsed = tuple((float(item.rstrip("!")), item.endswith("!")) for item in steps.split())
    return FaultCase(
        id,
        description,
        tuple(clauses.split()),
        {"max_calls": max_calls, "window": window, "cooldown": cooldown, "mode": "SOFT"},
        parsed,
    )


# Steps: times, "!" marking a check whose store call fails.
FAULT_CASES: tuple[FaultCase, ...] = (
    _case("empty-gate", "a failed first check records nothing", "ERR-1 ERR-2",
          (2, 10.0, 0.0), "1! 2 3"),
    _case("last-slot", "a failed check does not take the last slot", "ERR-1 ERR-2 RES-1",
          (2, 10.0, 0.0), "1 2! 3 4"),
    _case("cooldown", "a failed check starts no cooldown", "ERR-1 ERR-2 CD-1",
          (5, 10.0, 5.0), "1! 2"),
    _case("no-prune", "a failed check prunes nothing", "ERR-1 ERR-2 RET-2",
          (5, 10.0, 0.0), "0 100! 5"),
    _case("max-calls-zero", "max_calls 0 still fails as STORE_ERROR", "ERR-1 RATE-1",
          (0, 10.0, 0.0), "1! 2"),
    _case("repeated", "consecutive failures record nothing", "ERR-1 ERR-2",
          (3, 10.0, 0.0), "1 2! 3! 4! 5 6 7"),
)  # fmt: skip


def control_of(case: FaultCase) -> FaultCase:
    """``case`` with its failing checks left out: what ERR-2 says later checks must match."""
    return dataclasses.replace(case, steps=tuple(item for item in case.steps if not item[1]))


def expected_checks(
    case: FaultCase, mode: str, base: float
) -> list[tuple[int, float, bool, DecisionFields]]:
    """Each check of ``case`` run at ``base``: its index, time, whether its store fails, and
    the decision the spec expects of it under ``on_store_error`` ``mode``."""
    events: tuple[float, ...] = ()
    store_error = DecisionFields(
        "ALLOW" if mode == "FAIL_OPEN" else "BLOCK", "STORE_ERROR", 0, None
    )
    out = []
    for index, (offset, fail) in enumerate(case.steps):
        now = base + offset
        if fail:
            expected = store_error  # ERR-1; ERR-2: the state stays as it was
        else:
            events, expected = step(events, now, case.policy)
        out.append((index, now, fail, expected))
    return out


def gates(case: FaultCase, mode: str) -> tuple[Gate, Gate]:
    """The gates of a run of ``case`` and of its control."""
    gate = Gate("actiongate-conformance", "faults", f"{case.id}/{mode}")
    return gate, Gate(gate.namespace, gate.action, f"{gate.principal}/control")
