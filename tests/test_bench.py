"""The benchmark runs end to end and writes every row it promises. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = {
    (workload, retained) for workload in ("allow", "blocked") for retained in (10, 1_000, 10_000)
}


@pytest.mark.slow
def test_quick_run_writes_every_row_with_positive_figures(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    command = [sys.executable, "-m", "actiongate.bench", "--quick", "--json", str(output)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "ours p50" in completed.stdout

    report = json.loads(output.read_text(encoding="utf-8"))
    assert {(row["workload"], row["retained"]) for row in report["rows"]} == ROWS
    for row in report["rows"]:
        ours = row["results"]["ours"]
        assert ours["p50_ns"] > 0
        assert ours["p99_ns"] >= ours["p50_ns"]
        assert ours["checks_per_s"] > 0
    assert set(report["scaling"]["ours"]) == {"allow", "blocked"}
    assert all(ratio > 0 for ratio in report["scaling"]["ours"].values())
    memory = report["memory"]["ours"]
    assert memory["gates"] > 0
    assert memory["peak_bytes"] > memory["before_bytes"] >= 0
