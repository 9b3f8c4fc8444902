"""What an example sent and got, and how one answer is held to the oracle's expectation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...checkers.oracle import Expect
from ...data.vectors import ExpectedDecision, ExpectedError, Step
from ..vectors import compare
from .strategies import FIELD_CLAUSES

__all__ = ["Counterexample", "Trace", "mismatches"]


@dataclass
class Trace:
    """What one example sent (as vector steps, with the oracle's expectations) and got."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    clauses: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)
    open_steps: list[int] = field(default_factory=list)  # results RET-4 leaves open


class Counterexample(AssertionError):
    """The target disagreed with the oracle at the last step of ``trace``."""

    def __init__(
        self, trace: Trace, mismatches: list[tuple[str, str]], used: frozenset[str] = frozenset()
    ) -> None:
        super().__init__("; ".join(text for _, text in mismatches))
        self.trace = trace
        self.fields = [name for name, _ in mismatches]  # the response's wrong fields
        self.problems = [text for _, text in mismatches]
        # The clauses the failing step breaks: those the oracle applied to it (every decision
        # clause is applied to every check, so only those of the wrong fields), unordered.
        self.clauses = {c for c in used if not c.startswith("DEC-")}
        self.clauses |= {FIELD_CLAUSES[name] for name in self.fields if name in FIELD_CLAUSES}


def mismatches(
    record: Mapping[str, Any], expect: Expect | None, response: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Each field of ``response`` that differs from ``expect`` (by runner.compare), with a
    line for people; empty when none does."""
    if "adapter_fault" in response:
        return [("response", response["adapter_fault"])]
    return [
        (m.field, f"{m.field}: expected {_show(m.expected)}, got {_show(m.actual)}")
        for m in compare(_step(record, expect), response)
    ]


def _step(record: Mapping[str, Any], expect: Expect | None) -> Step:
    expected: ExpectedDecision | ExpectedError | None = None
    if expect is not None and "error" in expect:
        expected = ExpectedError(expect["error"], expect["field"])
    elif expect is not None:
        expected = ExpectedDecision(**expect)
    return Step(0, record["op"], record["now"], record.get("gate"), record.get("policy"), expected)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)
