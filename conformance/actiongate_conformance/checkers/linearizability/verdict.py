"""The entry point: ``check_history`` partitions a history by gate and judges each part."""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from .counterexample import Counterexample, counterexample
from .history import History, Operation, gate_text
from .model import Model, RateLimitModel
from .search import BUDGET, Exhausted, linearize
from .sequential import RACE, SEQUENTIAL, Disagreement, Replay, first_impossible

__all__ = ["HistoryVerdict", "check_history"]


@dataclass(frozen=True)
class HistoryVerdict:
    """The checker's answer: a counterexample per gate that no order explains.

    ``undecided`` lists the gates whose search ran out of budget (neither shown linearizable
    nor not); ``errors`` are the driver's anomalies carried over from the History.
    ``disagreements``: for each gate with a counterexample, its earliest check whose answer no
    state gives (``sequential.first_impossible``); ``replay``: the target run again one check
    at a time, when a driver could (``with_replay``). Both feed ``failure``.
    """

    operations: int
    gates: int
    counterexamples: tuple[Counterexample, ...]
    undecided: tuple[tuple[str, str, str], ...]
    errors: tuple[str, ...]
    seconds: float
    disagreements: tuple[Disagreement, ...] = ()
    replay: Replay | None = None

    @property
    def failure(self) -> str | None:
        """What kind of failure a counterexample is: ``"sequential"`` (the target is wrong with
        no concurrency: a logic bug) or ``"race"`` (no order explains the history, though no
        check is wrong on its own); None with no counterexample.

        A conclusive replay decides: it ran the very checks with no concurrency. Without one,
        an answer no state gives is taken as a logic bug (a torn read is the one race that
        gives such answers, and only a replay can tell).
        """
        if not self.counterexamples:
            return None
        if self.replay is not None and self.replay.conclusive:
            return SEQUENTIAL if self.replay.disagreement is not None else RACE
        return SEQUENTIAL if self.disagreements else RACE

    def with_replay(self, replay: Replay) -> HistoryVerdict:
        return replace(self, replay=replay)

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
            "failure": self.failure,
            "counterexamples": [c.to_dict() for c in self.counterexamples],
            "disagreements": [d.to_dict() for d in self.disagreements],
            "replay": None if self.replay is None else self.replay.to_dict(),
            "undecided": [
                dict(zip(("namespace", "action", "principal"), gate, strict=True))
                for gate in self.undecided
            ],
            "errors": list(self.errors),
            "seconds": self.seconds,
        }

    def explain(self) -> str:
        failure = self.failure
        verdict = {
            SEQUENTIAL: "SEQUENTIAL DISAGREEMENT: wrong with no concurrency, a logic bug, not a "
            "race",
            RACE: "NOT linearizable"
            + (" (a race)" if self.replay is not None and self.replay.conclusive else ""),
            None: "linearizable" if self.linearizable else "undecided",
        }[failure]
        parts = [
            f"{self.operations} operations on {self.gates} gate{'s' if self.gates != 1 else ''}:"
            f" {verdict} (checked in {self.seconds:.2f} s)"
        ]
        if failure == SEQUENTIAL:
            parts += self._sequential()
        elif failure == RACE:
            parts += [c.timeline() for c in self.counterexamples] + self._race()
        parts += [
            f"gate {gate_text(gate)}: undecided, the search ran out of budget"
            for gate in self.undecided
        ]
        parts += [f"error: {error}" for error in self.errors]
        return "\n\n".join(parts)

    def _sequential(self) -> list[str]:
        if self.replay is not None and self.replay.disagreement is not None:
            shown = [self.replay.disagreement]
        else:  # the earliest in full; the other gates' in a line each
            shown = sorted(self.disagreements, key=lambda d: d.operation.invoke_ns)
            if self.replay is not None:
                shown[0] = replace(shown[0], why=f"{shown[0].why} (not run again one check at "
                                   f"a time: {self.replay.inconclusive})")  # fmt: skip
        others = [
            f"Also gate {gate_text(d.operation.gate)}: check #{d.id} ({', '.join(d.clauses)})."
            for d in shown[1:]
        ]
        return [
            "\n".join(shown[0].lines()),
            *(["\n".join(others)] if others else []),
            (
                "Fix this first: a target wrong one check at a time gives concurrent histories no "
                "order explains, so they cannot show whether a race hides behind it."
            ),
        ]

    def _race(self) -> list[str]:
        if self.replay is not None and self.replay.conclusive:
            said = (
                f"Run again one check at a time (no concurrency), the same {self.replay.checks} "
                "checks all get the spec's answers: the failure needs concurrency. RES-1: a "
                "check's read and its reservation must be atomic."
            )
        else:
            said = (
                "Each check's answer is one some state gives: no check is wrong on its own (a "
                "logic bug some state hides shows only when the checks run again one at a time)."
            )
            if self.replay is not None:  # tried, and could not finish
                said += f" (Not run again one check at a time: {self.replay.inconclusive}.)"
        torn = [
            f"Check #{d.id}'s answer is one no single state gives ({d.why}): it read the state "
            "torn by a concurrent write."
            for d in self.disagreements
        ]
        return [" ".join([said, *torn])]


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
    disagreements: list[Disagreement] = []
    for gate, ids in partitions.items():
        part = [ops[i] for i in ids]
        try:
            failure = linearize(part, model, model.init(), budget, horizon_at=horizon_at)
        except Exhausted:
            undecided.append(gate)
            continue
        if failure is not None:
            found.append(counterexample(gate, part, ids, model, failure, horizon_at=horizon_at))
            # Before calling it a race: is some answer wrong whatever the interleaving?
            wrong = first_impossible(part, ids) if isinstance(model, RateLimitModel) else None
            disagreements += [wrong] if wrong is not None else []
    return HistoryVerdict(
        operations=len(ops),
        gates=len(partitions),
        counterexamples=tuple(found),
        undecided=tuple(undecided),
        errors=tuple(errors),
        seconds=time.perf_counter() - started,
        disagreements=tuple(disagreements),
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
