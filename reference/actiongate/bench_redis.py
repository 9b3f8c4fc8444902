"""The Redis table of ``python -m actiongate.bench``: a decision's cost to the server and client.

    python -m actiongate.bench --redis-only --start-redis [--baseline-script OLD.lua]
    python -m actiongate.bench --redis redis://HOST:PORT/DB

Three figures per row (allow and blocked, at 10, 1,000 and 10,000 retained events), for ours and,
when ``limits`` is importable, for its moving window (``MovingWindowRateLimiter.hit`` over its
``redis://`` storage), the sliding log users pick today:

- **server us / decision**: Redis' own time in the script command, from INFO commandstats
  deltas (EVALSHA usec / calls) around each timed batch. Every tenant of a shared Redis pays it.
- **client p50 / floor**: the client's p50 per decision over the p50 of a trivial EVALSHA
  (``return 1``, the same KEYS and ARGV count as our script) on the same kind of connection.
- **key bytes**: MEMORY USAGE of the row's key after its rounds: what holding the gate's
  events costs the server.

The placement that counts is client and server on different cores: ``--start-redis`` starts a
redis-server on a free loopback port (no persistence), pins it (all its threads) to the last CPU
this process may use and this process to the first, and stops it by its PID at the end. With
``--redis URL`` this process is pinned the same way; pin the server yourself to another CPU
(``taskset -a -p -c 1 PID``), and use a server nobody else is using: commandstats count every
client. ``--baseline-script FILE`` adds a column for another version of ``check_and_reserve.lua``
(the same ARGV and reply), run on its own SHA, interleaved: a before/after in one run. Figures
are medians of interleaved rounds; compare ratios within one run.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import actiongate

from ._bench_common import (
    RETAINED,
    WORKLOADS,
    Settings,
    Subject,
    calibrate,
    engine_subject,
    time_calls,
)
from .stores._redis_script import parse_reply, script_args

__all__ = [
    "LIMITS_NOTES",
    "ScriptStore",
    "limits_redis_subject",
    "print_redis_table",
    "redis_table",
    "running",
]

TRIVIAL_SCRIPT = "return 1"
LONG_WINDOW = 3600  # seconds: limits' window, which every hit of a row stays inside
STARTUP_SECONDS = 10.0
LIMITS_NOTES = (
    "limits returns a bool where we return a full Decision (count, age) and keep the TTL exact",
    "limits' allow rows age its oldest entry before each hit (LSET, untimed): each hit then"
    " trims one and adds one, as ours prune one and add one",
)


@dataclass(frozen=True)
class Server:
    """Where the table runs: the URL, and which CPUs the server and this process were given."""

    url: str
    started: bool  # by the bench, which then pinned it
    server_cpu: int | None
    client_cpu: int | None


class ScriptStore:
    """A Store over a RedisStore's client that runs another version of the check script.

    Same ARGV and reply as ``check_and_reserve.lua``; loaded under its own SHA, so the two
    versions run side by side on one server.
    """

    def __init__(self, store: Any, text: str) -> None:
        self.store = store
        self.sha = store.client.script_load(text)

    def check_and_reserve(
        self, gate: actiongate.Gate, now: float, policy: actiongate.Policy
    ) -> tuple[int, bool, float | None]:
        args = script_args(now, policy, self.store.ttl_margin)
        reply = self.store.client.evalsha(self.sha, 1, self.store.key(gate), *args)
        count, allowed, age, _ = parse_reply(reply, now)
        return count, allowed, age

    def clear(self, gate: actiongate.Gate) -> None:
        self.store.clear(gate)

    def clear_all(self) -> None:
        self.store.clear_all()


# The server: started and pinned here, or given


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _cpus() -> tuple[int | None, int | None]:
    """(this process's CPU, the server's): the first and last CPU allowed, when there are two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[-1]) if len(allowed) > 1 else (None, None)


