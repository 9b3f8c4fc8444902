"""The entry point: ``check_history`` partitions a history by gate and judges each part."""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from .counterexample import Counterexample, counterexample
from .history import History, Operation
from .model import Model, RateLimitModel
from .search import BUDGET, Exhausted, linearize

__all__ = ["HistoryVerdict", "check_history"]


@dataclass(frozen=True)
class HistoryVerdict:
    """The checker's answer: a counterexample per gate that no order explains.

    ``undecided`` lists the gates whose search ran out of budget (neither shown linearizable
    nor not); ``errors`` are the driver's anomalies carried over from the History.
    """

    operations: int
    gates: int
    counterexamples: tuple[Counterexample, ...]
    undecided: tuple[tuple[str, str, str], ...]
    errors: tuple[str, ...]
    seconds: float

    @property
    def linearizable(self) -> bool:
        """Shown linearizable: no counterexample and no undecided gate."""
        return not self.counterexamples and not self.undecided

    @property
    def ok(self) -> bool:
        """Linearizable, and the driver saw no other anomaly."""
        return self.linearizable and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "gates": self.gates,
            "linearizable": self.linearizable,
            "ok": self.ok,
            "counterexamples": [c.to_dict() for c in self.counterexamples],
            "undecided": [
                dict(zip(("namespace", "action", "principal"), gate, strict=True))
                for gate in self.undecided
            ],
            "errors": list(self.errors),
            "seconds": self.seconds,
        }

    def explain(self) -> str:
        verdict = (
            "linearizable"
            if self.linearizable
            else "NOT linearizable"
            if self.counterexamples
            else "undecided"
        )
        parts = [
            f"{self.operations} operations on {self.gates} gate{'s' if self.gates != 1 else ''}:"
            f" {verdict} (checked in {self.seconds:.2f} s)",
            *(c.timeline() for c in self.counterexamples),
        ]
        parts += [
            f"gate {'/'.join(map(repr, gate))}: undecided, the search ran out of budget"
            for gate in self.undecided
        ]
        parts += [f"error: {error}" for error in self.errors]
        return "\n\n".join(parts)


def check_history(
    history: History | Iterable[Operation], model: Model | None = None, budget: int = BUDGET
) -> HistoryVerdict:
    """Whether ``history`` is linearizable under ``model`` (default: ``RateLimitModel``).

    ``history`` must hold every check the store carried out while it was recorded, starting
    from empty gates: RET-4 horizons are computed across all of them. ``budget`` bounds the
    search steps per gate; a gate that exhausts it is reported undecided.
    """
    started = time.perf_counter()
    errors = history.errors if isinstance(history, History) else ()
    ops = list(history.operations if isinstance(history, History) else history)
    model = RateLimitModel() if model is None else model
    ops, horizon_at = _with_horizons(ops)
    partitions: dict[tuple[str, str, str], list[int]] = {}
    for index, op in enumerate(ops):
        partitions.setdefault(op.gate, []).append(index)
    found = []
    undecided = []
    for gate, ids in partitions.items():
        part = [ops[i] for i in ids]
        try:
            failure = linearize(part, model, model.init(), budget, horizon_at=horizon_at)
        except Exhausted:
            undecided.append(gate)
            continue
        if failure is not None:
            found.append(counterexample(gate, part, ids, model, failure, horizon_at=horizon_at))
    return HistoryVerdict(
        operations=len(ops),
        gates=len(partitions),
        counterexamples=tuple(found),
        undecided=tuple(undecided),
        errors=tuple(errors),
        seconds=time.perf_counter() - started,
    )


def _with_horizons(
    ops: list[Operation],
) -> tuple[list[Operation], Callable[[int], float | None]]:
    """The operations with their RET-4 horizons, and the horizon of any instant.

    horizon(instant) is the greatest ``now`` of any check invoked by that instant; an
    operation's is that of its return (an indeterminate one's, of the instant it is placed
    before, which the search knows). Failed checks count too: an unknown outcome may have been
    carried out.
    """
    by_invoke = sorted(ops, key=lambda op: op.invoke_ns)
    invokes = [op.invoke_ns for op in by_invoke]
    greatest = list(accumulate((op.now for op in by_invoke), max))

    def horizon_at(instant: int) -> float | None:
        count = bisect_right(invokes, instant)
        return greatest[count - 1] if count else None

    out = []
    for op in ops:
        end = op.return_ns if op.result is not None else None
        horizon = greatest[-1] if end is None else horizon_at(end)
        out.append(replace(op, horizon=horizon))
    return out, horizon_at
