"""Benchmark of the memory engine beside its peers: per-check p50/p99, throughput, memory.

    python -m actiongate.bench [--quick] [--json FILE] [--upstream DIR]
        [--start-redis | --redis URL] [--baseline-script FILE] [--redis-only]

    # with upstream actiongate 0.3.0 (Python >= 3.12) and limits installed in one venv:
    PYTHONPATH=reference venv/bin/python -m actiongate.bench \\
        --upstream venv/lib/python3.12/site-packages

Peers run in the same interpreter and run when they import; upstream shares our import name,
so it is loaded from DIR as ``actiongate_upstream``. Method (PEERS.md): one thread, injected
clock, ``perf_counter_ns`` around each call, warm-up, then medians of 3 repetitions interleaved
across implementations. The machine is noisy: compare ratios within one run, never absolute
times across runs. ``--quick`` is a smoke run of a few seconds. It measures, never asserts.
``--start-redis`` or ``--redis URL`` adds the Redis table (``bench_redis.py``): server time per
decision and client latency over the round-trip floor, beside limits' moving window.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import importlib.util
import itertools
import json
import platform
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import urlsplit

import actiongate

from ._bench_common import (
    REPETITIONS,
    RETAINED,
    WORKLOADS,
    ManualClock,
    Settings,
    Subject,
    calibrate,
    engine_subject,
    medians,
    micros,
    time_calls,
)

UPSTREAM_NAME = "actiongate_upstream"
LONG_WINDOW = 3600  # seconds: every limits hit of a row stays retained for the whole run
NOISE_NOTE = "the machine is noisy: compare ratios within this run only"
LIMITS_NOTE = (
    "note: limits returns a bool where we return a full Decision, has no cooldown and reads"
    " the wall clock; its allow rows are trimmed back to ~N retained between calls, untimed"
)

FULL = Settings(target_seconds=0.5, expired_gates=100_000, redis_rounds=15)
QUICK = Settings(target_seconds=0.005, expired_gates=10_000, redis_rounds=3)


@dataclass(frozen=True)
class Implementation:
    name: str
    label: str
    module: ModuleType  # an actiongate-compatible package, or limits

    def make(self, workload: str, retained: int) -> Subject:
        """A subject for one row, already holding ``retained`` events."""
        build = limits_subject if self.name == "limits" else actiongate_subject
        return build(self.module, workload, retained)


def actiongate_subject(package: ModuleType, workload: str, retained: int) -> Subject:
    """Ours or upstream, over its memory store."""
    gate = package.Gate("bench", workload, "user:1")
    return engine_subject(package, package.MemoryStore(), gate, workload, retained)


def limits_subject(limits: ModuleType, workload: str, retained: int) -> Subject:
    """limits' moving window over its memory storage; it reads the wall clock."""
    storage = limits.storage.MemoryStorage()
    limiter = limits.strategies.MovingWindowRateLimiter(storage)
    amount = retained if workload == "blocked" else 10**9
    item = limits.RateLimitItemPerSecond(amount, LONG_WINDOW)
    for _ in range(retained):
        limiter.hit(item, "user:1")
    check = partial(limiter.hit, item, "user:1")
    if workload == "blocked":
        return Subject(check)
    return Subject(check, limits_trimmer(storage, item.key_for("user:1"), retained))


