"""A counterexample made shorter than hypothesis leaves it: steps deleted while it still fails.

Hypothesis shrinks the choices that made a run, and the model's times are relative (a check
1 s after the last one), so deleting an early step moves every later step in time, and a
failure three checks show can stay eleven steps long. A counterexample's steps carry absolute
times: here each is deleted in turn and the rest replayed against the target and a fresh
oracle, through the model's own judging (``Model.play``); a deletion stays when the replay
still fails with no step that RET-4 leaves open, so that it is still a vector. Greedy, until no
single step can go or the replays allowed are spent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...targets import Target
from .control import Run, Unrunnable
from .machine import Model
from .trace import Counterexample

__all__ = ["minimized"]

REPLAYS = 400  # at most: each replay is one reset and the steps left


def minimized(target: Target, faults: bool, found: Counterexample) -> Counterexample:
    """The shortest failing run found by deleting single steps from ``found``'s."""
    best, replays = found, 0
    shrinking = True
    while shrinking and replays < REPLAYS:
        shrinking = False
        index = 0
        while index < len(best.trace.steps) and replays < REPLAYS:
            steps = best.trace.steps
            replays += 1
            try:
                shorter = replay(target, faults, [*steps[:index], *steps[index + 1 :]])
            except Unrunnable:  # the target stopped working: keep what was found
                return best
            if shorter is not None and len(shorter.trace.steps) < len(steps):
                best, shrinking = shorter, True
            else:
                index += 1
    return best


def replay(
    target: Target, faults: bool, steps: Sequence[Mapping[str, Any]]
) -> Counterexample | None:
    """The plain failure the steps lead to on ``target``, if any (None: they pass, or fail
    only where RET-4 leaves the spec's answer open)."""
    model = Model(Run(target, faults, None))
    if any(isinstance(s.get("now"), float) and abs(s["now"]) >= 1e9 for s in steps):
        model.trace.flags.add("epoch")
    try:
        for step in steps:
            model.play(step)
        model.flush()
    except Counterexample as failure:
        return None if failure.trace.open_steps else failure
    return None
