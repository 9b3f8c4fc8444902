"""The compatibility matrix: run reports (``run --json``) side by side, clause by clause.

Rows are the clauses of SEMANTICS.md, then the three layers that are not clause by clause (the
stateful model, the concurrent checks, the injected store faults); columns are the reports. A
failing cell links to the target's failing vectors, each with its first wrong field, so a
reader can go from "RET-1 fails on X" to the exact step in two clicks. Two renderings: Markdown
(for the README and the docs/ page) and one self-contained static HTML page (no script, no
network). Both are pure functions of the reports and of the suite's vectors: a report of a run
that chose its vectors (``--select``, ``--vectors``; verdict ``partial``) shows a clause of which
only some vectors ran as partial ("1 of 4 run"), never as pass (issue 18).
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import clause_ids, clause_titles, validator
from ..data.vectors import load_all

__all__ = ["Cell", "Column", "MatrixError", "cells", "load_column", "markdown", "page"]

PASS, FAIL, SKIP, DECLARED, NOT_RUN = "pass", "fail", "skip", "declared", "not run"
PARTIAL = "partial"  # some of the clause's vectors ran, and passed
_BAD_VECTOR = frozenset({"fail", "error", "stale"})
LAYERS = (
    ("stateful", "Stateful model"),
    ("linearizable", "Concurrent checks"),
    ("faults", "Injected store faults"),
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MARK = {
    PASS: "✅ pass",
    FAIL: "❌ fail",
    SKIP: "⏭️ skip",
    DECLARED: "⚠️ declared",
    NOT_RUN: "not run",
    PARTIAL: "◐ partial",
}


class MatrixError(Exception):
    """A report that cannot be put in the matrix; the message names the file and the problem."""


@dataclass(frozen=True)
class Column:
    """One report, under the label its column shows."""

    label: str
    report: dict[str, Any]
    source: str

    @property
    def slug(self) -> str:
        """The anchor of this column's details: GitHub's heading slug of ``label``."""
        return _slug(self.label)


@dataclass(frozen=True)
class Cell:
    """One clause or layer of one column: its state, a short text and the failing vector ids."""

    state: str
    text: str
    failing: tuple[str, ...] = ()


def load_column(path: Path, label: str | None = None) -> Column:
    """A report file as a column; raises MatrixError naming the file when it is not a report."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MatrixError(f"{path}: cannot read as JSON: {error}") from None
    problems = sorted(validator("report").iter_errors(report), key=lambda e: e.json_path)
    if problems:
        first = problems[0]
        raise MatrixError(
            f"{path}: not a run report (spec/report.schema.json): "
            f"{first.json_path}: {first.message}"
        )
    implementation = report["implementation"]
    default = f"{implementation.get('name', report['target'])} {implementation.get('version', '')}"
    return Column(label or default.strip(), report, str(path))


def rows() -> list[tuple[str, str]]:
    """(key, title) of every row: the clauses in SEMANTICS.md's order, then the layers."""
    titles = clause_titles()
    return [(clause, titles[clause]) for clause in clause_ids()] + list(LAYERS)


def cells(column: Column) -> dict[str, Cell]:
    """Every row's cell for one column."""
    report = column.report
    failing: dict[str, list[str]] = {}
    for vector in report["vectors"]:
        if vector["result"] in _BAD_VECTOR:
            for clause in vector["clauses"]:
                failing.setdefault(clause, []).append(vector["id"])
    result: dict[str, Cell] = {}
    verdicts = {entry["clause"]: entry for entry in report["clauses"]}
    missing = _not_run(report)
    for clause in clause_ids():
        entry = verdicts.get(clause)
        total = 0 if entry is None else sum(entry["counts"].values())
        if entry is None or not total:  # a clause none of whose vectors ran
            result[clause] = Cell(NOT_RUN, "not run")
            continue
        bad = tuple(failing.get(clause, ()))
        suite = total + len(missing.get(clause, ()))
        ran = f"{total} of {suite} run"
        if bad:
            partly = f" ({ran})" if suite > total else ""
            result[clause] = Cell(FAIL, f"{len(bad)} of {total} fail{partly}", bad)
        elif suite > total:
            result[clause] = Cell(PARTIAL, ran)
        elif entry["result"] == "declared":
            result[clause] = Cell(DECLARED, f"{total} vectors, failures declared")
        elif entry["result"] == "skip":
            result[clause] = Cell(SKIP, f"{total} vectors skipped")
        else:
            result[clause] = Cell(PASS, f"{total} vectors pass")
    result.update(_layer_cells(report))
    return result


def _not_run(report: Mapping[str, Any]) -> dict[str, set[str]]:
    """Clause -> the suite's vectors citing it that a run which chose its vectors did not run.

    Empty for a run of the whole suite, and for reports that do not say (older ones): those ran
    every vector of their suite, which may be older than this one.
    """
    if not _chosen(report) and report["verdict"] != PARTIAL:
        return {}
    ran = {vector["id"] for vector in report["vectors"]}
    return {
        clause: {vector for vector in vectors if vector not in ran}
        for clause, vectors in _suite_vectors().items()
    }