def _pin_process(pid: int, cpu: int) -> None:
    """Every thread of ``pid`` to ``cpu``: what ``taskset -a -p -c CPU PID`` does."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(task), {cpu})
        except ProcessLookupError:  # a thread that ended meanwhile
            continue


@contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    """This process on ``cpu`` for the block, then back on the CPUs it had."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def running(url: str | None, binary: str = "redis-server") -> Iterator[Server]:
    """The server to measure: ``url``, or (None) a redis-server started, pinned, then stopped."""
    client_cpu, server_cpu = _cpus()
    if url is not None:
        with _pinned(client_cpu):
            yield Server(url, False, None, client_cpu)
        return
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"--start-redis needs {binary} on PATH")
    with tempfile.TemporaryDirectory(prefix="actiongate-bench-") as directory:
        for _ in range(5):  # a port taken between probe and bind: try another
            port = _free_port()
            command = [path, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            command += ["--appendonly", "no", "--dir", directory]
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                deadline = time.monotonic() + STARTUP_SECONDS
                while not _answers(port) and process.poll() is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server on port {port} did not answer PING")
                    time.sleep(0.01)
                if process.poll() is not None:
                    continue
                if server_cpu is not None:
                    _pin_process(process.pid, server_cpu)
                with _pinned(client_cpu):
                    yield Server(f"redis://127.0.0.1:{port}/0", True, server_cpu, client_cpu)
                return
            finally:
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=STARTUP_SECONDS)
        raise RuntimeError("could not start redis-server on a free port")


# What is timed


def limits_redis_subject(
    limits: ModuleType, url: str, workload: str, retained: int
) -> tuple[Subject, str]:
    """limits' moving window over its ``redis://`` storage, holding ``retained`` entries; and
    the key it keeps them under."""
    storage = limits.storage.storage_from_string(url)
    limiter = limits.strategies.MovingWindowRateLimiter(storage)
    item = limits.RateLimitItemPerSecond(retained, LONG_WINDOW)
    identifier = f"actiongate-bench-{workload}-{retained}-{uuid.uuid4().hex[:8]}"
    key: str = storage.prefixed_key(item.key_for(identifier))
    for _ in range(retained):
        limiter.hit(item, identifier)
    check = partial(limiter.hit, item, identifier)
    if workload == "blocked":
        return Subject(check), key
    return Subject(check, partial(storage.get_connection().lset, key, -1, "0")), key


def _evalsha_totals(client: Any) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _batch(client: Any, subject: Subject, iterations: int) -> dict[str, float]:
    """One timed batch: the client's figures and the server's EVALSHA usec per call."""
    gc.collect()
    calls, usec = _evalsha_totals(client)
    figures = time_calls(subject, iterations)
    calls_after, usec_after = _evalsha_totals(client)
    if calls_after > calls:
        figures["server_us"] = (usec_after - usec) / (calls_after - calls)
    return figures


def _median(samples: list[dict[str, float]]) -> dict[str, float]:
    names = set.intersection(*(set(sample) for sample in samples))
    return {name: statistics.median(sample[name] for sample in samples) for name in names}


def _limits_url(url: str) -> str:
    # limits' storage takes the server's address; our own query options are not its.
    return urlunsplit(urlsplit(url)._replace(query=""))


