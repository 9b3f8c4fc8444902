"""Diagnostics behind docs/upstream-0.3.0.md: the suite's layers with one thing changed each.

Not the suite's verdict (that is ``actiongate-conformance run``): each changes one part of the
suite, in this process only, to see past the first failure it reports. Run with the suite's
Python (3.10 or newer, the project installed):

    python3 examples/upstream/diagnose.py model TARGET [--lua14] [run options...]
    python3 examples/upstream/diagnose.py atomicity TARGET [ROUNDS]

``model``: ``actiongate-conformance run`` whose stateful model sends valid checks where it would
send invalid input (so the search goes past upstream's missing validation); with ``--lua14``
numbers are also compared at 14 significant digits (Lua's ``tostring``), so it goes past
upstream's Redis ages too. ``atomicity``: the suite's burst check of a ``cmd:`` port, judged by
the suite's model and by a model of upstream's own Redis behaviour (an event exactly ``window``
old dropped, ages rounded to 14 significant digits, the reason derived again from the rounded
age), to tell a check that is not atomic from one whose answers differ from the spec's.
These reach into the suite's private names and may need updating when the suite changes.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from typing import Any

from actiongate_conformance.checkers.linearizability import model as lin
from actiongate_conformance.cli import run
from actiongate_conformance.layers import atomicity
from actiongate_conformance.layers import vectors as runner
from actiongate_conformance.layers.stateful import machine as stateful
from actiongate_conformance.targets import target_from_string


def lua14(value: float) -> float:
    return float(f"{value:.14g}")


def model(arguments: list[str]) -> int:
    stateful.INVALID = (("policy", "mode", "SOFT"),)  # type: ignore[assignment]  # a valid check
    if "--lua14" in arguments:
        arguments.remove("--lua14")
        exact = runner.same

        def same(expected: Any, actual: Any) -> bool:
            numbers = all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in (expected, actual)
            )
            if numbers and float in (type(expected), type(actual)):
                return lua14(float(expected)) == float(actual)
            return exact(expected, actual)

        runner.same = same
    target, *rest = arguments
    return run(["run", "--target", target, "--atomicity", "0", *rest], sys.stdout, sys.stderr)


def redis_prune(events: tuple[float, ...], now: float, window: float | None) -> tuple[float, ...]:
    """Upstream's script: ZREMRANGEBYSCORE key -inf (now - window), the bound included."""
    if window is None or not events or events[0] > now - window:
        return events
    return events[bisect_right(events, now - window) :]


def redis_decide(
    count: int, last: float | None, now: float, max_calls: int, cooldown: float
) -> lin.DecisionFields:
    """The spec's decision, then the age through Lua's tostring and the reason the engine
    derives from that age (``last_age < policy.cooldown`` or else RATE_LIMIT)."""
    result = EXACT_DECIDE(count, last, now, max_calls, cooldown)
    if result.time_since_last is not None:
        result = result._replace(time_since_last=lua14(result.time_since_last))
    if result.reason == "COOLDOWN" and not result.time_since_last < cooldown:  # type: ignore[operator]
        result = result._replace(reason="RATE_LIMIT")
    return result


EXACT_PRUNE, EXACT_DECIDE = lin.prune, lin.decide


def atomicity_rounds(spec: str, rounds: int) -> int:
    target = target_from_string(spec, timeout=60)
    try:
        for label, prune, decide in (
            ("the suite's model", EXACT_PRUNE, EXACT_DECIDE),
            ("upstream's Redis behaviour as the model", redis_prune, redis_decide),
        ):
            lin.prune, lin.decide = prune, decide
            results = [atomicity._bursts(target, 2000) for _ in range(rounds)]
            passed = sum(result.linearizable is True for result in results)
            print(f"{label}: {passed}/{rounds} runs of {results[0].checks} checks linearizable")
    finally:
        lin.prune, lin.decide = EXACT_PRUNE, EXACT_DECIDE
        target.close()
    return 0


def main() -> int:
    command, *arguments = sys.argv[1:] or ["--help"]
    if command == "model" and arguments:
        return model(arguments)
    if command == "atomicity" and arguments:
        return atomicity_rounds(arguments[0], int(arguments[1]) if len(arguments) > 1 else 5)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