@functools.cache
def _suite_vectors() -> dict[str, frozenset[str]]:
    """Clause -> the ids of the suite's vectors that cite it."""
    citing: dict[str, set[str]] = {}
    for vector_file in load_all():
        for vector in vector_file.vectors:
            for clause in vector.clauses:
                citing.setdefault(clause, set()).add(vector.id)
    return {clause: frozenset(ids) for clause, ids in citing.items()}


def _layer_cells(report: dict[str, Any]) -> dict[str, Cell]:
    stateful, atomicity = report["stateful"], report["atomicity"]
    layers: dict[str, Cell] = {}
    if stateful is None:
        layers["stateful"] = Cell(NOT_RUN, "not run")
    elif stateful["passed"]:
        layers["stateful"] = Cell(PASS, f"{stateful['examples']} examples pass")
    else:
        found = f", written as {Path(stateful['vector']).name}" if stateful["vector"] else ""
        layers["stateful"] = Cell(FAIL, f"counterexample (seed {stateful['seed']}){found}")
    if atomicity is None:
        layers["linearizable"] = layers["faults"] = Cell(NOT_RUN, "not run")
        return layers
    notes = "; ".join(atomicity["notes"])
    checks = atomicity["checks"]
    # A report says which kind of failure (older reports do not): a race, or a target already
    # wrong one check at a time, whose histories no order could explain anyway.
    not_linearizable = {
        "sequential": "wrong one check at a time (a logic bug, not a race)",
        "race": "not linearizable (a race)",
    }.get(atomicity.get("failure") or "", "not linearizable")
    layers["linearizable"] = {
        True: Cell(PASS, f"{checks} checks linearizable"),
        False: Cell(FAIL, f"{checks} checks: {not_linearizable}"),
        None: Cell(NOT_RUN, f"not checked: {notes}" if notes else "not checked"),
    }[atomicity["linearizable"]]
    injected = atomicity["faults_injected"]
    wrong = [
        fault
        for fault in atomicity["faults"]
        if fault.get("decision_ok") is False or fault.get("nothing_recorded") is False
    ]
    mishandled = (
        "wrong with no fault injected (a logic bug)"
        if atomicity.get("faults_failure") == "sequential"
        else f"{len(wrong) or 'some'} of {injected} faults mishandled"
    )
    layers["faults"] = {
        True: Cell(PASS, f"{injected} faults handled"),
        False: Cell(FAIL, mishandled),
        None: Cell(NOT_RUN, f"not checked: {notes}" if notes else "not checked"),
    }[atomicity["faults_ok"]]
    return layers


def _failing_vectors(column: Column) -> list[dict[str, Any]]:
    return [v for v in column.report["vectors"] if v["result"] in _BAD_VECTOR]


def _problem(vector: dict[str, Any]) -> str:
    """The first wrong field of a failing vector, in one line."""
    step = "" if vector["step"] is None else f"step {vector['step']}: "
    if vector["mismatches"]:
        first = vector["mismatches"][0]
        actual = first["actual"]
        if isinstance(actual, dict) and isinstance(actual.get("decision"), dict):
            decision = actual["decision"]  # a decision where an error was due: say which
            shown = " ".join(
                ["a decision", *(str(decision[k]) for k in ("status", "reason") if decision.get(k))]
            )
        else:
            shown = _json(actual)
        text = f"{step}{first['field']} expected {_json(first['expected'])}, got {shown}"
    else:
        text = f"{step}{(vector['reason'] or vector['result']).splitlines()[0]}"
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)[:300]


def _json(value: Any) -> str:
    # Readable text, but a lone surrogate (a vector about ID-3) as its escape: no file
    # encoding can write it.
    return _LONE_SURROGATE.sub(
        lambda match: f"\\u{ord(match[0]):04x}", json.dumps(value, ensure_ascii=False)
    )


def _slug(text: str) -> str:
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _check_labels(columns: Sequence[Column]) -> None:
    if not columns:
        raise MatrixError("no reports given")
    slugs = [column.slug for column in columns]
    for column in columns:
        if slugs.count(column.slug) > 1 or not column.slug:
            raise MatrixError(
                f"{column.source}: its label {column.label!r} is empty or not unique; "
                "give each report its own --label"
            )


def _vector_sets(columns: Sequence[Column]) -> str:
    digests = {column.report["vectors_digest"] for column in columns}
    if len(digests) == 1:
        return f"All columns ran the same vectors ({digests.pop()[:19]}...)."
    return "The columns ran different vector sets; compare them with care: " + ", ".join(
        f"{column.label} {column.report['vectors_digest'][:19]}..." for column in columns
    )


# Markdown ------------------------------------------------------------------------------------


