"""The ``actiongate-conformance`` command: run, list, validate, explain, report.

``run(arguments, stdout, stderr)`` is the whole program, so tests call it with streams; ``main``
adds what only a process has (its exit, a reader that goes away). The ``run`` command is in
``_cli_run.py``, the others in ``_cli_commands.py``. Exit codes: ``EXIT_CODES`` below.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import SPEC_VERSION, __version__
from ._cli_commands import (
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_OK,
    EXIT_PIPE,
    UsageError,
    explain_command,
    list_command,
    report_command,
    validate_command,
)
from ._cli_run import DEFAULT_TARGET, DEFAULT_TIMEOUT, run_command
from .data.vectors import VectorError
from .reports.matrix import MatrixError
from .targets import TargetError

__all__ = ["EXIT_ERROR", "EXIT_FAIL", "EXIT_OK", "main", "run"]

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    conforming (run), or done: files valid (validate), listed, explained, reported
  {EXIT_FAIL}    not conforming (run), or a file is not valid (validate)
  {EXIT_ERROR}    no verdict: the target could not be run, a vector, skip or report file is
       malformed, an output path cannot be written, or the command was misused
  {EXIT_PIPE}  the reader of the output went away (e.g. | head); the command stopped
"""

RUN_EPILOG = f"""\
Output is streamed: the header, then each layer's section with its time as it finishes
(vectors, stateful, atomicity and faults), then the verdict line, always last. On a terminal a
count/total line shows progress. Hypothesis, which drives the stateful model, keeps its caches
in a temporary directory removed after the run, unless HYPOTHESIS_STORAGE_DIRECTORY names one.

{EXIT_CODES}"""


def _parser() -> argparse.ArgumentParser:
    # --debug is accepted before the command and after it: each subcommand has its own copy,
    # whose default is left unset so that it cannot undo the top-level one.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors"
    )
    parser = argparse.ArgumentParser(
        prog="actiongate-conformance",
        description=f"Check an ActionGate implementation against SEMANTICS.md {SPEC_VERSION}.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument(
        "--version",
        action="version",
        version=f"actiongate-conformance {__version__} (ActionGate spec {SPEC_VERSION})",
        help="show the suite's version and the spec's, and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run_command_parser = commands.add_parser(
        "run",
        parents=[debug],
        help="run the suite against a target",
        description="Run the vectors, the stateful model, the atomicity and the fault checks\n"
        "against a target, and say whether it conforms.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_arguments(run_command_parser)

    commands.add_parser("list", parents=[debug], help="list clauses and vectors")

    validate = commands.add_parser(
        "validate",
        parents=[debug],
        help="check vector files, decision records, reports or skip files",
    )
    validate.add_argument("files", nargs="+", type=Path)

    explain = commands.add_parser("explain", parents=[debug], help="print a vector as a timeline")
    explain.add_argument("vector_id")

    report = commands.add_parser(
        "report",
        parents=[debug],
        help="put run reports (run --json) side by side: a compatibility matrix",
        description="Clauses as rows, reports as columns; failing cells link to the vectors. "
        "A --md file that holds the lines <!-- compatibility-matrix --> and "
        "<!-- /compatibility-matrix --> gets the table between them (a README); any other "
        "is written whole.",
    )
    report.add_argument("reports", nargs="+", type=Path, metavar="RESULTS.json")
    report.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="TEXT",
        help="column labels, in the order of the reports (default: the implementation's name)",
    )
    report.add_argument("--md", action="append", type=Path, default=[], metavar="FILE")
    report.add_argument("--html", type=Path, metavar="FILE")
    return parser


def _run_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        help="memory:// (default), fakeredis://, redis://host:port/db, py:module:callable, "
        "or cmd:PROGRAM ARGS (an adapter speaking spec/protocol.schema.json)",
    )
    command.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only vectors whose id or a clause matches this glob (repeatable)",
    )
    command.add_argument(
        "--vectors",
        action="append",
        type=Path,
        default=None,
        metavar="FILE",
        help="vector files to run instead of the suite's own (repeatable)",
    )
    command.add_argument(
        "--skip",
        type=Path,
        metavar="FILE",
        help="known failures, declared with reasons (placeholder reasons are rejected)",
    )
    command.add_argument(
        "--write-skip",
        type=Path,
        metavar="FILE",
        help="write this run's failures as a starting skip file, to explain before --skip",
    )
    command.add_argument("--json", type=Path, metavar="FILE", help="write a JSON report")
    command.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML")
    command.add_argument(
        "--examples",
        type=int,
        default=200,
        metavar="N",
        help="stateful-model examples after the vectors (default 200; 0 skips the model; "
        "skipped with --select or --vectors)",
    )
    command.add_argument(
        "--atomicity",
        type=int,
        default=2000,
        metavar="N",
        help="about N concurrent checks, checked for linearizability, then injected store "
        "faults (default 2000; 0 skips; skipped with --select or --vectors)",
    )
    command.add_argument(
        "--seed", type=int, metavar="N", help="seed of the stateful model (default: drawn, shown)"
    )
    command.add_argument(
        "--budget", type=float, metavar="SECONDS", help="stop the stateful search after this long"
    )
    command.add_argument(
        "--emit",
        type=Path,
        default=Path("counterexamples"),
        metavar="DIR",
        help="where a stateful counterexample is written as a vector (default ./counterexamples)",
    )
    command.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long an adapter may take to answer one request (default {DEFAULT_TIMEOUT:g})",
    )
    command.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop after the first layer that fails; the verdict names the layers not run",
    )
    amount = command.add_mutually_exclusive_group()
    amount.add_argument(
        "-q", "--quiet", action="store_true", help="print only the failures and the verdict line"
    )
    amount.add_argument(
        "-v", "--verbose", action="store_true", help="also list the vectors that passed"
    )


def run(arguments: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    parser = _parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            options = parser.parse_args(arguments)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_ERROR
    try:
        command = {
            "run": run_command,
            "list": list_command,
            "validate": validate_command,
            "explain": explain_command,
            "report": report_command,
        }
        return command[options.command](options, stdout)
    except (TargetError, VectorError, MatrixError, UsageError, FileNotFoundError) as error:
        if options.debug:
            traceback.print_exc(file=stderr)
        print(f"actiongate-conformance: error: {error}", file=stderr)
        return EXIT_ERROR


def main() -> None:
    try:
        code = run(sys.argv[1:], sys.stdout, sys.stderr)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except BrokenPipeError:
        # The reader went away (list | head): stop quietly, as command-line tools do. Python
        # flushes stdout again at exit; pointing it at devnull keeps that flush quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_PIPE
    sys.exit(code)
