"""Drivers that record concurrent histories of checks, and a driver that injects store faults.

- ``record_threads``: N threads in this process, released together by a barrier, each issuing
  checks on a few gates through the reference Engine over a Python store (or through engines a
  factory builds);
- ``record_processes``: M processes of N threads against a store that processes share, named by
  URL (``redis://...``); every process makes its own store with ``actiongate.store_from_url``;
- ``run_faults``: checks through ``faults.FaultyStore`` that fail on chosen calls, each case
  judged against ERR-1 (the decision) and ERR-2 (what later checks see).

Every check takes its ``now`` from one shared clock at invocation: the k-th reading is
``start + k * step``, so the values are deterministic and increase with invocation order, while
``time.monotonic_ns()`` stamps the invocation and the return. CLOCK_MONOTONIC is system-wide on
Linux, so stamps from different processes compare. The recorded History goes to
``linearizability.check_history``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actiongate import Decision, Engine, Gate, Policy, Status, Store, StoreErrorMode, store_from_url

from ..checkers.linearizability import DecisionFields, History, Operation, step
from ..targets.faulty_store import FaultyStore, InjectedFault

__all__ = [
    "FAULT_CASES",
    "FaultCase",
    "FaultHandling",
    "FaultReport",
    "FaultStep",
    "SharedClock",
    "decision_fields",
    "record_processes",
    "record_threads",
    "run_faults",
]

EngineFactory = Callable[[Callable[[], float]], Engine]
# One raw record per check, kept cheap while threads race: (process, invoke_ns, return_ns,
# gate index, policy index, now, decision or the exception that escaped the check).
_Raw = tuple[int, int, int, int, int, float, "Decision | BaseException"]


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
    _check_arguments(gates, policy_list, threads, checks_per_thread)
    clock = SharedClock() if clock is None else clock
    local = threading.local()

    def engine_clock() -> float:
        return float(local.now)

    if callable(getattr(target, "check_and_reserve", None)):
        store: Any = target
        if fail_every:
            store = _EveryNthCall(store, fail_every)
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
    records = _run_threads(
        engine, local, clock, barrier.wait, threads, 0, gates, policy_list, checks_per_thread
    )
    return _history(itertools.chain.from_iterable(records), gates, policy_list, description)


def _check_arguments(
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
    out: list[_Raw],
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


def _history(
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
                f"p{process}: a check at now={now!r} raised {type(outcome).__name__}: {outcome} "
                "(ERR-3: a store failure is a decision, never an exception)"
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
    where = f"p{process}: the check at now={now!r}"
    if decision.now != now or decision.gate != gate or decision.policy != policy:
        errors.append(f"{where} echoed now={decision.now!r}, gate or policy wrongly (DEC-4)")
    reason = decision.reason
    if reason is not None and reason.value == "STORE_ERROR":
        fail_open = policy.on_store_error is StoreErrorMode.FAIL_OPEN
        if (decision.status is Status.ALLOW) != fail_open:
            errors.append(
                f"{where} failed with {decision.status.value} under {policy.on_store_error.value}"
                " (ERR-1)"
            )
    return errors


class _EveryNthCall(FaultyStore):
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
            raise InjectedFault(f"injected fault in check_and_reserve at now={now!r}")
        return self.store.check_and_reserve(gate, now, policy)


# Processes.


class _CounterClock:
    """``SharedClock`` across processes: the counter lives in shared memory."""

    def __init__(self, counter: Any, start: float, step: float) -> None:
        self.counter = counter
        self.start = start
        self.step = step

    def __call__(self) -> float:
        with self.counter.get_lock():
            k = self.counter.value
            self.counter.value = k + 1
        return float(self.start + k * self.step)


def record_processes(
    store_url: str,
    gates: Sequence[Gate],
    policies: Policy | Sequence[Policy],
    *,
    processes: int = 2,
    threads: int = 4,
    checks_per_thread: int = 500,
    start: float = 1000.0,
    step: float = 0.001,
    timeout: float = 300.0,
) -> History:
    """``record_threads`` in ``processes`` processes, each with its own store from the URL.

    The store must be shared between processes (Redis): with ``memory://`` every process has
    its own, and the history is (rightly) not linearizable. Processes are spawned, not forked,
    so a multi-threaded caller is safe. Operation ``process`` numbers are
    ``process_index * threads + thread_index``. Raises RuntimeError if a process fails.
    """
    policy_list = [policies] if isinstance(policies, Policy) else list(policies)
    _check_arguments(gates, policy_list, threads, checks_per_thread)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    cleaner = store_from_url(store_url)
    for gate in gates:
        cleaner.clear(gate)
    _close(cleaner)
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    barrier = context.Barrier(processes * threads)
    results: Any = context.Queue()
    # Plain values cross the process boundary: a Gate caches its hash, which differs per
    # process (string hashing is salted per process).
    gate_keys = [(g.namespace, g.action, g.principal) for g in gates]
    policy_dicts = [p.to_dict() for p in policy_list]
    children = [
        context.Process(
            target=_process_main,
            args=(store_url, gate_keys, policy_dicts),
            kwargs={
                "index": index,
                "threads": threads,
                "checks": checks_per_thread,
                "counter": counter,
                "barrier": barrier,
                "results": results,
                "start": start,
                "step": step,
            },
            name=f"actiongate-conformance-{index}",
            daemon=True,
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    raw: list[_Raw] = []
    failures = []
    deadline = time.monotonic() + timeout
    try:
        # Drain before joining: a child blocks on exit until its queued data is read.
        for _ in children:
            try:
                kind, payload = results.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                failures.append(f"no result within {timeout} s")
                break
            if kind == "ok":
                raw += payload
            else:
                failures.append(payload)
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()
    if failures:
        barrier.abort()
        raise RuntimeError("record_processes: " + "\n".join(failures))
    raw.sort(key=lambda record: record[1])
    description = f"{processes} processes x {threads} threads over {store_url}"
    return _history(raw, gates, policy_list, description)


def _run_threads(  # noqa: PLR0917 - the one place both drivers start their threads
    engine: Engine,
    local: threading.local,
    clock: Callable[[], float],
    wait: Callable[[], object],
    threads: int,
    first_process: int,
    gates: Sequence[Gate],
    policies: Sequence[Policy],
    checks: int,
) -> list[list[_Raw]]:
    """``threads`` workers over one engine; their records, thread by thread."""
    records: list[list[_Raw]] = [[] for _ in range(threads)]
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


def _process_main(
    store_url: str,
    gate_keys: list[tuple[str, str, str]],
    policy_dicts: list[dict[str, Any]],
    *,
    index: int,
    threads: int,
    checks: int,
    counter: Any,
    barrier: Any,
    results: Any,
    start: float,
    step: float,
) -> None:
    """One process of ``record_processes``: its own store and engine, ``threads`` threads."""
    try:
        gates = [Gate(*key) for key in gate_keys]
        policies = [Policy.from_dict(d) for d in policy_dicts]
        local = threading.local()
        store = store_from_url(store_url)
        engine = Engine(store, clock=lambda: float(local.now))
        clock = _CounterClock(counter, start, step)
        out = _run_threads(
            engine, local, clock, barrier.wait, threads, index * threads, gates, policies, checks
        )
        _close(store)
        # Exceptions do not always pickle; escaped ones travel as RuntimeErrors with their text.
        payload = [
            (*record[:6], record[6] if isinstance(record[6], Decision) else _portable(record[6]))
            for record in itertools.chain.from_iterable(out)
        ]
        results.put(("ok", payload))
    except BaseException:
        barrier.abort()
        results.put(("error", f"process {index}:\n{traceback.format_exc()}"))


def _portable(error: BaseException | Decision) -> RuntimeError:
    return RuntimeError(f"{type(error).__name__}: {error}")


def _close(store: object) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


# Faults.


@dataclass(frozen=True)
class FaultCase:
    """Checks on one fresh gate; the steps marked ``fail`` have their store call raise.

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