def limits_trimmer(storage: Any, key: str, retained: int) -> Callable[[], None]:
    """Cut limits' newest-first list back to N to 1.1 N entries, between timed calls.

    It stands in for limits' expiry timer, which runs on the wall clock, not an injected one.
    """
    every = max(1, retained // 10)
    calls = itertools.count()

    def trim() -> None:
        if next(calls) % every == 0:
            with storage.locks[key]:
                del storage.events[key][retained:]

    return trim


def load_upstream(directory: str | None) -> tuple[ModuleType | None, str]:
    """Upstream under another name (it shares ours), or None and the reason it is skipped."""
    if directory is None:
        return None, "no --upstream DIR given"
    if sys.version_info < (3, 12):
        return None, f"it needs Python >= 3.12, this is {platform.python_version()}"
    package = Path(directory) / "actiongate"
    if not (package / "__init__.py").is_file():
        return None, f"there is no actiongate/__init__.py under {directory}"
    spec = importlib.util.spec_from_file_location(
        UPSTREAM_NAME, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        return None, f"importlib found no loader for {package}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[UPSTREAM_NAME] = module  # before exec, so its relative imports resolve
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(UPSTREAM_NAME, None)
        return None, f"it failed to import: {error!r}"
    found = importlib.metadata.distributions(name="actiongate", path=[directory])
    version = next((dist.version for dist in found), "?")
    return module, f"upstream actiongate {version} from {package}"


def load_limits() -> tuple[ModuleType | None, str]:
    try:
        limits = importlib.import_module("limits")
        importlib.import_module("limits.storage")
        importlib.import_module("limits.strategies")
    except ImportError as error:
        return None, f"it is not importable: {error}"
    return limits, f"limits {limits.__version__} MovingWindowRateLimiter over MemoryStorage"


def measure_rows(
    implementations: Sequence[Implementation], settings: Settings
) -> list[dict[str, Any]]:
    rows = [(workload, retained) for workload in WORKLOADS for retained in RETAINED]
    subjects = {(i.name, *row): i.make(*row) for row in rows for i in implementations}
    iterations = {key: calibrate(subject, settings) for key, subject in subjects.items()}
    samples: dict[tuple[str, str, int], list[dict[str, float]]] = {key: [] for key in subjects}
    for _ in range(REPETITIONS):
        for row in rows:
            for implementation in implementations:  # interleaved, so drift hits all alike
                key = (implementation.name, *row)
                gc.collect()
                samples[key].append(time_calls(subjects[key], iterations[key]))
    return [
        {
            "workload": workload,
            "retained": retained,
            "results": {
                i.name: medians(samples[(i.name, workload, retained)]) for i in implementations
            },
        }
        for workload, retained in rows
    ]


def expired_gate_memory(package: ModuleType, gates: int) -> dict[str, float]:
    """Traced bytes before, at peak and after ``gates`` one-shot gates expire and are swept."""
    clock = ManualClock()
    engine = package.Engine(store=package.MemoryStore(), clock=clock)
    policy = package.Policy(max_calls=1, window=1.0)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for index in range(gates):
        engine.check(package.Gate("bench", "one-shot", f"user:{index}"), policy)
    clock.now = 2.0  # past every window; one more check lets housekeeping run
    engine.check(package.Gate("bench", "one-shot", "after"), policy)
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "gates": gates,
        "before_bytes": before,
        "peak_bytes": peak,
        "after_bytes": after,
        "bytes_per_gate_after": (after - before) / gates,
    }


def scaling(rows: list[dict[str, Any]], name: str) -> dict[str, float]:
    """p50 at the most retained events over p50 at the fewest, per workload."""
    p50 = {(r["workload"], r["retained"]): r["results"][name]["p50_ns"] for r in rows}
    return {w: p50[(w, RETAINED[-1])] / p50[(w, RETAINED[0])] for w in WORKLOADS}


def print_report(
    report: dict[str, Any], implementations: Sequence[Implementation], out: TextIO
) -> None:
    peers = [i.name for i in implementations[1:]]
    header = f"{'workload':<24}{'ours p50':>11}{'ours p99':>11}{'ours checks/s':>15}"
    header += "".join(f"{name + ' p50':>15}{'ours/' + name:>16}" for name in peers)
    print(f"per check, medians of {REPETITIONS} interleaved repetitions", file=out)
    print(header, file=out)
    for row in report["rows"]:
        ours = row["results"]["ours"]
        line = f"{row['workload'] + ', ' + format(row['retained'], ',') + ' retained':<24}"
        line += f"{micros(ours['p50_ns']):>11}{micros(ours['p99_ns']):>11}"
        line += f"{ours['checks_per_s']:>15,.0f}"
        for name in peers:
            peer = row["results"][name]["p50_ns"]
            line += f"{micros(peer):>15}{ours['p50_ns'] / peer:>15.2f}x"
        print(line, file=out)
    print(f"\nscaling, p50 at {RETAINED[-1]:,} retained / p50 at {RETAINED[0]:,}:", file=out)
    for name, ratios in report["scaling"].items():
        target = "  (our target: at most 1.5x)" if name == "ours" else ""
        text = ", ".join(f"{workload} {ratio:.2f}x" for workload, ratio in ratios.items())
        print(f"  {name:<10}{text}{target}", file=out)
    print("\nmemory of expired one-shot gates (tracemalloc, window 1 s, then swept):", file=out)
    for name, memory in report["memory"].items():
        print(
            f"  {name:<10}{memory['gates']:,} gates: before {memory['before_bytes']:,} B, "
            f"peak {memory['peak_bytes']:,} B, after {memory['after_bytes']:,} B "
            f"= {memory['bytes_per_gate_after']:.1f} B/gate retained after expiry",
            file=out,
        )


def load_implementations(upstream: str | None) -> tuple[list[Implementation], dict[str, str]]:
    """Ours, then each peer that imports; the reason for each peer that does not."""
    label = f"ours: actiongate {actiongate.__version__} from {Path(actiongate.__file__).parent}"
    implementations = [Implementation("ours", label, actiongate)]
    skipped: dict[str, str] = {}
    for name, (module, note) in (("upstream", load_upstream(upstream)), ("limits", load_limits())):
        if module is None:
            skipped[name] = note
        else:
            implementations.append(Implementation(name, note, module))
    return implementations, skipped


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actiongate.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--upstream", metavar="DIR", help="site-packages holding upstream")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--start-redis",
        action="store_true",
        help="add the Redis table on a redis-server (from PATH) started on a free loopback port,"
        " pinned to another CPU than this process, and stopped at the end",
    )
    where.add_argument("--redis", metavar="URL", help="add the Redis table, on this server")
    parser.add_argument(
        "--baseline-script",
        metavar="FILE",
        type=Path,
        help="a column for another version of check_and_reserve.lua (same ARGV and reply)",
    )
    parser.add_argument("--redis-only", action="store_true", help="skip the memory tables")
    return parser


