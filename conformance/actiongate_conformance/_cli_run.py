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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from . import api
from ._cli_commands import EXIT_FAIL, EXIT_OK, UsageError, write
from .api import DEFAULT_TARGET, DEFAULT_TIMEOUT, LayerFinished, RunResult
from .data.skips import PLACEHOLDER, skip_file_for
from .layers.stateful import StatefulResult
from .layers.vectors import PASS, Report
from .reports.junit import junit_xml
from .reports.terminal import failure_lines, first_problem, stateful_summary, terminal_report

__all__ = ["DEFAULT_TARGET", "DEFAULT_TIMEOUT", "rerun_command", "run_command"]

# A vector's rerun hint as reports/terminal.py writes it; rewritten with the run's own options.
RERUN_HINT = re.compile(
    r"^(?P<lead>\s*rerun: )actiongate-conformance run\b.* --select (?P<id>\S+)$"
)


def run_command(options: argparse.Namespace, stdout: TextIO) -> int:
    """Run the layers against ``options.target``; 0 conforming, 1 not (TargetError: none)."""
    check_output_paths(options)
    out = Output(stdout, options)
    with out.cleared():
        result = api.run(
            options.target,
            seed=options.seed,
            examples=options.examples,
            atomicity=options.atomicity,
            select=options.select,
            vectors=options.vectors,
            skip=options.skip,
            emit=options.emit,
            budget=options.budget,
            timeout=options.timeout,
            fail_fast=options.fail_fast,
            observer=out,
        )
    out.block(_write_outputs(options, result))
    # Last, after every layer's own lines, and the one value the exit code is read from.
    out.block(result.verdict.line, always=True)
    return EXIT_OK if result.verdict.conforming else EXIT_FAIL


class Output(api.Observer):
    """The run's stdout: blocks separated by a blank line, each flushed as it is printed; told
    of the layers by the run as they go (``api.Observer``)."""

    def __init__(self, stream: TextIO, options: argparse.Namespace) -> None:
        self.stream = stream
        self.options = options
        self.quiet: bool = options.quiet
        self.verbose: bool = options.verbose
        isatty = getattr(stream, "isatty", None)
        # The count/total line: on a terminal, not under -q.
        self.counting = bool(isatty and isatty()) and not self.quiet
        self.implementation: dict[str, Any] = {}
        self.printed = False
        self.label = ""  # the layer being counted, as the count line names it
        self.total = 0
        self.width = 0  # of the count line drawn, to be cleared

    def block(self, text: str, *, always: bool = False) -> None:
        """Print ``text`` after a blank line (none before the first); not under -q unless
        ``always``."""
        if not text or (self.quiet and not always):
            return
        self.stream.write(("\n" if self.printed else "") + text + "\n")
        self.stream.flush()
        self.printed = True

    def started(self, hello: Mapping[str, Any]) -> None:
        self.implementation = dict(hello["implementation"])
        # The report's own header: the first paragraph of its text, here before any result.
        empty = terminal_report(Report(), self.options.target, self.implementation)
        self.block(empty.partition("\n\n")[0])

    def layer_started(self, layer: str, total: int) -> None:
        """A ``label done/total`` line on a terminal (``label ...`` when ``total`` is 0)."""
        checks = f"atomicity and faults: about {self.options.atomicity:,} concurrent checks"
        labels = {"vectors": "vectors", "stateful": "stateful examples", "atomicity": checks}
        self.label, self.total = labels[layer], total
        if not total:
            self.progress(layer, 0)

    def progress(self, layer: str, done: int) -> None:
        if not self.counting:
            return
        text = f"{self.label} {done:,}/{self.total:,}" if self.total else f"{self.label} ..."
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = max(self.width, len(text))

    def layer_finished(self, event: LayerFinished) -> None:
        self.clear()
        result, seconds = event.result, event.seconds
        if isinstance(result, Report):
            self.vectors(result, seconds)
        elif isinstance(result, StatefulResult):
            self.layer("stateful", seconds, stateful_summary(result), result.passed)
        else:
            self.layer("atomicity and faults", seconds, result.summary(), result.passed)

    def clear(self) -> None:
        """Rub out the count line, if one is drawn."""
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    @contextlib.contextmanager
    def cleared(self) -> Iterator[None]:
        """No count line left behind, whatever ends the run (an error is printed next)."""
        try:
            yield
        finally:
            self.clear()

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


def _write_outputs(options: argparse.Namespace, result: RunResult) -> str:
    """Write the files the options ask for; one line per file saying what was written."""
    lines = []
    if options.json:
        write(options.json, json.dumps(result.json(), indent=2))
        lines.append(f"wrote the JSON report to {options.json}")
    if options.junit:
        xml = junit_xml(
            result.report,
            options.target,
            result.stateful,
            result.atomicity,
            selection=result.selection,
            timings=result.timings,
        )
        write(options.junit, xml)
        lines.append(f"wrote JUnit XML to {options.junit}")
    if options.write_skip:
        failures = [(o.vector.id, first_problem(o)) for o in result.report.bad]
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
