"""Processes of their own for the cross-process atomicity tests: start them together, gather."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from typing import Any

import pytest


def counts_from_processes(
    target: Callable[..., None], arguments: tuple[Any, ...], processes: int, timeout: float
) -> list[int]:
    """Run ``target(*arguments, start, results)`` in ``processes`` spawned processes (no fork of
    a threaded test process), released together by the barrier ``start``; each puts one list of
    counts on ``results``. Their counts, all together; a process that gives none fails the test."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    started = [
        context.Process(target=target, args=(*arguments, start, results)) for _ in range(processes)
    ]
    for process in started:
        process.start()
    try:
        counts = [count for _ in started for count in results.get(timeout=timeout)]
    except queue.Empty:
        pytest.fail("a process gave no result")
    finally:
        for process in started:
            process.join(timeout=30)
    assert [process.exitcode for process in started] == [0] * processes
    return counts
