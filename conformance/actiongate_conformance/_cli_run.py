"""The ``run`` command: the layers in order, each one's section printed as it finishes.

What it prints, flushed as it comes, so that a long run shows how far it got: the header, once
the target passed the smoke check; per layer a heading with its time in seconds, then the
layer's section (vectors: the clause table and each failure with the command that reruns it;
the stateful model; atomicity and faults); the files written; the verdict line, last
(``reports/verdict.py`` decides it). ``-q`` prints only the failures and the verdict line, ``-v``
adds the passing vectors. On a terminal a count/total line shows a long layer going, rewritten
in place and cleared before its section; never in a pipe or a file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from hypothesis import configuration as hypothesis_configuration

from ._cli_commands import EXIT_FAIL, EXIT_OK, UsageError, write
from .data.skips import PLACEHOLDER, load_skip_file, skip_file_for
from .data.vectors import VectorError, load_all, select
from .layers.atomicity import AtomicityResult, run_atomicity
from .layers.stateful import StatefulResult, run_stateful
from .layers.vectors import PASS, Report, run_vectors, smoke
from .reports.json_report import json_report
from .reports.junit import junit_xml
from .reports.terminal import failure_lines, first_problem, stateful_summary, terminal_report
from .reports.verdict import Selection, run_verdict
from .targets import Target, target_from_string

__all__ = ["DEFAULT_TARGET", "DEFAULT_TIMEOUT", "rerun_command", "run_command"]

DEFAULT_TARGET = "memory://"
DEFAULT_TIMEOUT = 10.0
# A vector's rerun hint as reports/terminal.py writes it; rewritten with the run's own options.
RERUN_HINT = re.compile(
    r"^(?P<lead>\s*rerun: )actiongate-conformance run\b.* --select (?P<id>\S+)$"
)

Progress = Callable[[int], None]


def run_command(options: argparse.Namespace, stdout: TextIO) -> int:
    """Run the layers against ``options.target``; 0 conforming, 1 not (TargetError: none)."""
    began = time.monotonic()
    check_output_paths(options)
    vectors = select(load_all(options.vectors), options.select)
    if not vectors:
        raise VectorError(f"no vector matches {', '.join(options.select)}")
    known = load_skip_file(options.skip) if options.skip else None
    # The model and the atomicity checks follow the whole suite, not a chosen few vectors.
    whole_suite = not (options.vectors or options.select)
    out = Output(stdout, options)
    target = target_from_string(options.target, timeout=options.timeout)
    stateful: StatefulResult | None = None
    atomicity: AtomicityResult | None = None
    timings: dict[str, float] = {}  # seconds per layer run, as the reports name them
    try:
        smoke(target)
        out.header(target)
        started = time.monotonic()
        with out.progress("vectors", len(vectors)) as progress:
            report = run_vectors(target, vectors, known, progress)
        timings["vectors"] = time.monotonic() - started
        out.vectors(report, timings["vectors"])
        failed = bool(report.bad)
        if options.examples > 0 and whole_suite and not (failed and options.fail_fast):
            started = time.monotonic()
            with (
                out.progress("stateful examples", options.examples) as progress,
                _hypothesis_home(),
            ):
                stateful = run_stateful(
                    target,
                    options.examples,
                    options.seed,
                    options.emit,
                    options.budget,
                    target_spec=options.target,
                    progress=progress,
                )
            timings["stateful"] = time.monotonic() - started
            out.layer("stateful", timings["stateful"], stateful_summary(stateful), stateful.passed)
            failed = failed or not stateful.passed
        if options.atomicity > 0 and whole_suite and not (failed and options.fail_fast):
            started = time.monotonic()
            checks = f"atomicity and faults: about {options.atomicity:,} concurrent checks"
            with out.progress(checks, 0):
                atomicity = run_atomicity(options.target, options.atomicity, target)
            timings["atomicity"] = time.monotonic() - started
            heading = "atomicity and faults"
            out.layer(heading, timings["atomicity"], atomicity.summary(), atomicity.passed)
    finally:
        target.close()
    timings["total"] = time.monotonic() - began
    selection = Selection(tuple(options.select), tuple(map(str, options.vectors or ())))
    verdict = run_verdict(report, stateful, atomicity, selection)
    results = (report, stateful, atomicity)
    out.block(_write_outputs(options, target, results, selection, timings))
    # Last, after every layer's own lines, and the one value the exit code is read from.
    out.block(verdict.line, always=True)
    return EXIT_OK if verdict.conforming else EXIT_FAIL


class Output:
    """The run's stdout: blocks separated by a blank line, each flushed as it is printed."""

    def __init__(self, stream: TextIO, options: argparse.Namespace) -> None:
        self.stream = stream
        self.options = options
        self.quiet: bool = options.quiet
        self.verbose: bool = options.verbose
        isatty = getattr(stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.implementation: dict[str, Any] = {}
        self.printed = False

    def block(self, text: str, *, always: bool = False) -> None:
        """Print ``text`` after a blank line (none before the first); not under -q unless
        ``always``."""
        if not text or (self.quiet and not always):
            return
        self.stream.write(("\n" if self.printed else "") + text + "\n")
        self.stream.flush()
        self.printed = True

    def header(self, target: Target) -> None:
        self.implementation = target.hello["implementation"]
        # The report's own header: the first paragraph of its text, here before any result.
        empty = terminal_report(Report(), self.options.target, self.implementation)
        self.block(empty.partition("\n\n")[0])

    def vectors(self, report: Report, seconds: float) -> None:
        if self.quiet:
            for outcome in report.bad:
                text = "\n".join(failure_lines(outcome, self.options.target))
                self.block(self.rerun_hints(text), always=True)
            return
        text = terminal_report(report, self.options.target, self.implementation)
        lines = [f"== vectors ({seconds:.2f} s)", self.rerun_hints(text.partition("\n\n")[2])]
        if self.verbose:
            passed = report.with_result(PASS)
            lines += ["", f"passed: {len(passed)} vectors"]
            lines += [f"  {o.vector.id}  [{', '.join(o.vector.clauses)}]" for o in passed]
        self.block("\n".join(lines))

    def layer(self, name: str, seconds: float, text: str, passed: bool) -> None:
        """A layer's section under its heading; under -q only a failed layer's text."""
        if self.quiet:
            if not passed:
                self.block(text, always=True)
            return
        self.block(f"== {name} ({seconds:.2f} s)\n{text}")

    def rerun_hints(self, text: str) -> str:
        """The vectors' rerun hints, with the options this run needs to find them again."""
        return "\n".join(
            match["lead"] + rerun_command(self.options, match["id"])
            if (match := RERUN_HINT.match(line))
            else line
            for line in text.split("\n")
        )

    @contextlib.contextmanager
    def progress(self, label: str, total: int) -> Iterator[Progress | None]:
        """A ``label done/total`` line on a terminal (``label`` alone when ``total`` is 0),
        rewritten in place and cleared on the way out; None elsewhere, and under -q."""
        if not self.terminal or self.quiet:
            yield None
            return
        width = 0

        def show(done: int) -> None:
            nonlocal width
            text = f"{label} {done:,}/{total:,}" if total else f"{label} ..."
            self.stream.write("\r" + text.ljust(width))
            self.stream.flush()
            width = max(width, len(text))

        try:
            if not total:
                show(0)
            yield show
        finally:
            if width:
                self.stream.write("\r" + " " * width + "\r")
                self.stream.flush()


def rerun_command(options: argparse.Namespace, vector_id: str) -> str:
    """The command that runs one vector again as this run did: same target, vector files, skip
    file and timeout."""
    words = ["actiongate-conformance", "run"]
    if options.target != DEFAULT_TARGET:
        words += ["--target", options.target]
    for path in options.vectors or ():
        words += ["--vectors", str(path)]
    if options.skip:
        words += ["--skip", str(options.skip)]
    if options.timeout != DEFAULT_TIMEOUT:
        words += ["--timeout", f"{options.timeout:g}"]
    return shlex.join([*words, "--select", vector_id])


def _write_outputs(
    options: argparse.Namespace,
    target: Target,
    results: tuple[Report, StatefulResult | None, AtomicityResult | None],
    selection: Selection,
    timings: dict[str, float],
) -> str:
    """Write the files the options ask for; one line per file saying what was written."""
    report, stateful, atomicity = results
    lines = []
    if options.json:
        document = json_report(
            report,
            options.target,
            target.hello,
            stateful,
            atomicity,
            selection=selection,
            timings=timings,
        )
        write(options.json, json.dumps(document, indent=2))
        lines.append(f"wrote the JSON report to {options.json}")
    if options.junit:
        xml = junit_xml(
            report, options.target, stateful, atomicity, selection=selection, timings=timings
        )
        write(options.junit, xml)
        lines.append(f"wrote JUnit XML to {options.junit}")
    if options.write_skip:
        failures = [(o.vector.id, first_problem(o)) for o in report.bad]
        write(options.write_skip, json.dumps(skip_file_for(failures), indent=2))
        count = f"{len(failures)} known failure{'' if len(failures) == 1 else 's'}"
        line = f"wrote {count} to {options.write_skip}"
        if failures:
            line += f"; --skip reads it once each reason says why, not {PLACEHOLDER!r}"
        lines.append(line)
    return "\n".join(lines)


def check_output_paths(options: argparse.Namespace) -> None:
    """Raise UsageError, before anything runs, for an output the run could not write."""
    for flag, path in (
        ("--json", options.json),
        ("--junit", options.junit),
        ("--write-skip", options.write_skip),
    ):
        problem = None if path is None else _file_problem(path)
        if problem:
            raise UsageError(f"{flag} {path}: {problem}")
    # --emit is written only when the stateful model runs and finds a counterexample.
    if options.examples > 0 and not (options.vectors or options.select):
        problem = _directory_problem(options.emit)
        if problem:
            raise UsageError(f"--emit {options.emit}: {problem}")


def _file_problem(path: Path) -> str | None:
    if path.is_dir():
        return "is a directory"
    parent = path.parent
    if not parent.exists():
        return f"the directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "cannot be written"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"cannot create a file in {parent}"


def _directory_problem(path: Path) -> str | None:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write in {existing}"
    return None


@contextlib.contextmanager
def _hypothesis_home() -> Iterator[None]:
    """Hypothesis' files in a temporary directory, so that a run leaves no ``.hypothesis/``.

    The stateful search keeps no example database (``database=None``), but hypothesis still
    caches what it reads from local source files under its home, ``./.hypothesis`` unless
    HYPOTHESIS_STORAGE_DIRECTORY says otherwise; that choice, when made, is kept.
    """
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    # Private, so read defensively: None is hypothesis' own default, resolved when next needed.
    previous = vars(hypothesis_configuration).get("__hypothesis_home_directory")
    with tempfile.TemporaryDirectory(prefix="actiongate-hypothesis-") as home:
        hypothesis_configuration.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            hypothesis_configuration.set_hypothesis_home_dir(previous)