def markdown(columns: Sequence[Column], details: str = "") -> str:
    """The matrix as Markdown, then each column's failing vectors.

    ``details`` is where the failing-vector sections live: empty for this document itself, or
    the path of a full document when this table is embedded elsewhere (then none are written).
    """
    _check_labels(columns)
    grid = [cells(column) for column in columns]
    lines = [
        "| clause | " + " | ".join(column.label for column in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key, title in rows():
        row = [f"**{key}** {title}" if key in clause_ids() else f"**{title}**"]
        for column, column_cells in zip(columns, grid, strict=True):
            cell = column_cells[key]
            mark = _MARK[cell.state]
            if cell.state == PARTIAL:
                mark += f": {cell.text}"
            if cell.state == FAIL:
                mark = f"[{'❌ ' + cell.text if cell.failing else mark}]({details}#{column.slug})"
            row.append(mark)
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", _vector_sets(columns), ""]
    lines += [
        "Targets: "
        + "; ".join(
            f"**{column.label}**: `{column.report['target']}`, verdict {column.report['verdict']}"
            for column in columns
        )
        + "."
    ]
    if details:
        return "\n".join(lines) + "\n"
    for column, column_cells in zip(columns, grid, strict=True):
        lines += ["", f"### {column.label}", ""]
        vectors = _failing_vectors(column)
        if vectors:
            lines += ["| vector | clauses | first problem |", "|---|---|---|"]
            for vector in vectors:
                problem = _problem(vector).replace("|", "\\|")
                lines.append(f"| `{vector['id']}` | {', '.join(vector['clauses'])} | {problem} |")
        else:
            lines.append("Every vector passes.")
        lines.append("")
        lines += [f"- {title}: {column_cells[key].text}" for key, title in LAYERS]
        if _chosen(column.report):
            lines.append(f"- Vectors run: {_chosen(column.report)} (a partial run)")
    return "\n".join(lines) + "\n"


# HTML ----------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.pass { background: #e6f4e6; } td.fail { background: #fbe3e3; }
td.skip, td.not-run { background: #f3f3f3; color: #666; } td.declared { background: #fff4d6; }
td.partial { background: #e7eef9; }
code { font-size: 13px; } .title { color: #555; }
"""


def page(columns: Sequence[Column], title: str = "ActionGate compatibility matrix") -> str:
    """One self-contained HTML page: the matrix, then each column's failing vectors."""
    _check_labels(columns)
    grid = [cells(column) for column in columns]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>{_e(_vector_sets(columns))}</p>",
        '<table id="matrix"><thead><tr><th>clause</th>',
    ]
    out += [f'<th scope="col">{_e(column.label)}</th>' for column in columns]
    out.append("</tr></thead><tbody>")
    for key, row_title in rows():
        out.append(
            f'<tr id="row-{_e(key)}"><th scope="row">{_e(key if key in clause_ids() else "")}'
            f' <span class="title">{_e(row_title)}</span></th>'
        )
        for index, column_cells in enumerate(grid):
            cell = column_cells[key]
            css = cell.state.replace(" ", "-")
            links = "".join(
                f' <a href="#c{index}-{_e(vector)}">{_e(vector)}</a>' for vector in cell.failing
            )
            ran = f" ({_e(cell.text)})" if cell.state == PARTIAL else ""
            text = f"{_e(cell.state)}{ran}{':' if links else ''}{links}"
            out.append(f'<td class="{css}" title="{_e(cell.text)}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    for index, (column, column_cells) in enumerate(zip(columns, grid, strict=True)):
        report = column.report
        out += [
            f'<section id="c{index}"><h2>{_e(column.label)}</h2>',
            f"<p>target <code>{_e(report['target'])}</code>, implementation "
            f"<code>{_e(_json(report['implementation']))}</code>, verdict "
            f"<strong>{_e(report['verdict'])}</strong>; "
            f"report {_e(Path(column.source).name)}</p><ul>",
        ]
        out += [f"<li>{_e(title)}: {_e(column_cells[key].text)}</li>" for key, title in LAYERS]
        if _chosen(report):
            out.append(f"<li>Vectors run: {_e(_chosen(report))} (a partial run)</li>")
        out.append("</ul>")
        vectors = _failing_vectors(column)
        if vectors:
            out.append("<table><thead><tr><th>vector</th><th>clauses</th>")
            out.append("<th>first problem</th></tr></thead><tbody>")
            for vector in vectors:
                out.append(
                    f'<tr id="c{index}-{_e(vector["id"])}"><td><code>{_e(vector["id"])}</code>'
                    f"</td><td>{_e(', '.join(vector['clauses']))}</td>"
                    f"<td>{_e(_problem(vector))}</td></tr>"
                )
            out.append("</tbody></table>")
        else:
            out.append("<p>Every vector passes.</p>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _chosen(report: Mapping[str, Any]) -> str:
    """The vectors a run chose, as its options said them; empty for the whole suite."""
    selection = report.get("selection") or {}
    keys = [key for key in ("select", "vectors") if selection.get(key)]
    return " ".join(f"--{key} {' '.join(selection[key])}" for key in keys)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
