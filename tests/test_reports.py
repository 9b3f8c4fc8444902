"""What a run reports (issue 18): JUnit testcases for every layer, a partial run never read as
conforming (JSON, last line, matrix), and the JSON report's timings, timestamp and selection.

Each test is a real run of the command, called as run(arguments, stdout, stderr).
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from actiongate_conformance import SPEC_VERSION, __version__
from actiongate_conformance import data as _data
from actiongate_conformance.cli import run
from actiongate_conformance.data.vectors import load_all
from actiongate_conformance.reports.matrix import PARTIAL, cells, load_column

ROOT = Path(__file__).resolve().parents[1]
ALL_VECTORS = [vector for vector_file in load_all() for vector in vector_file.vectors]
VECTORS = len(ALL_VECTORS)
HEAD = "PARTIAL (not a conformance verdict): "
LAYER_SUITES = ("stateful model", "concurrent checks", "injected store faults")


def call(*arguments: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(list(arguments), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def run_with_reports(
    tmp_path: Path, *options: str, code: int = 0
) -> tuple[str, dict[str, Any], ET.Element]:
    """A run writing both reports: its last line, the JSON report (checked against its schema)
    and the JUnit XML's root."""
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    got, out, err = call(
        "run", "--json", str(report), "--junit", str(junit), "--emit", str(tmp_path), *options
    )
    assert got == code, out[-3000:] + err
    document = json.loads(report.read_text(encoding="utf-8"))
    problems = [
        f"{e.json_path}: {e.message}" for e in _data.validator("report").iter_errors(document)
    ]
    assert not problems, problems
    return out.rstrip("\n").splitlines()[-1], document, ET.parse(junit).getroot()


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {str(suite.get("name")): suite for suite in root.findall("testsuite")}


def failures(suite: ET.Element) -> list[ET.Element]:
    return suite.findall("testcase/failure")


# JUnit: every layer has testcases, and a failing layer fails them ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "options", "layer", "explanation"),
    [
        pytest.param(
            "py:tests.mutants.stores:ReadThenWrite",
            ["--examples", "0"],
            "concurrent checks",
            "not linearizable",
            id="atomicity",
        ),
        pytest.param(
            "py:tests.mutants.stores:StoreErrorRecorded",
            ["--examples", "0"],
            "injected store faults",
            "(ERR-2)",
            id="faults",
        ),
        pytest.param(
            "py:tests.test_cli:LockedSixthEqualTimestamp",
            ["--atomicity", "0", "--seed", "2"],
            "stateful model",
            "STATEFUL MODEL FAILED (seed 2)",
            id="stateful",
        ),
    ],
)
def test_junit_fails_when_a_layer_fails_though_every_vector_passes(
    target: str, options: list[str], layer: str, explanation: str, tmp_path: Path
) -> None:
    # Each of these stores passes every vector: before issue 18 their JUnit files were green.
    last, document, root = run_with_reports(tmp_path, "--target", target, *options, code=1)
    assert last.startswith("NOT CONFORMING: ") and document["verdict"] == "not_conforming"
    by_name = suites(root)
    assert set(LAYER_SUITES) <= set(by_name)
    assert int(root.get("failures", "0")) == len(root.findall("testsuite/testcase/failure")) > 0
    failing = {name for name, suite in by_name.items() if failures(suite)}
    assert failing == {layer}, failing
    texts = "\n".join(f"{f.get('message')}\n{f.text}" for f in failures(by_name[layer]))
    assert explanation in texts, texts[:3000]
    assert int(by_name[layer].get("failures", "0")) == len(failures(by_name[layer]))
    # The layers the run left out are skipped, saying why, never passed.
    for name, suite in by_name.items():
        if name in LAYER_SUITES and name != layer and not suite.findall("testcase/system-out"):
            (skipped,) = suite.findall("testcase/skipped")
            assert str(skipped.get("message")).startswith("not run: the run left it out (--")


