"""The JavaScript port (examples/ports/javascript) passes the whole suite, through the CLI."""

from __future__ import annotations

import io
import json
import shlex
import shutil
from pathlib import Path

import pytest
from actiongate_conformance.cli import run

PORT = Path(__file__).resolve().parent.parent / "examples" / "ports" / "javascript"
CODE_LIMIT = 300  # lines of the .js files together, comments included: the example stays short


def test_the_port_stays_short() -> None:
    sources = sorted(PORT.glob("*.js"))
    assert [path.name for path in sources] == ["actiongate.js", "adapter.js"]
    lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in sources)
    assert lines < CODE_LIMIT


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not on PATH: the JavaScript port cannot run"
)
def test_the_port_conforms(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(
        [
            "run",
            "--target",
            f"cmd:node {shlex.quote(str(PORT / 'adapter.js'))}",
            "--seed",
            "20261124",
            "--emit",
            str(tmp_path),
            "--json",
            str(report_path),
        ],
        stdout,
        stderr,
    )
    assert code == 0, stdout.getvalue() + stderr.getvalue()
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["verdict"] == "conforming"
    assert report["implementation"]["language"] == "javascript"
    assert report["counts"]["pass"] == len(report["vectors"]) and report["counts"]["skip"] == 0
    assert report["stateful"]["passed"] is True
    atomicity = report["atomicity"]
    assert atomicity["linearizable"] is True and atomicity["checks"] >= 2000
    # The port declares store_faults: the fault cases run through store_fail and store_recover.
    assert atomicity["faults_ok"] is True
    store_error_vectors = [v for v in report["vectors"] if "ERR-1" in v["clauses"]]
    assert store_error_vectors and all(v["result"] == "pass" for v in store_error_vectors)
