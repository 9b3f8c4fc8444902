"""How a stateful search runs: its budget, whether it batches across steps, what it found, and
the exceptions that stop it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...targets import Target, TargetError
from .trace import Counterexample

__all__ = ["Found", "OutOfTime", "Run", "Stop", "Unrunnable"]


class Stop(KeyboardInterrupt):
    """Ends the whole run now. Hypothesis stops at once, recording nothing about the example,
    for a KeyboardInterrupt only; any other exception it would check against earlier examples
    with the same start, and fail as flaky."""


class OutOfTime(Stop):
    """The wall-clock budget is spent."""


class Unrunnable(Stop):
    """The target cannot be run (``error``, a TargetError): no verdict."""

    def __init__(self, error: TargetError) -> None:
        super().__init__(str(error))
        self.error = error


class Found(Stop):
    """A batched search found a plain counterexample in example ``Run.found_in``: the search is
    run again, a step at a time, for hypothesis to see the failure where it happens."""


@dataclass
class Run:
    """One search. ``batched``: an example's steps are sent together, at its end or when the
    model needs an answer, and a plain failure raises Found. Otherwise each step is sent as it
    is taken (a burst's checks together) and a failure raises its Counterexample, as hypothesis
    must see it to shrink. ``known``: the examples before it are known to pass (an earlier
    batched search ran them), so their steps are drawn and not sent."""

    target: Target
    faults: bool
    budget: float | None
    started: float = field(default_factory=time.monotonic)
    batched: bool = False
    known: int = 0
    examples: int = 0
    found_after: int | None = None  # the example of the first plain counterexample
    found_in: int | None = None  # the same, in a batched search
    out_of_time: bool = False
    # Failures after a step RET-4 leaves open, with the example each came from.
    housekeeping: list[tuple[int, Counterexample]] = field(default_factory=list)