@pytest.mark.slow
def test_a_full_run_gives_every_layer_and_every_fault_a_passing_testcase(tmp_path: Path) -> None:
    last, document, root = run_with_reports(
        tmp_path, "--seed", "3", "--examples", "20", "--atomicity", "200"
    )
    assert last.startswith("CONFORMING: ") and document["verdict"] == "conforming"
    assert root.get("failures") == root.get("skipped") == root.get("errors") == "0"
    by_name = suites(root)
    cases = [len(by_name[name].findall("testcase")) for name in LAYER_SUITES]
    assert cases == [1, 1, document["atomicity"]["faults_injected"]]
    assert int(str(root.get("tests"))) == VECTORS + sum(cases)
    fault_names = [str(c.get("name")) for c in by_name["injected store faults"].iter("testcase")]
    assert "empty-gate (FAIL_CLOSED) step 0" in fault_names
    assert len(set(fault_names)) == len(fault_names)
    assert all(float(str(by_name[name].get("time"))) >= 0 for name in LAYER_SUITES[:2])


def test_a_layer_that_cannot_check_a_port_is_skipped_with_the_reason(tmp_path: Path) -> None:
    adapter = ROOT / "examples" / "python_adapter.py"
    last, document, root = run_with_reports(
        tmp_path, "--target", f"cmd:python3 {adapter}", "--examples", "0"
    )
    assert last.startswith(f"{HEAD}stateful not run; atomicity not checked; vectors ")
    assert document["verdict"] == "partial"
    assert document["layers"]["atomicity"] == {
        "state": "not checked",
        "detail": "; ".join(document["atomicity"]["notes"]),
    }
    (skipped,) = suites(root)["concurrent checks"].findall("testcase/skipped")
    assert "not checked: the port does not declare the burst capability" in str(
        skipped.get("message")
    )
    assert not failures(suites(root)["injected store faults"])


# A partial run: JSON, last line and matrix ---------------------------------------------------


def _clause_counts(ran: set[str]) -> dict[str, tuple[int, int]]:
    """Clause -> (its vectors that ran, its vectors in the suite)."""
    counts: dict[str, tuple[int, int]] = {}
    for vector in ALL_VECTORS:
        for clause in vector.clauses:
            done, total = counts.get(clause, (0, 0))
            counts[clause] = (done + (vector.id in ran), total + 1)
    return counts


def test_a_selected_run_is_partial_in_json_text_junit_and_matrix(tmp_path: Path) -> None:
    last, document, root = run_with_reports(tmp_path, "--select", "RET-1")
    ran = {vector["id"] for vector in document["vectors"]}
    assert last == (
        f"{HEAD}only vectors matching --select RET-1; stateful, atomicity, faults not run; "
        f"vectors {len(ran)}/{len(ran)} passed"
    )
    assert document["verdict"] == "partial"
    assert document["selection"] == {"select": ["RET-1"], "vectors": []}
    states = {name: layer["state"] for name, layer in document["layers"].items()}
    assert states == {
        "vectors": "passed",
        "stateful": "not run",
        "atomicity": "not run",
        "faults": "not run",
    }
    assert "--select RET-1" in document["layers"]["stateful"]["detail"]
    assert set(document["timings"]) == {"vectors", "total"}
    skipped = root.findall("testsuite/testcase/skipped")
    assert len(skipped) == 3 and all("--select RET-1" in str(s.get("message")) for s in skipped)

    # The matrix: a clause shows pass only when every one of its vectors ran.
    matrix = cells(load_column(tmp_path / "report.json", "selected"))
    for clause, (done, total) in _clause_counts(ran).items():
        cell = matrix[clause]
        if done == total:
            assert cell.state == "pass", clause
        elif done:
            assert (cell.state, cell.text) == (PARTIAL, f"{done} of {total} run"), clause
        else:
            assert cell.state == "not run", clause
    assert matrix["RET-1"].state == "pass"
    assert any(cell.state == PARTIAL for cell in matrix.values())
    code, out, err = call("report", str(tmp_path / "report.json"), "--label", "selected")
    assert code == 0, err
    done, total = _clause_counts(ran)["RET-2"]
    assert f"| **RET-2** Pruning | ◐ partial: {done} of {total} run |" in out
    assert "- Vectors run: --select RET-1 (a partial run)" in out
    assert "verdict partial" in out


def test_a_run_of_vector_files_records_them(tmp_path: Path) -> None:
    chosen = ROOT / "vectors" / "retention.json"
    last, document, _ = run_with_reports(tmp_path, "--vectors", str(chosen))
    assert last.startswith(f"{HEAD}only vectors of {chosen}; stateful, atomicity, faults not run")
    assert document["verdict"] == "partial"
    assert document["selection"] == {"select": [], "vectors": [str(chosen)]}


