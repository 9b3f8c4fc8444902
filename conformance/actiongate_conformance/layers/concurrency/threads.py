"""Threads in this process checking through one Engine: ``record_threads`` and what the
process driver shares with it (the shared clock, the workers, the raw records to a History)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from actiongate import Decision, Engine, Gate, Policy, Status, Store, StoreErrorMode

from ...checkers.linearizability import DecisionFields, History, Operation, show
from ...targets.faulty_store import FaultyStore, InjectedFault

__all__ = [
    "EveryNthCall",
    "SharedClock",
    "check_arguments",
    "close_store",
    "decision_fields",
    "history_from",
    "record_threads",
    "run_threads",
]

EngineFactory = Callable[[Callable[[], float]], Engine]
# One raw record per check, kept cheap while threads race: (process, invoke_ns, return_ns,
# gate index, policy index, now, decision or the exception that escaped the check).
RawRecord = tuple[int, int, int, int, int, float, "Decision | BaseException"]


class SharedClock:
    """A thread-safe clock whose k-th reading is ``start + k * step``."""

    def __init__(self, start: float = 1000.0, step: float = 0.001) -> None:
        self.start = start
        self.step = step
        self._count = itertools.count()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        # A lock, not the GIL's atomicity of next(): the values stay distinct on free-threaded
        # builds too.
        with self._lock:
            k = next(self._count)
        return self.start + k * self.step


def decision_fields(decision: Decision) -> DecisionFields | None:
    """The fields the checker compares; None for a STORE_ERROR decision (indeterminate, ERR-3)."""
    reason = decision.reason
    if reason is not None and reason.value == "STORE_ERROR":
        return None
    return DecisionFields(
        decision.status.value,
        None if reason is None else reason.value,
        decision.calls_in_window,
        decision.time_since_last,
    )


# Threads.


def record_threads(
    target: Store | EngineFactory,
    gates: Sequence[Gate],
    policies: Policy | Sequence[Policy],
    threads: int = 8,
    checks_per_thread: int = 500,
    *,
    clock: Callable[[], float] | None = None,
    fail_every: int = 0,
) -> History:
    """Run ``threads`` threads of ``checks_per_thread`` checks each, and return their history.

    ``target`` is a store (the reference Engine is put over it) or a factory that takes the
    engine's clock and returns an Engine. Check k of thread t is of ``gates[(t + k) % G]`` under
    ``policies[(t + k // G) % P]``. The gates are cleared first, so the history starts from empty
    gates. With ``fail_every`` n > 0 (a store target only), every n-th store call raises
    ``InjectedFault``, giving STORE_ERROR decisions: indeterminate operations.
    """
    policy_list = [policies] if isinstance(policies, Policy) else list(policies)
    check_arguments(gates, policy_list, threads, checks_per_thread)
    clock = SharedClock() if clock is None else clock
    local = threading.local()

    def engine_clock() -> float:
        return float(local.now)

    if callable(getattr(target, "check_and_reserve", None)):
        store: Any = target
        if fail_every:
            store = EveryNthCall(store, fail_every)
        engine = Engine(store, clock=engine_clock)
        description = f"{threads} threads over {type(target).__name__}"
    else:
        if fail_every:
            raise ValueError("fail_every needs a store target, not an engine factory")
        engine = target(engine_clock)  # type: ignore[operator]
        description = f"{threads} threads over an engine from {target!r}"
    for gate in gates:
        engine.clear(gate)
    barrier = threading.Barrier(threads)
    records = run_threads(
        engine, local, clock, barrier.wait, threads, 0, gates, policy_list, checks_per_thread
    )
    return history_from(itertools.chain.from_iterable(records), gates, policy_list, description)


def check_arguments(
    gates: Sequence[Gate], policies: Sequence[Policy], threads: int, checks: int
) -> None:
    if not gates:
        raise ValueError("gates must name at least one gate")
    if not policies:
        raise ValueError("policies must hold at least one policy")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if checks < 0:
        raise ValueError(f"checks_per_thread must be >= 0, got {checks}")


def _worker(
    *,
    engine: Engine,
    local: threading.local,
    clock: Callable[[], float],
    wait: Callable[[], object],
    thread: int,
    process: int,
    gates: Sequence[Gate],
    policies: Sequence[Policy],
    checks: int,
    out: list[RawRecord],
) -> None:
    wait()
    monotonic_ns = time.monotonic_ns
    check = engine.check
    for k in range(checks):
        g = (thread + k) % len(gates)
        p = (thread + k // len(gates)) % len(policies)
        invoked = monotonic_ns()
        local.now = now = clock()  # the engine's clock reads this: now is taken at invocation
        try:
            outcome: Decision | BaseException = check(gates[g], policies[p])
        except Exception as error:  # ERR-3 says this never happens; record it if it does
            outcome = error
        out.append((process, invoked, monotonic_ns(), g, p, now, outcome))


def history_from(
    raw: Any, gates: Sequence[Gate], policies: Sequence[Policy], description: str
) -> History:
    gate_keys = [(g.namespace, g.action, g.principal) for g in gates]
    policy_dicts = [p.to_dict() for p in policies]
    operations = []
    errors = []
    for process, invoked, returned, g, p, now, outcome in raw:
        result = None
        if isinstance(outcome, BaseException):
            errors.append(
                f"p{process}: a check at now={show(now)} raised {type(outcome).__name__}: "
                f"{outcome} (ERR-3: a store failure is a decision, never an exception)"
            )
        else:
            result = decision_fields(outcome)
            errors += _echo_errors(outcome, gates[g], policies[p], now, process)
        operations.append(
            Operation(process, invoked, returned, gate_keys[g], policy_dicts[p], now, result)
        )
    operations.sort(key=lambda op: op.invoke_ns)
    return History(tuple(operations), tuple(errors), description)


def _echo_errors(
    decision: Decision, gate: Gate, policy: Policy, now: float, process: int
) -> list[str]:
    errors = []
    where = f"p{process}: the check at now={show(now)}"
    if decision.now != now or decision.gate != gate or decision.policy != policy:
        errors.append(f"{where} echoed now={show(decision.now)}, gate or policy wrongly (DEC-4)")
    reason = decision.reason
    if reason is not None and reason.value == "STORE_ERROR":
        fail_open = policy.on_store_error is StoreErrorMode.FAIL_OPEN
        if (decision.status is Status.ALLOW) != fail_open:
            errors.append(
                f"{where} failed with {decision.status.value} under {policy.on_store_error.value}"
                " (ERR-1)"
            )
    return errors


class EveryNthCall(FaultyStore):
    """A FaultyStore that fails every n-th check_and_reserve, before reaching the store."""

    def __init__(self, store: Any, every: int) -> None:
        super().__init__(store)
        if every < 1:
            raise ValueError(f"fail_every must be >= 1, got {every}")
        self.every = every
        self._calls = itertools.count(1)
        self._lock = threading.Lock()

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        with self._lock:
            fail = next(self._calls) % self.every == 0
            self.faults_injected += fail
        if fail:
            raise InjectedFault(f"injected fault in check_and_reserve at now={show(now)}")
        return self.store.check_and_reserve(gate, now, policy)


def run_threads(  # noqa: PLR0917 - the one place both drivers start their threads
    engine: Engine,
    local: threading.local,
    clock: Callable[[], float],
    wait: Callable[[], object],
    threads: int,
    first_process: int,
    gates: Sequence[Gate],
    policies: Sequence[Policy],
    checks: int,
) -> list[list[RawRecord]]:
    """``threads`` workers over one engine; their records, thread by thread."""
    records: list[list[RawRecord]] = [[] for _ in range(threads)]
    workers = [
        threading.Thread(
            target=_worker,
            kwargs={
                "engine": engine,
                "local": local,
                "clock": clock,
                "wait": wait,
                "thread": t,
                "process": first_process + t,
                "gates": gates,
                "policies": policies,
                "checks": checks,
                "out": records[t],
            },
            name=f"actiongate-conformance-{first_process + t}",
        )
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return records


def close_store(store: object) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()
