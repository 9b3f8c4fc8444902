"""What both benchmarks share: the rows, the injected clock, the timing loop and its summaries.

``bench.py`` (the command, and the memory rows beside their peers) and ``bench_redis.py`` (the
Redis rows) both import this module and not each other's helpers, so neither imports back.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType

RETAINED = (10, 1_000, 10_000)
WORKLOADS = ("allow", "blocked")
REPETITIONS = 3


@dataclass(frozen=True)
class Settings:
    target_seconds: float  # the time one timed row should take
    expired_gates: int
    # Rounds of the Redis table, each a batch of target_seconds / 5 per column. A batch's server
    # time is a mean, which one preemption of the server (milliseconds) spoils: many short
    # batches and their median leave those out.
    redis_rounds: int


class ManualClock:
    """The injected clock: one second per tick, so every time is an exact float."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += 1.0


@dataclass(frozen=True)
class Subject:
    """One implementation set up for one row: ``call`` is timed, ``between`` is not."""

    call: Callable[[], object]
    between: Callable[[], None] | None = None


def engine_subject(
    package: ModuleType, store: object, gate: object, workload: str, retained: int
) -> Subject:
    """A check of ``gate`` by an Engine of ``package`` over ``store``, holding ``retained``
    events; ``package`` is ours or upstream, through the public API both share."""
    clock = ManualClock()
    engine = package.Engine(store=store, clock=clock)
    if workload == "allow":
        # window = N ticks: at steady state each check prunes one event and adds one.
        policy = package.Policy(max_calls=2 * retained + 10, window=float(retained))
    else:
        policy = package.Policy(max_calls=retained, window=float(4 * retained))
    for _ in range(retained):
        engine.check(gate, policy)
        clock.tick()
    check = partial(engine.check, gate, policy)
    # Blocked: the clock stays put inside the window, so every check is a RATE_LIMIT block.
    return Subject(check, clock.tick if workload == "allow" else None)


def time_calls(subject: Subject, iterations: int) -> dict[str, float]:
    """Time each call, and the whole loop for throughput. GC stays on: callers pay it too."""
    durations = [0] * iterations
    call, between, clock = subject.call, subject.between, time.perf_counter_ns
    start = clock()
    for index in range(iterations):
        if between is not None:
            between()
        before = clock()
        call()
        durations[index] = clock() - before
    elapsed = clock() - start
    durations.sort()
    return {
        "p50_ns": durations[iterations // 2],
        "p99_ns": durations[min(iterations - 1, iterations * 99 // 100)],
        "checks_per_s": iterations * 1e9 / elapsed,
    }


def calibrate(subject: Subject, settings: Settings) -> int:
    """Warm the subject up; return the iterations that make one row last about the target."""
    iterations = 16
    while True:
        elapsed = iterations / time_calls(subject, iterations)["checks_per_s"]
        if elapsed >= settings.target_seconds / 10 or iterations >= 1 << 20:
            return max(50, int(iterations * settings.target_seconds / elapsed))
        iterations *= 4


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(sample[name] for sample in samples) for name in samples[0]}


def micros(nanoseconds: float) -> str:
    return f"{nanoseconds / 1000:.2f} us"