def test_layers_left_out_make_a_partial_run_whose_clauses_all_ran(tmp_path: Path) -> None:
    last, document, root = run_with_reports(tmp_path, "--examples", "0", "--atomicity", "0")
    assert last == (
        f"{HEAD}stateful, atomicity, faults not run; vectors {VECTORS}/{VECTORS} passed"
    )
    assert document["verdict"] == "partial"
    assert document["selection"] == {"select": [], "vectors": []}
    matrix = cells(load_column(tmp_path / "report.json", "vectors only"))
    assert {matrix[clause].state for clause in _data.clause_ids()} == {"pass"}
    assert {matrix[key].state for key in ("stateful", "linearizable", "faults")} == {"not run"}
    assert root.get("skipped") == "3" and root.get("failures") == "0"


def test_declared_failures_leave_a_partial_run_partial(tmp_path: Path) -> None:
    target = ["--target", "py:tests.test_cli:WrongOnRetentionGates", "--examples", "0"]
    target += ["--atomicity", "0"]
    _, first, _ = run_with_reports(tmp_path, *target, code=1)
    failing = [v["id"] for v in first["vectors"] if v["result"] == "fail"]
    assert failing
    skip = tmp_path / "skip.json"
    reason = "forgets the events of namespace ret before each check of it"
    known = [{"vectors": vector, "reason": reason} for vector in failing]
    skip.write_text(json.dumps({"known_failures": known}), encoding="utf-8")
    last, document, _ = run_with_reports(tmp_path, *target, "--skip", str(skip))
    passed = VECTORS - len(failing)
    assert last == (
        f"{HEAD}stateful, atomicity, faults not run; "
        f"vectors {passed}/{VECTORS} passed, {len(failing)} declared"
    )
    assert document["verdict"] == "partial"
    assert document["counts"]["declared"] == len(failing)


def test_older_reports_that_do_not_record_a_selection_are_read_as_whole_runs() -> None:
    # Upstream's reports come from an older suite, with fewer vectors than this one.
    for name in ("upstream-memory.json", "upstream-redis.json"):
        column = load_column(ROOT / "docs" / "results" / name)
        assert "selection" not in column.report
        assert PARTIAL not in {cell.state for cell in cells(column).values()}


# The JSON report's timings, timestamp, versions ----------------------------------------------


@pytest.mark.slow
def test_the_json_report_says_when_how_long_and_with_which_versions(tmp_path: Path) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    _, document, _ = run_with_reports(
        tmp_path, "--seed", "3", "--examples", "20", "--atomicity", "200"
    )
    after = datetime.now(timezone.utc)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["timestamp"])
    made = datetime.fromisoformat(document["timestamp"].replace("Z", "+00:00"))
    assert before <= made <= after + timedelta(seconds=1)
    timings = document["timings"]
    assert set(timings) == {"vectors", "stateful", "atomicity", "total"}
    assert all(seconds >= 0 for seconds in timings.values())
    assert timings["total"] >= timings["vectors"] + timings["stateful"] + timings["atomicity"]
    assert document["suite"] == {"name": "actiongate-conformance", "version": __version__}
    assert document["spec_version"] == SPEC_VERSION
    assert document["selection"] == {"select": [], "vectors": []}
    assert {layer["state"] for layer in document["layers"].values()} == {"passed"}


def test_the_schema_holds_the_new_fields_to_their_shape(tmp_path: Path) -> None:
    _, document, _ = run_with_reports(tmp_path, "--select", "retention-event-exactly-window-old-*")
    valid = _data.validator("report")
    for field, bad in (
        ("verdict", "partly"),
        ("timestamp", "2026-01-31 12:00"),
        ("timings", {"vectors": 1.0}),
        ("selection", {"select": "RET-1", "vectors": []}),
        ("layers", {**document["layers"], "stateful": {"state": "skipped", "detail": ""}}),
    ):
        assert list(valid.iter_errors({**document, field: bad})), field
    assert not list(valid.iter_errors({**document, "verdict": "conforming"}))
    # Older reports, without the fields, stay valid.
    older = {k: v for k, v in document.items() if k not in ("timestamp", "timings", "layers")}
    assert not list(valid.iter_errors({k: v for k, v in older.items() if k != "selection"}))