@dataclass(frozen=True)
class FaultStep:
    """One check of a fault case: what the spec expects and what the target decided."""

    case: str
    on_store_error: str
    index: int
    now: float
    injected: bool
    expected: DecisionFields
    actual: DecisionFields | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.actual == self.expected


@dataclass(frozen=True)
class FaultHandling:
    """One injected fault and how it was handled.

    ``decision_ok``: the decision was ERR-1's; ``nothing_recorded``: every later check of the
    case decided as if the failed check never happened (ERR-2).
    """

    case: str
    on_store_error: str
    index: int
    now: float
    injected: str
    decision: DecisionFields | None
    decision_ok: bool
    nothing_recorded: bool
    detail: str

    @property
    def ok(self) -> bool:
        return self.decision_ok and self.nothing_recorded

    def to_dict(self) -> dict[str, Any]:
        decision = None if self.decision is None else self.decision._asdict()
        return {
            "case": self.case,
            "on_store_error": self.on_store_error,
            "step": self.index,
            "now": self.now,
            "injected": self.injected,
            "decision": decision,
            "decision_ok": self.decision_ok,
            "nothing_recorded": self.nothing_recorded,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class FaultReport:
    """Every fault injected, how each was handled, and every check the cases made."""

    faults: tuple[FaultHandling, ...]
    steps: tuple[FaultStep, ...]

    @property
    def ok(self) -> bool:
        return all(fault.ok for fault in self.faults) and all(s.ok for s in self.steps)

    def describe(self) -> str:
        handled = sum(fault.ok for fault in self.faults)
        lines = [f"{len(self.faults)} faults injected, {handled} handled as ERR-1 and ERR-2 ask:"]
        lines += [
            f"  {'ok  ' if f.ok else 'FAIL'} {f.case} ({f.on_store_error}) step {f.index} "
            f"now={f.now!r}: {f.detail}"
            for f in self.faults
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "faults": [fault.to_dict() for fault in self.faults]}


def run_faults(store: Any, cases: Sequence[FaultCase] = FAULT_CASES) -> FaultReport:
    """Run the fault cases through the reference Engine over ``store``.

    A ``FaultyStore`` (or a subclass with its own way of failing) is used as it is; any other
    store is wrapped in one. A step marked to fail sets ``failing`` for that one call. Each run
    of a case uses a fresh gate and times above every earlier run's, so that RET-4 housekeeping
    of earlier runs cannot touch it.
    """
    faulty = store if isinstance(store, FaultyStore) else FaultyStore(store)
    now_box = [0.0]
    engine = Engine(faulty, clock=lambda: now_box[0])
    faults: list[FaultHandling] = []
    steps: list[FaultStep] = []
    runs = itertools.product(cases, ("FAIL_CLOSED", "FAIL_OPEN"))
    for run, (case, mode) in enumerate(runs, 1):
        base = 1000.0 * run
        policy = Policy.from_dict({**case.policy, "on_store_error": mode})
        gate = Gate("actiongate-conformance", "faults", f"{case.id}/{mode}")
        faulty.failing = False
        engine.clear(gate)
        case_steps = _run_case(
            engine=engine,
            faulty=faulty,
            now_box=now_box,
            gate=gate,
            policy=policy,
            case=case,
            mode=mode,
            base=base,
        )
        steps += case_steps
        faults += _handling(case_steps, mode)
    return FaultReport(tuple(faults), tuple(steps))


def _run_case(
    *,
    engine: Engine,
    faulty: FaultyStore,
    now_box: list[float],
    gate: Gate,
    policy: Policy,
    case: FaultCase,
    mode: str,
    base: float,
) -> list[FaultStep]:
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
        now_box[0] = now
        injected_before = faulty.faults_injected
        faulty.failing = fail
        error = actual = None
        try:
            decision = engine.check(gate, policy)
            actual = _all_fields(decision)
        except Exception as escaped:
            error = f"the check raised {type(escaped).__name__}: {escaped} (ERR-3)"
        finally:
            faulty.failing = False
        if fail and faulty.faults_injected == injected_before and error is None:
            error = "the engine never called the store, so no fault was injected"
        out.append(FaultStep(case.id, mode, index, now, fail, expected, actual, error))
    return out


def _all_fields(decision: Decision) -> DecisionFields:
    reason = decision.reason
    return DecisionFields(
        decision.status.value,
        None if reason is None else reason.value,
        decision.calls_in_window,
        decision.time_since_last,
    )


def _handling(steps: list[FaultStep], mode: str) -> list[FaultHandling]:
    out = []
    for position, fault in enumerate(steps):
        if not fault.injected:
            continue
        decision_ok = fault.ok
        wrong_later = next((s for s in steps[position + 1 :] if not s.injected and not s.ok), None)
        if fault.error is not None:
            detail = fault.error
        elif not decision_ok:
            detail = f"decided {fault.actual}, ERR-1 wants {fault.expected}"
        else:
            detail = f"raised InjectedFault -> {fault.actual}"
        if wrong_later is not None:
            detail += (
                f"; later, the check at now={wrong_later.now!r} gave {wrong_later.actual}, but if "
                f"nothing had been recorded or pruned it gives {wrong_later.expected} (ERR-2)"
            )
        else:
            detail += "; later checks show nothing recorded"
        out.append(
            FaultHandling(
                case=fault.case,
                on_store_error=mode,
                index=fault.index,
                now=fault.now,
                injected="InjectedFault raised by check_and_reserve",
                decision=fault.actual,
                decision_ok=decision_ok,
                nothing_recorded=wrong_later is None,
                detail=detail,
            )
        )
    return out