def memory_report(
    implementations: list[Implementation], skipped: dict[str, str], settings: Settings, out: TextIO
) -> dict[str, Any]:
    """The memory tables, printed; their figures, for the JSON report."""
    rows = measure_rows(implementations, settings)
    report = {
        "implementations": {i.name: i.label for i in implementations},
        "skipped": skipped,
        "rows": rows,
        "scaling": {i.name: scaling(rows, i.name) for i in implementations},
        "memory": {
            i.name: expired_gate_memory(i.module, settings.expired_gates)
            for i in implementations
            if i.name != "limits"  # wall clock: it cannot be moved past the window
        },
    }
    print_report(report, implementations, out)
    return report


def redis_report(options: argparse.Namespace, settings: Settings, out: TextIO) -> dict[str, Any]:
    """The Redis table, printed; its figures, for the JSON report."""
    from . import bench_redis  # noqa: PLC0415 - needs redis-py

    limits, label = load_limits()
    if limits is None:
        notes = [f"ours alone: limits is not installed ({label})"]
        notes += ["pip install 'actiongate-conformance[bench]' adds it"]
    else:
        label = label.replace("MovingWindowRateLimiter over MemoryStorage", "moving window")
        notes = [f"{label}: MovingWindowRateLimiter.hit over its redis:// storage"]
        notes += bench_redis.LIMITS_NOTES
    with bench_redis.running(options.redis) as server:
        report = bench_redis.redis_table(
            server, settings, limits, baseline=options.baseline_script, notes=(*notes, NOISE_NOTE)
        )
    bench_redis.print_redis_table(report, out)
    return report


def run(arguments: Sequence[str], out: TextIO) -> int:
    parser = _parser()
    options = parser.parse_args(arguments)
    with_redis = options.start_redis or options.redis is not None
    if (options.redis_only or options.baseline_script) and not with_redis:
        parser.error("--redis-only and --baseline-script need --start-redis or --redis URL")
    if options.redis is not None and urlsplit(options.redis).scheme not in ("redis", "rediss"):
        parser.error(f"--redis takes one redis-server's redis:// URL, got {options.redis!r}")
    settings = QUICK if options.quick else FULL
    implementations, skipped = load_implementations(options.upstream)

    print(f"Python {platform.python_version()}", file=out)
    report: dict[str, Any] = {"python": platform.python_version(), "quick": options.quick}
    if not options.redis_only:  # the Redis table prints notes of its own
        notes = [i.label for i in implementations]
        notes += [f"{n}: skipped, {r}" for n, r in skipped.items()]
        notes += [NOISE_NOTE] if "limits" in skipped else [LIMITS_NOTE, NOISE_NOTE]
        print(*(f"  {note}" for note in notes), sep="\n", end="\n\n", file=out)
        report.update(memory_report(implementations, skipped, settings, out))
    if with_redis:
        report["redis"] = redis_report(options, settings, out)
    if options.json is not None:
        Path(options.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], sys.stdout))
