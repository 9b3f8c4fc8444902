"""The commands besides ``run``: list, validate, explain, report; and what the commands share."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, TextIO

from .data import clause_ids, validator
from .data.skips import PLACEHOLDER, unexplained
from .data.vectors import VectorError, load_all, load_file
from .layers.timeline import timeline
from .reports.matrix import MatrixError, load_column, markdown, page

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAIL",
    "EXIT_OK",
    "EXIT_PIPE",
    "UsageError",
    "explain_command",
    "list_command",
    "report_command",
    "validate_command",
    "write",
]

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader went away


class UsageError(Exception):
    """Options that cannot work (an output path that cannot be written): exit 2, no run."""


def write(path: Path, text: str) -> None:
    path.write_text(text + "\n", encoding="utf-8")


def list_command(options: argparse.Namespace, stdout: TextIO) -> int:
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


def validate_command(options: argparse.Namespace, stdout: TextIO) -> int:
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
    problems = [
        f"{path}: {error.json_path}: {error.message} (per {kind}.schema.json)"
        for error in validator(kind).iter_errors(document)
    ]
    if kind == "skip":
        # Valid by the schema, but a declaration nobody explained is not a known failure.
        problems += [
            f"{path}: {vectors}: the reason is still the placeholder --write-skip wrote; "
            f"replace {PLACEHOLDER!r} with why the vector fails"
            for vectors in unexplained(document)
        ]
    return problems


def explain_command(options: argparse.Namespace, stdout: TextIO) -> int:
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


def report_command(options: argparse.Namespace, stdout: TextIO) -> int:
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
        write(path, markdown(columns).rstrip("\n"))
    if options.html:
        write(options.html, page(columns).rstrip("\n"))
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
