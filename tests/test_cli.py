"""The actiongate-conformance command, called as run(arguments, stdout, stderr)."""

from __future__ import annotations

import io
import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from actiongate import Gate, MemoryStore, Policy
from actiongate_conformance import data as _data
from actiongate_conformance.cli import run
from actiongate_conformance.data.vectors import load_all
from actiongate_conformance.layers.atomicity import AtomicityResult
from actiongate_conformance.layers.stateful import StatefulResult
from actiongate_conformance.layers.vectors import DECLARED, FAIL, PASS, Outcome, Report
from actiongate_conformance.reports.json_report import json_report
from actiongate_conformance.reports.verdict import run_verdict

from .broken_stores import SixthEqualTimestamp
from .mutants.stores import Mutant

ALL_VECTORS = [vector for vector_file in load_all() for vector in vector_file.vectors]
VECTORS = len(ALL_VECTORS)


def call(*arguments: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(list(arguments), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_run_on_the_reference_conforms() -> None:
    code, out, err = call("run", "--seed", "1", "--examples", "50")
    assert code == 0, out + err
    assert out.splitlines()[-1].startswith("CONFORMING: vectors"), out[-500:]
    for clause in _data.clause_ids():
        assert f"\n{clause} " in out
    assert "stateful model: 5" in out and "(seed 1)" in out


def test_select_runs_only_matching_vectors() -> None:
    code, out, _ = call("run", "--select", "retention-event-exactly-window-old-counts")
    assert code == 0
    assert "vectors: 1 passed, 0 failed" in out
    assert out.splitlines()[-1] == (
        "PARTIAL (not a conformance verdict): only vectors matching --select "
        "retention-event-exactly-window-old-counts; stateful, atomicity, faults not run; "
        "vectors 1/1 passed"
    )


@pytest.fixture
def broken_store_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A vendor's store with a classic bug: the window boundary is exclusive."""
    (tmp_path / "vendor_store.py").write_text(
        textwrap.dedent(
            """
            from actiongate import MemoryStore

            class ExclusiveBoundary:
                def __init__(self):
                    self.events = {}

                def check_and_reserve(self, gate, now, policy):
                    kept = [t for t in self.events.get(gate, [])
                            if policy.window is None or t > now - policy.window]
                    age = now - max(kept) if kept else None
                    if policy.cooldown > 0 and age is not None and age < policy.cooldown:
                        return len(kept), False, age
                    if len(kept) >= policy.max_calls:
                        self.events[gate] = kept
                        return len(kept), False, age
                    self.events[gate] = sorted([*kept, now])
                    return len(kept) + 1, True, age

                def clear(self, gate):
                    self.events.pop(gate, None)

                def clear_all(self):
                    self.events.clear()

            def make():
                return ExclusiveBoundary()

            def make_nothing():
                return 42

            def explode():
                raise RuntimeError("no license key")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("vendor_store", None)
    return "vendor_store"


def test_a_buggy_store_is_not_conforming_and_the_failure_says_where(
    broken_store_module: str,
) -> None:
    code, out, _ = call("run", "--target", f"py:{broken_store_module}:make", "--examples", "0")
    assert code == 1
    assert "NOT CONFORMING" in out
    assert "FAIL retention.json > retention-event-exactly-window-old-counts > step 1" in out
    assert 'status: expected "BLOCK", got "ALLOW"' in out
    assert "rerun: actiongate-conformance run --target py:vendor_store:make --select" in out
    # What the check should have counted, said to be the spec's, not the target's.
    assert "the spec's events of this gate after it: [0.0]" in out


def test_the_command_finds_a_vendor_module_in_the_current_directory(tmp_path: Path) -> None:
    """As `python -m` would: a vendor runs the suite from their project and names their module."""
    (tmp_path / "my_store.py").write_text(
        "from actiongate import MemoryStore\n\ndef make():\n    return MemoryStore()\n"
    )
    command = Path(sys.executable).with_name("actiongate-conformance")
    finished = subprocess.run(
        [str(command), "run", "--target", "py:my_store:make", "--select", "RET-1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "PARTIAL (not a conformance verdict): only vectors matching --select RET-1" in (
        finished.stdout
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuch://", "no store for 'nosuch://'"),
        ("py:no_such_module_here:make", "cannot import 'no_such_module_here'"),
        ("py:vendor_store:absent", "has no callable 'absent'"),
        ("py:vendor_store:make_nothing", "returned int, not a store"),
        ("py:vendor_store:explode", "the factory raised RuntimeError: no license key"),
        ("py:justamodule", "must be py:package.module:callable"),
    ],
)
def test_a_target_that_cannot_run_is_one_line_and_exit_2(
    broken_store_module: str, target: str, message: str
) -> None:
    code, out, err = call("run", "--target", target)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_debug_shows_the_traceback(broken_store_module: str) -> None:
    code, _, err = call("--debug", "run", "--target", "py:vendor_store:explode")
    assert code == 2
    assert "Traceback" in err


def test_a_malformed_vector_file_is_exit_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "urn:actiongate:schema:vector:1.0"}))
    code, _, err = call("run", "--vectors", str(bad))
    assert code == 2
    assert "bad.json: does not match vector.schema.json" in err


def test_validate_accepts_vectors_and_decisions_and_flags_bad_ones(tmp_path: Path) -> None:
    good = tmp_path / "decision.json"
    good.write_text(
        json.dumps(
            {
                "schema_version": "1.0",
                "status": "BLOCK",
                "reason": "RATE_LIMIT",
                "message": None,
                "gate": {"namespace": "n", "action": "a", "principal": "p"},
                "policy": {
                    "max_calls": 0,
                    "window": None,
                    "cooldown": 0,
                    "mode": "SOFT",
                    "on_store_error": "FAIL_OPEN",
                },
                "calls_in_window": 0,
                "time_since_last": None,
                "now": 1.5,
            }
        )
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": "1.0", "status": "ALLOW"}))
    vector_file = str(_data.vector_files()[0])
    code, out, _ = call("validate", str(good), vector_file)
    assert code == 0, out
    code, out, _ = call("validate", str(good), str(bad))
    assert code == 1
    assert "bad.json: $: 'reason' is a required property" in out


def test_list_shows_clauses_and_vectors() -> None:
    code, out, _ = call("list")
    assert code == 0
    assert "RET-1" in out and "retention-event-exactly-window-old-counts" in out


def test_explain_prints_a_timeline() -> None:
    code, out, _ = call("explain", "retention-event-exactly-window-old-counts")
    assert code == 0
    assert "t=10" in out and "expect BLOCK RATE_LIMIT" in out
    code, _, err = call("explain", "no-such-vector")
    assert code == 2 and "no vector has the id" in err


def test_bad_usage_is_exit_2() -> None:
    assert call("frobnicate")[0] == 2
    assert call()[0] == 2


def test_run_on_redis_through_the_command(redis_topology: Any) -> None:
    target = redis_topology.url_with(prefix="cli-run")
    code, out, err = call("run", "--target", target, "--examples", "20", "--seed", "1")
    assert code == 0, out[-2000:] + err
    assert "CONFORMING" in out


def test_a_redis_that_is_not_there_is_one_line_and_exit_2() -> None:
    from .redis_servers import free_port

    code, out, err = call("run", "--target", f"redis://127.0.0.1:{free_port()}/0")
    assert code == 2
    assert out == ""
    assert "the store is unreachable" in err
    assert len(err.strip().splitlines()) == 1


def test_a_stateful_counterexample_is_emitted_as_a_vector_that_reruns(tmp_path: Path) -> None:
    # SixthEqualTimestamp passes every hand-written vector (tests/test_stateful.py shows it).
    target = "py:tests.broken_stores:SixthEqualTimestamp"
    code, out, _ = call("run", "--target", target, "--seed", "2", "--emit", str(tmp_path))
    assert code == 1
    assert f"vectors: {VECTORS} passed, 0 failed" in out  # the vectors alone would have passed it
    assert "STATEFUL MODEL FAILED (seed 2)" in out
    (emitted,) = tmp_path.glob("*.json")
    assert f"--vectors {emitted}" in out
    assert call("validate", str(emitted))[0] == 0
    assert call("run", "--target", target, "--vectors", str(emitted))[0] == 1
    assert call("run", "--vectors", str(emitted))[0] == 0


def test_run_on_embedded_fakeredis() -> None:
    code, out, err = call("run", "--target", "fakeredis://", "--examples", "10", "--seed", "1")
    assert code == 0, out[-2000:] + err
    assert f"vectors: {VECTORS} passed, 0 failed" in out


def test_atomicity_catches_a_store_that_reads_then_writes() -> None:
    code, out, _ = call(
        "run", "--target", "py:tests.broken_stores:ReadThenWriteStore", "--examples", "0"
    )
    assert code == 1
    assert f"vectors: {VECTORS} passed, 0 failed" in out  # each passes one check at a time
    assert "concurrent checks NOT LINEARIZABLE" in out
    assert "not linearizable. No order of these" in out


def test_fault_checks_catch_a_store_that_records_a_failed_check() -> None:
    target = "py:tests.broken_stores:records_then_fails"
    code, out, _ = call("run", "--target", target, "--examples", "0")
    assert code == 1
    assert "concurrent checks linearizable" in out
    assert "injected store faults MISHANDLED" in out
    assert "(ERR-2)" in out


# The run's verdict, across its four layers (issue 14): the last line, the exit code and the JSON
# report's verdict must agree, for every combination of layers that failed, passed or did not run.

LAYERS = ("vectors", "stateful", "atomicity", "faults")
HEADS = (  # how the last line starts -> the JSON verdict and the exit code it goes with
    ("NOT CONFORMING: ", "not_conforming", 1),
    ("CONFORMING EXCEPT ", "conforming_except_declared", 0),
    ("PARTIAL (not a conformance verdict): ", "partial", 0),
    ("CONFORMING", "conforming", 0),
)
EXAMPLE = f"cmd:{sys.executable} {Path(__file__).parents[1] / 'examples' / 'python_adapter.py'}"
PASSED = {
    "vectors": rf"vectors {VECTORS}/{VECTORS} passed",
    "stateful": r"stateful \d+ examples passed",
    "atomicity": r"atomicity [\d,]+ checks linearizable",
    "faults": r"faults (\d+)/\1 handled",
}


class WrongOnRetentionGates(MemoryStore):
    """Forgets the events of namespace "ret" (retention.json's) before each check of it. Only
    vectors use that namespace, so only the vectors layer can see the bug."""

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        if gate.namespace == "ret":
            self.clear(gate)
        return super().check_and_reserve(gate, now, policy)


class LockedSixthEqualTimestamp(Mutant, SixthEqualTimestamp):
    """SixthEqualTimestamp behind the zoo's lock: atomic, right on every vector, wrong in longer
    runs."""


def agreed(code: int, out: str, report: Path) -> str:
    """The run's last line, once it, the exit code and the JSON verdict are seen to agree."""
    last = out.rstrip("\n").splitlines()[-1]
    value, exit_code = next((v, c) for head, v, c in HEADS if last.startswith(head))
    assert json.loads(report.read_text(encoding="utf-8"))["verdict"] == value, last
    assert code == exit_code, last
    return last


PARTIAL = r"PARTIAL \(not a conformance verdict\): "  # no pass: what ran, and what did not


def _failed(failing: str, others: str) -> str:
    return rf"NOT CONFORMING: {failing} failed \({others}\)"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "options", "expected"),
    [
        pytest.param(
            "memory://",
            ["--examples", "20", "--atomicity", "200"],
            "CONFORMING: " + ", ".join(PASSED.values()),
            id="none",
        ),
        pytest.param(
            "py:tests.test_cli:WrongOnRetentionGates",
            ["--examples", "20", "--atomicity", "200"],
            _failed("vectors", ", ".join(PASSED[n] for n in LAYERS if n != "vectors")),
            id="vectors",
        ),
        pytest.param(
            "py:tests.test_cli:LockedSixthEqualTimestamp",
            ["--atomicity", "200"],
            _failed("stateful", ", ".join(PASSED[n] for n in LAYERS if n != "stateful")),
            id="stateful",
        ),
        pytest.param(
            "py:tests.mutants.stores:ReadThenWrite",
            ["--examples", "0"],
            _failed("atomicity", f"{PASSED['vectors']}, {PASSED['faults']}; stateful not run"),
            id="atomicity-stateful-not-run",
        ),
        pytest.param(
            "py:tests.mutants.stores:StoreErrorRecorded",
            ["--examples", "20", "--atomicity", "200"],
            _failed("faults", ", ".join(PASSED[n] for n in LAYERS if n != "faults")),
            id="faults",
        ),
        pytest.param(
            "memory://",
            ["--examples", "0", "--atomicity", "200"],
            rf"{PARTIAL}stateful not run; {PASSED['vectors']}, {PASSED['atomicity']}, "
            rf"{PASSED['faults']}",
            id="stateful-not-run",
        ),
        pytest.param(
            "memory://",
            ["--select", "RET-*"],
            rf"{PARTIAL}only vectors matching --select RET-\*; stateful, atomicity, faults not "
            r"run; vectors (\d+)/\1 passed",
            id="vectors-only",
        ),
        pytest.param(
            EXAMPLE,
            ["--examples", "5"],
            rf"{PARTIAL}atomicity not checked; {PASSED['vectors']}, {PASSED['stateful']}, "
            rf"{PASSED['faults']}",
            id="port-without-bursts",
        ),
    ],
)
def test_the_last_line_states_the_verdict_of_the_exit_code_and_the_report(
    target: str, options: list[str], expected: str, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    arguments = ["run", "--target", target, "--seed", "2", "--json", str(report), *options]
    code, out, err = call(*arguments, "--emit", str(tmp_path))
    last = agreed(code, out, report)
    assert re.fullmatch(expected, last), out[-3000:] + err
    assert "vectors: " in out  # the vectors' own tally, no longer a verdict of its own


@pytest.mark.slow
def test_declared_failures_are_the_verdict_only_when_nothing_else_fails(tmp_path: Path) -> None:
    target = ["run", "--target", "py:tests.test_cli:WrongOnRetentionGates", "--seed", "2"]
    target += ["--examples", "20", "--atomicity", "200", "--json", str(tmp_path / "r.json")]
    skip = tmp_path / "skip.json"
    agreed(*call(*target, "--write-skip", str(skip))[:2], tmp_path / "r.json")
    written = json.loads(skip.read_text())
    for entry in written["known_failures"]:  # --skip takes only explained failures
        entry["reason"] = "the test store forgets namespace ret"
    skip.write_text(json.dumps(written))
    declared = len(written["known_failures"])
    code, out, _ = call(*target, "--skip", str(skip))
    others = ", ".join(PASSED[name] for name in LAYERS if name != "vectors")
    expected = (
        rf"CONFORMING EXCEPT {declared} DECLARED: vectors {VECTORS - declared}/{VECTORS} passed, "
        rf"{declared} declared, {others}"
    )
    assert re.fullmatch(expected, agreed(code, out, tmp_path / "r.json")), out[-2000:]


def _results(
    failing: tuple[str, ...], declared: bool
) -> tuple[Report, StatefulResult, AtomicityResult]:
    """Results as the layers would give them, where no real target fails just these layers."""
    results = [FAIL if "vectors" in failing else PASS, DECLARED if declared else PASS, PASS]
    report = Report([Outcome(v, r) for v, r in zip(ALL_VECTORS, results, strict=False)])
    stateful = StatefulResult("stateful" not in failing, 200, 1)
    atomicity = AtomicityResult(
        checks=2000,
        linearizable="atomicity" not in failing,
        faults_injected=12,
        faults_ok="faults" not in failing,
    )
    return report, stateful, atomicity


@pytest.mark.parametrize("declared", [False, True], ids=["", "declared"])
@pytest.mark.parametrize(
    "failing",
    [combination for n in range(5) for combination in itertools.combinations(LAYERS, n)],
    ids=lambda combination: "+".join(combination) or "none",
)
def test_every_combination_of_failing_layers_has_one_verdict(
    failing: tuple[str, ...], declared: bool
) -> None:
    report, stateful, atomicity = _results(failing, declared)
    verdict = run_verdict(report, stateful, atomicity)
    document = json_report(report, "memory://", {}, stateful, atomicity)
    value, exit_code = next((v, c) for head, v, c in HEADS if verdict.line.startswith(head))
    assert document["verdict"] == verdict.value == value
    assert verdict.conforming == (exit_code == 0)
    if not failing:
        return
    head, _, rest = verdict.line.removeprefix("NOT CONFORMING: ").partition(" failed")
    assert set(re.findall(r"\w+", head)) - {"and"} == set(failing), verdict.line
    for name in LAYERS:
        assert (f"{name} " in rest) == (name not in failing), verdict.line