def redis_table(
    server: Server,
    settings: Settings,
    limits: ModuleType | None,
    *,
    baseline: Path | None = None,
    retained_counts: tuple[int, ...] = RETAINED,
    notes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every row, measured in ``settings.redis_rounds`` interleaved rounds; medians."""
    if urlsplit(server.url).scheme not in ("redis", "rediss"):
        raise ValueError(f"the Redis table needs one redis-server (redis://), got {server.url!r}")
    store: Any = actiongate.store_from_url(server.url)
    client = store.client
    names = ["ours"] + (["base"] if baseline else []) + (["limits"] if limits else [])
    stores: dict[str, Any] = {"ours": store}
    if baseline is not None:
        stores["base"] = ScriptStore(store, baseline.read_text(encoding="utf-8"))
    argc = len(script_args(0.0, actiongate.Policy(), 60.0))
    trivial = client.script_load(TRIVIAL_SCRIPT)
    floor_args = (trivial, 1, b"actiongate-bench:floor", *(["1"] * argc))
    subjects: dict[tuple[str, str, int], Subject] = {
        ("floor", "trivial EVALSHA", 0): Subject(partial(client.evalsha, *floor_args)),
        ("floor", "PING", 0): Subject(client.ping),
    }
    # Each row's key: for MEMORY USAGE, and to delete at the end and nothing else (the server
    # may be shared).
    keys: dict[tuple[str, str, int], str] = {}
    for workload in WORKLOADS:
        for retained in retained_counts:
            for name in names:
                if name == "limits":
                    assert limits is not None
                    url = _limits_url(server.url)
                    subject, written = limits_redis_subject(limits, url, workload, retained)
                    keys[(name, workload, retained)] = written
                else:
                    gate = actiongate.Gate("bench-redis", f"{workload}-{name}", f"n{retained}")
                    store.clear(gate)  # however an earlier run left it
                    subject = engine_subject(actiongate, stores[name], gate, workload, retained)
                    keys[(name, workload, retained)] = store.key(gate)
                subjects[(name, workload, retained)] = subject
    short = dataclasses.replace(settings, target_seconds=settings.target_seconds / 5)
    iterations = {key: calibrate(subject, short) for key, subject in subjects.items()}
    samples: dict[tuple[str, str, int], list[dict[str, float]]] = {key: [] for key in subjects}
    for _ in range(settings.redis_rounds):
        for key, subject in subjects.items():  # interleaved: drift hits every column alike
            samples[key].append(_batch(client, subject, iterations[key]))
    results = {key: _median(runs) for key, runs in samples.items()}
    floor = results[("floor", "trivial EVALSHA", 0)]
    rows = []
    for workload in WORKLOADS:
        for retained in retained_counts:
            row = {name: results[(name, workload, retained)] for name in names}
            for name, figures in row.items():
                figures["floor_ratio"] = figures["p50_ns"] / floor["p50_ns"]
                # What the gate's state costs the server: the key after the timed rounds.
                figures["key_bytes"] = client.memory_usage(keys[(name, workload, retained)])
            rows.append({"workload": workload, "retained": retained, "results": row})
    info = client.info("server")
    client.delete(*keys.values())
    store.close()
    return {
        "url": server.url,
        "redis_version": info.get("redis_version", "?"),
        "started": server.started,
        "server_cpu": server.server_cpu,
        "client_cpu": server.client_cpu,
        "rounds": settings.redis_rounds,
        "implementations": names,
        "baseline": None if baseline is None else str(baseline),
        "notes": list(notes),
        "floor": {"trivial_evalsha": floor, "ping": results[("floor", "PING", 0)]},
        "rows": rows,
    }


# The table


def _placement(report: dict[str, Any]) -> str:
    cpus = report["server_cpu"], report["client_cpu"]
    if report["started"] and None not in cpus:
        return f"started by the bench on CPU {cpus[0]}, this process on CPU {cpus[1]}"
    if report["started"]:
        return "started by the bench; one CPU only, so client and server share it"
    where = "this process unpinned" if cpus[1] is None else f"this process on CPU {cpus[1]}"
    return f"not started by the bench ({where}): pin the server to another CPU yourself"


def print_redis_table(report: dict[str, Any], out: TextIO) -> None:
    names: list[str] = report["implementations"]
    peers = names[1:]
    floor, ping = report["floor"]["trivial_evalsha"], report["floor"]["ping"]
    print(
        "\nRedis: the server's time per decision (INFO commandstats: EVALSHA usec / calls), the"
        f"\nclient's p50 over a trivial EVALSHA's, medians of {report['rounds']} interleaved runs;"
        "\nthe key's MEMORY USAGE after them",
        file=out,
    )
    lines = [
        f"redis-server {report['redis_version']} at {report['url']}, {_placement(report)}",
        f"floor: trivial EVALSHA p50 {floor['p50_ns'] / 1000:.2f} us"
        f" (server {floor.get('server_us', 0.0):.2f} us); PING p50 {ping['p50_ns'] / 1000:.2f} us",
        *([f"base: {report['baseline']}, on its own SHA"] if report["baseline"] else []),
        *report["notes"],
    ]
    print(*(f"  {line}" for line in lines), sep="\n", file=out)
    columns = "".join(f"{name:>8}" for name in names)
    wide_columns = "".join(f"{name:>11}" for name in names)
    ratios = "".join(f"{'ours/' + name:>13}" for name in peers)
    width = len(columns) + len(ratios)
    head = f"{'server us / decision':^{width}}   {'client / floor':^{len(columns)}}"
    head += f"   {'key bytes':^{len(wide_columns)}}"
    print(f"{'':<24}{head}", file=out)
    print(f"{'row':<24}{columns}{ratios}   {columns}   {wide_columns}", file=out)
    for row in report["rows"]:
        results = row["results"]
        server = {name: results[name].get("server_us", math.nan) for name in names}
        line = f"{row['workload'] + ', ' + format(row['retained'], ',') + ' retained':<24}"
        line += "".join(f"{server[name]:>8.2f}" for name in names)
        line += "".join(f"{server['ours'] / server[name]:>12.2f}x" for name in peers)
        line += "   " + "".join(f"{results[name]['floor_ratio']:>7.2f}x" for name in names)
        line += "   " + "".join(f"{results[name]['key_bytes']:>11,}" for name in names)
        print(line, file=out)
