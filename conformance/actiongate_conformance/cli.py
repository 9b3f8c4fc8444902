"""The ``actiongate-conformance`` command: run, list, validate, explain, report.

``run(arguments, stdout, stderr)`` is the whole program, so tests call it with streams. Exit
codes: 0 conforming (or a clean listing), 1 not conforming or invalid files, 2 the target could
not be run or the command was misused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .data import clause_ids, validator
from .data.skips import load_skip_file, skip_file_for
from .data.vectors import VectorError, load_all, load_file, select
from .layers.atomicity import run_atomicity
from .layers.stateful import run_stateful
from .layers.timeline import timeline
from .layers.vectors import run_vectors, smoke
from .reports.json_report import json_report
from .reports.junit import junit_xml
from .reports.matrix import MatrixError, load_column, markdown, page
from .reports.terminal import first_problem, stateful_summary, terminal_report
from .reports.verdict import run_verdict
from .targets import TargetError, target_from_string

__all__ = ["main", "run"]

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actiongate-conformance",
        description="Check an ActionGate implementation against SEMANTICS.md 1.0.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True)

    run_command = commands.add_parser("run", help="run the suite against a target")
    run_command.add_argument(
        "--target",
        default="memory://",
        help="memory:// (default), fakeredis://, redis://host:port/db, py:module:callable, "
        "or cmd:PROGRAM ARGS (an adapter speaking spec/protocol.schema.json)",
    )
    run_command.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only vectors whose id or a clause matches this glob (repeatable)",
    )
    run_command.add_argument(
        "--vectors",
        action="append",
        type=Path,
        default=None,
        metavar="FILE",
        help="vector files to run instead of the suite's own (repeatable)",
    )
    run_command.add_argument(
        "--skip", type=Path, metavar="FILE", help="known failures, declared with reasons"
    )
    run_command.add_argument(
        "--write-skip",
        type=Path,
        metavar="FILE",
        help="write this run's failures as a starting skip file",
    )
    run_command.add_argument("--json", type=Path, metavar="FILE", help="write a JSON report")
    run_command.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML")
    run_command.add_argument(
        "--examples",
        type=int,
        default=200,
        metavar="N",
        help="stateful-model examples after the vectors (default 200; 0 skips the model; "
        "skipped with --select or --vectors)",
    )
    run_command.add_argument(
        "--atomicity",
        type=int,
        default=2000,
        metavar="N",
        help="about N concurrent checks, checked for linearizability, then injected store "
        "faults (default 2000; 0 skips; skipped with --select or --vectors)",
    )
    run_command.add_argument(
        "--seed", type=int, metavar="N", help="seed of the stateful model (default: drawn, shown)"
    )
    run_command.add_argument(
        "--budget", type=float, metavar="SECONDS", help="stop the stateful search after this long"
    )
    run_command.add_argument(
        "--emit",
        type=Path,
        default=Path("counterexamples"),
        metavar="DIR",
        help="where a stateful counterexample is written as a vector (default ./counterexamples)",
    )
    run_command.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long an adapter may take to answer one request (default 10)",
    )

    commands.add_parser("list", help="list clauses and vectors")

    validate = commands.add_parser(
        "validate", help="check vector files, decision records, reports or skip files"
    )
    validate.add_argument("files", nargs="+", type=Path)

    explain = commands.add_parser("explain", help="print a vector as a timeline")
    explain.add_argument("vector_id")

    report = commands.add_parser(
        "report",
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


def run(arguments: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    parser = _parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            options = parser.parse_args(arguments)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_ERROR
    try:
        command = {
            "run": _run,
            "list": _list,
            "validate": _validate,
            "explain": _explain,
            "report": _report,
        }
        return command[options.command](options, stdout)
    except (TargetError, VectorError, MatrixError, FileNotFoundError) as error:
        if options.debug:
            traceback.print_exc(file=stderr)
        print(f"actiongate-conformance: error: {error}", file=stderr)
        return EXIT_ERROR


def main() -> None:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


def _run(options: argparse.Namespace, stdout: TextIO) -> int:
    files = load_all(options.vectors)
    vectors = select(files, options.select)
    if not vectors:
        raise VectorError(f"no vector matches {', '.join(options.select)}")
    known = load_skip_file(options.skip) if options.skip else None
    target = target_from_string(options.target, timeout=options.timeout)
    stateful = atomicity = None
    whole_suite = not (options.vectors or options.select)
    try:
        smoke(target)
        with _progress_bar(len(vectors)) as progress:
            report = run_vectors(target, vectors, known, progress)
        # The model and the atomicity checks follow the whole suite, not a chosen few vectors.
        if options.examples > 0 and whole_suite:
            stateful = run_stateful(
                target,
                options.examples,
                options.seed,
                options.emit,
                options.budget,
                target_spec=options.target,
            )
        if options.atomicity > 0 and whole_suite:
            atomicity = run_atomicity(options.target, options.atomicity, target)
    finally:
        target.close()
    verdict = run_verdict(report, stateful, atomicity)
    print(terminal_report(report, options.target, target.hello["implementation"]), file=stdout)
    if stateful is not None:
        print(f"\n{stateful_summary(stateful)}", file=stdout)
    if atomicity is not None:
        print(f"\n{atomicity.summary()}", file=stdout)
    if options.json:
        document = json_report(report, options.target, target.hello, stateful, atomicity)
        _write(options.json, json.dumps(document, indent=2))
    if options.junit:
        _write(options.junit, junit_xml(report, options.target))
    if options.write_skip:
        failures = [(o.vector.id, first_problem(o)) for o in report.bad]
        _write(options.write_skip, json.dumps(skip_file_for(failures), indent=2))
    # Last, after every layer's own lines, and the one value the exit code is read from.
    print(f"\n{verdict.line}", file=stdout)
    return EXIT_OK if verdict.conforming else EXIT_FAIL


def _write(path: Path, text: str) -> None:
    path.write_text(text + "\n", encoding="utf-8")


@contextlib.contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int], None] | None]:
    """A one-line bar on stderr when it is a terminal; nothing otherwise (CI logs stay clean)."""
    if not sys.stderr.isatty():
        yield None
        return

    def show(done: int) -> None:
        filled = 30 * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} vectors")
        sys.stderr.flush()

    try:
        yield show
    finally:
        sys.stderr.write("\r" + " " * 60 + "\r")


def _list(options: argparse.Namespace, stdout: TextIO) -> int:
    files = load_all()
    citing: dict[str, list[str]] = {clause: [] for clause in clause_ids()}
    for vector_file in files:
        for vector in vector_file.vectors:
            for clause in vector.clauses:
                citing[clause].append(vector.id)
    print("clauses:", file=stdout)
    for clause, ids in citing.items():
        print(f"  {clause:<8} {len(ids):>3} vectors", file=stdout)
    for vector_file in files:
        print(f"{vector_file.path.name}: {vector_file.description}", file=stdout)
        for vector in vector_file.vectors:
            print(f"  {vector.id}  [{', '.join(vector.clauses)}]", file=stdout)
    return EXIT_OK


def _validate(options: argparse.Namespace, stdout: TextIO) -> int:
    """Check each file against the schema its content calls for."""
    failed = 0
    for path in options.files:
        try:
            document: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            print(f"{path}: cannot read as JSON: {error}", file=stdout)
            failed += 1
            continue
        problems = _problems(path, document)
        for problem in problems:
            print(problem, file=stdout)
        if problems:
            failed += 1
        else:
            print(f"{path}: valid", file=stdout)
    return EXIT_FAIL if failed else EXIT_OK


def _problems(path: Path, document: Any) -> list[str]:
    kind = "decision"
    if isinstance(document, dict):
        if "known_failures" in document:
            kind = "skip"
        elif document.get("schema") == "urn:actiongate:schema:report:1":
            kind = "report"
        elif "vectors" in document:
            try:
                load_file(path)
            except VectorError as error:
                return [str(error)]
            return []
    return [
        f"{path}: {error.json_path}: {error.message} (per {kind}.schema.json)"
        for error in validator(kind).iter_errors(document)
    ]


def _explain(options: argparse.Namespace, stdout: TextIO) -> int:
    for vector_file in load_all():
        for vector in vector_file.vectors:
            if vector.id == options.vector_id:
                print(f"{vector.id} ({vector_file.path.name})", file=stdout)
                print(
                    f"clauses: {', '.join(vector.clauses)}; flags: {', '.join(vector.flags)}",
                    file=stdout,
                )
                print(vector.description, file=stdout)
                for line in timeline(vector):
                    print("  " + line, file=stdout)
                return EXIT_OK
    raise VectorError(f"no vector has the id {options.vector_id!r}")


MATRIX_BEGIN, MATRIX_END = "<!-- compatibility-matrix -->", "<!-- /compatibility-matrix -->"


def _report(options: argparse.Namespace, stdout: TextIO) -> int:
    if len(options.label) > len(options.reports):
        raise MatrixError(f"{len(options.label)} labels for {len(options.reports)} reports")
    labels = options.label + [None] * (len(options.reports) - len(options.label))
    columns = [
        load_column(path, label) for path, label in zip(options.reports, labels, strict=True)
    ]
    if not options.md and not options.html:
        print(markdown(columns), file=stdout, end="")
        return EXIT_OK
    embedding = {path for path in options.md if _has_markers(path)}
    whole = [path for path in options.md if path not in embedding]
    for path in whole:
        _write(path, markdown(columns).rstrip("\n"))
    if options.html:
        _write(options.html, page(columns).rstrip("\n"))
    for path in embedding:
        # The embedded table links to a whole document written by this same command.
        details = whole[0] if whole else options.html
        link = "" if details is None else os.path.relpath(details, path.parent)
        text = path.read_text(encoding="utf-8")
        before, rest = text.split(MATRIX_BEGIN, 1)
        after = rest.split(MATRIX_END, 1)[1]
        table = markdown(columns, details=link.replace(os.sep, "/"))
        path.write_text(f"{before}{MATRIX_BEGIN}\n{table}{MATRIX_END}{after}", encoding="utf-8")
    for path in [*options.md, *([options.html] if options.html else [])]:
        print(f"wrote {path}", file=stdout)
    return EXIT_OK


def _has_markers(path: Path) -> bool:
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    return MATRIX_BEGIN in text and MATRIX_END in text.split(MATRIX_BEGIN, 1)[1]
