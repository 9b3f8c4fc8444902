"""Run the whole suite on a mutant, at CI budget, and say which layers caught it; the table.

A run is ``actiongate_conformance.cli.run`` with the CI seed and the default examples and
concurrent checks, as ``.ci/run`` runs the suite; its JSON report says what each layer found:
vectors (any vector failed or could not be run), stateful (the model found a disagreement),
atomicity (the concurrent history is not linearizable), faults (an injected store fault was
mishandled).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actiongate_conformance.cli import run

from . import MUTANTS

__all__ = [
    "CAUGHT_FILE",
    "CONTROLS",
    "README",
    "SEED",
    "Caught",
    "readme_with",
    "run_mutant",
    "run_mutants",
    "runnable",
    "table",
]

SEED = 20261124  # .ci/run's
CAUGHT_FILE = Path(__file__).with_name("CAUGHT.md")
README = Path(__file__).resolve().parents[2] / "README.md"  # shows the table between markers
BEGIN, END = "<!-- mutation-zoo -->\n", "<!-- /mutation-zoo -->"
SERVE = Path(__file__).with_name("serve.py")
# Correct targets under the same harness: the reference, the lock-guarded ListStore that store
# mutants are built on (all but ReadThenWrite and StoreErrorRecorded), and the reference served
# by serve.py with no patch.
CONTROLS = {
    "reference": "memory://",
    "store-base": "py:tests.mutants.stores:Mutant",
    "engine-harness": "cmd:python3 -m tests.mutants.serve unpatched",
}
# Mutants the atomicity layer catches in some runs only: its threads interleave differently
# each run, and only some interleavings put an event exactly at a window's edge. Measured over
# 100 runs of that layer alone: ExclusiveWindow caught in 96, WindowEpsilon in 87. Their cell
# says so rather than what one run saw, so that the table does not flicker. TtlExactlyWindow
# (expired at exactly newest + window) was caught there once in about 13 whole-zoo runs, and
# in none of 100 runs of that layer alone, 40 of them with both cores busy.
SCHEDULE_DEPENDENT = {"ExclusiveWindow", "WindowEpsilon", "TtlExactlyWindow"}
MISSED, NOT_APPLICABLE, NOT_RUN, SOMETIMES = "-", "n/a", "not run", "some runs"


@dataclass(frozen=True)
class Caught:
    """What one run of the suite said about one target."""

    name: str
    exit_code: int
    failing_vectors: int  # failed, or an adapter fault
    stateful: bool | None  # True: caught; None: not run
    atomicity: bool | None
    faults: bool | None
    seconds: float
    output: str  # what the command printed
    ran: bool = True  # False: it stopped before the vectors (exit 2, no report)

    @property
    def smoke_stopped(self) -> bool:
        return not self.ran and "smoke check failed" in self.output

    @property
    def caught(self) -> bool:
        return self.exit_code == 1 and any(self.by_layer().values())

    def by_layer(self) -> dict[str, bool]:
        return {
            "vectors": self.failing_vectors > 0,
            "stateful": self.stateful is True,
            "atomicity": self.atomicity is True,
            "faults": self.faults is True,
        }

    def cells(self) -> list[str]:
        if not self.ran:
            why = "smoke check, " if self.smoke_stopped else ""
            return [f"{NOT_RUN} ({why}exit {self.exit_code})", *[NOT_RUN] * 3]
        vectors = f"{self.failing_vectors} failing" if self.failing_vectors else MISSED
        atomicity = SOMETIMES if self.name in SCHEDULE_DEPENDENT else _cell(self.atomicity)
        return [vectors, _cell(self.stateful), atomicity, _cell(self.faults)]


def _cell(caught: bool | None) -> str:
    return NOT_APPLICABLE if caught is None else ("caught" if caught else MISSED)


def runnable(target: str) -> str:
    """The target as this interpreter runs it from any directory (a serve.py path for -m)."""
    module = "cmd:python3 -m tests.mutants.serve "
    if target.startswith(module):
        python, serve = shlex.quote(sys.executable), shlex.quote(str(SERVE))
        return f"cmd:{python} {serve} {target.removeprefix(module)}"
    return target


def run_mutant(name: str, target: str, workdir: Path) -> Caught:
    """The whole suite against ``target``; counterexamples and the report go to ``workdir``."""
    report = workdir / "r.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    arguments = ["run", "--target", runnable(target), "--seed", str(SEED)]
    arguments += ["--emit", str(workdir), "--json", str(report)]
    started = time.monotonic()
    code = run(arguments, stdout, stderr)
    seconds = time.monotonic() - started
    output = stdout.getvalue() + stderr.getvalue()
    if not report.exists():
        return Caught(name, code, 0, None, None, None, seconds, output, ran=False)
    document: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    counts = document["counts"]
    stateful = document["stateful"]
    atomicity = document["atomicity"] or {}
    return Caught(
        name,
        code,
        counts["fail"] + counts["error"],
        None if stateful is None else not stateful["passed"],
        _flagged(atomicity.get("linearizable")),
        _flagged(atomicity.get("faults_ok")),
        seconds,
        output,
    )


def run_mutants(names: list[str], scratch: Path) -> dict[str, Caught]:
    """``run_mutant`` for each name, a workdir each under ``scratch``, as many at once as there
    are CPUs (two on CI): each run is one process of its own, near enough single-threaded, and
    the zoo is most of the test suite's time. Spawned, not forked: the caller may hold threads.
    """
    workdirs = {name: scratch / name for name in names}
    for workdir in workdirs.values():
        workdir.mkdir()
    workers = min(len(names), os.cpu_count() or 1)
    if workers <= 1:
        return {name: run_mutant(name, MUTANTS[name].target, workdirs[name]) for name in names}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {
            name: pool.submit(run_mutant, name, MUTANTS[name].target, workdirs[name])
            for name in names
        }
        return {name: future.result() for name, future in futures.items()}


def _flagged(ok: bool | None) -> bool | None:
    return None if ok is None else not ok


def table(results: list[Caught]) -> str:
    """The score line and the Markdown table, as CAUGHT.md holds them."""
    seen = [result for result in results if not MUTANTS[result.name].unseen]
    unseen = [result for result in results if MUTANTS[result.name].unseen]
    stopped = [f"`{result.name}`" for result in results if result.smoke_stopped]
    lines = [f"{_score(seen)} mutants caught at CI budget"]
    if unseen:
        lines[0] += (
            f"; of those written after the suite's strategies, without reading them (unseen), "
            f"{_score(unseen)}"
        )
    if stopped:
        lines.append(
            f"({len(stopped)} stopped by the smoke check before any layer ran: exit 2, taken "
            f"for a broken adapter: {', '.join(stopped)})"
        )
    lines += [
        "",
        "| mutant | the bug | kind | vectors | stateful | atomicity | faults |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        mutant = MUTANTS[result.name]
        kind = f"{mutant.kind}, unseen" if mutant.unseen else mutant.kind
        cells = [f"`{result.name}`", mutant.bug, kind, *result.cells()]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += [
        "",
        f"Each row is one `actiongate-conformance run --target TARGET --seed {SEED}` (200 stateful "
        "examples, about 2,000 concurrent checks). vectors: how many of the vectors failed; "
        f"stateful, atomicity, faults: whether that layer caught the bug; `{MISSED}`: it ran "
        f"and did not; `{SOMETIMES}`: the concurrent history depends on thread scheduling, "
        f"and the layer catches the bug in some runs and not in others; `{NOT_APPLICABLE}`: "
        "the layer does not run on this kind of target (a `cmd:` port that declares no "
        f"`burst` or no `store_faults` capability); `{NOT_RUN}`: the run stopped before "
        "it. Regenerate: `python3 -m tests.mutants --write`.",
    ]
    return "\n".join(lines) + "\n"


def _score(results: list[Caught]) -> str:
    return f"{sum(result.caught for result in results)} of {len(results)}"


def readme_with(caught: str) -> str:
    """README.md with ``caught`` (CAUGHT.md's text) between its mutation-zoo markers."""
    text = README.read_text(encoding="utf-8")
    before, rest = text.split(BEGIN, 1)
    return before + BEGIN + caught + END + rest.split(END, 1)[1]
