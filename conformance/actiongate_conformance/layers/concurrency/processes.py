"""Processes that share a store named by URL, each with its own client and threads:
``record_processes``."""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

from actiongate import Decision, Engine, Gate, Policy, store_from_url

from ...checkers.linearizability import History
from .threads import RawRecord, check_arguments, close_store, history_from, run_threads

__all__ = ["record_processes"]


class CounterClock:
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
    check_arguments(gates, policy_list, threads, checks_per_thread)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    cleaner = store_from_url(store_url)
    for gate in gates:
        cleaner.clear(gate)
    close_store(cleaner)
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
    raw: list[RawRecord] = []
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
    return history_from(raw, gates, policy_list, description)


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
        clock = CounterClock(counter, start, step)
        out = run_threads(
            engine, local, clock, barrier.wait, threads, index * threads, gates, policies, checks
        )
        close_store(store)
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
