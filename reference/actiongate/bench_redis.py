"""The Redis rows of ``python -m actiongate.bench --redis URL``.

A decision over Redis costs at least one round trip, so each check is shown beside the physical
floor measured on the same connection in the same run: a PING, and a trivial EVALSHA that takes
as many keys and arguments as the check script and does nothing. ``server us`` is Redis' own time
per EVALSHA (INFO commandstats), the work the script does inside the server.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from functools import partial
from typing import Any

import actiongate

from ._bench_common import (
    REPETITIONS,
    RETAINED,
    WORKLOADS,
    Settings,
    Subject,
    calibrate,
    engine_subject,
    medians,
    micros,
    time_calls,
)

__all__ = ["print_redis_rows", "redis_rows"]

TRIVIAL_SCRIPT = "return 1"


def _check_subject(store: Any, workload: str, retained: int) -> Subject:
    # The rows of the memory benchmark, over Redis; the gate starts empty however runs left it.
    gate = actiongate.Gate("bench-redis", workload, f"n{retained}")
    store.clear(gate)
    return engine_subject(actiongate, store, gate, workload, retained)


def _server_usec_per_call(client: Any, measure: Callable[[], dict[str, float]]) -> float:
    client.config_resetstat()
    measure()
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec_per_call", 0.0))


def redis_rows(url: str, settings: Settings) -> dict[str, Any]:
    """Per-check p50 beside the PING and trivial-EVALSHA floor, and the server's time."""
    store: Any = actiongate.store_from_url(url)
    client = store.client
    # The floor is called the way the store calls its script: EVALSHA straight on the client.
    trivial = client.script_load(TRIVIAL_SCRIPT)
    key = b"actiongate-bench:floor"
    subjects: dict[str, Subject] = {
        "PING": Subject(client.ping),
        "trivial EVALSHA": Subject(
            partial(client.evalsha, trivial, 1, key, "1", "2", "3", "4", "5")
        ),
    }
    for workload in WORKLOADS:
        for retained in RETAINED:
            subjects[f"check, {workload}, {retained:,} retained"] = _check_subject(
                store, workload, retained
            )
    iterations = {name: calibrate(subject, settings) for name, subject in subjects.items()}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in subjects}
    for _ in range(REPETITIONS):
        for name, subject in subjects.items():  # interleaved: the floor drifts with the rest
            gc.collect()
            samples[name].append(time_calls(subject, iterations[name]))
    rows = {name: medians(runs) for name, runs in samples.items()}
    server = {
        name: _server_usec_per_call(client, partial(time_calls, subject, 2_000))
        for name, subject in subjects.items()
        if name != "PING"
    }
    store.clear_all()
    return {"url": url, "rows": rows, "server_usec_per_evalsha": server}


def print_redis_rows(report: dict[str, Any], out: Any) -> None:
    rows = report["rows"]
    floor = rows["trivial EVALSHA"]["p50_ns"]
    print(f"\nRedis at {report['url']}, medians of {REPETITIONS} interleaved repetitions", file=out)
    print(
        f"{'operation':<34} {'p50':>10} {'p99':>10} {'/ EVALSHA floor':>16} {'server us':>10}",
        file=out,
    )
    for name, result in rows.items():
        server = report["server_usec_per_evalsha"].get(name)
        print(
            f"{name:<34} {micros(result['p50_ns']):>10} {micros(result['p99_ns']):>10} "
            f"{result['p50_ns'] / floor:>15.2f}x {'' if server is None else f'{server:.1f}':>10}",
            file=out,
        )
