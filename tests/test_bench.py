"""The benchmark runs end to end and writes every row it promises. No timing is asserted."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from actiongate import bench

from .redis_servers import NEEDS_REAL_REDIS, Backend

REFERENCE = Path(bench.__file__).resolve().parent

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


# The Redis table (issue 16): server time per decision and client latency over the floor.

REDIS_ROWS = [(w, n) for w in ("allow", "blocked") for n in (10, 1_000, 10_000)]
HAVE_LIMITS = importlib.util.find_spec("limits") is not None


def check_redis_table(redis: dict[str, Any], names: list[str]) -> None:
    assert redis["implementations"] == names
    assert [(row["workload"], row["retained"]) for row in redis["rows"]] == REDIS_ROWS
    for row in redis["rows"]:
        assert set(row["results"]) == set(names)
        for figures in row["results"].values():
            assert figures["server_us"] > 0  # INFO commandstats saw every batch
            assert figures["floor_ratio"] > 0
            assert figures["p99_ns"] >= figures["p50_ns"] > 0
            assert figures["key_bytes"] > 8 * row["retained"]  # at least a double per event
    assert redis["floor"]["trivial_evalsha"]["server_us"] > 0
    assert redis["floor"]["ping"]["p50_ns"] > 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")
def test_start_redis_adds_the_redis_table_with_limits_when_it_imports(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    command = [sys.executable, "-m", "actiongate.bench", "--quick", "--redis-only"]
    command += ["--start-redis", "--json", str(output)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "server us / decision" in completed.stdout
    assert "client / floor" in completed.stdout
    report = json.loads(output.read_text(encoding="utf-8"))
    assert "rows" not in report  # --redis-only: no memory tables
    redis = report["redis"]
    check_redis_table(redis, ["ours", "limits"] if HAVE_LIMITS else ["ours"])
    assert redis["started"] is True
    if len(getattr(os, "sched_getaffinity", lambda _: ())(0)) > 1:  # split-core placement
        assert redis["server_cpu"] != redis["client_cpu"]
    assert ("limits is not installed" in completed.stdout) is not HAVE_LIMITS


@pytest.mark.slow
def test_a_redis_url_without_limits_gives_ours_and_a_baseline_with_a_note(
    redis_server: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if redis_server.name != "redis-server":
        pytest.skip(NEEDS_REAL_REDIS)
    monkeypatch.setitem(sys.modules, "limits", None)  # import limits now raises ImportError
    baseline = tmp_path / "old.lua"
    baseline.write_bytes((REFERENCE / "stores" / "check_and_reserve.lua").read_bytes())
    output, out = tmp_path / "bench.json", io.StringIO()
    affinity = getattr(os, "sched_getaffinity", lambda _: None)(0)
    arguments = ["--quick", "--redis-only", "--redis", redis_server.url, "--json", str(output)]
    assert bench.run([*arguments, "--baseline-script", str(baseline)], out) == 0
    assert getattr(os, "sched_getaffinity", lambda _: None)(0) == affinity  # pinning ends
    redis = json.loads(output.read_text(encoding="utf-8"))["redis"]
    check_redis_table(redis, ["ours", "base"])
    assert redis["started"] is False and redis["baseline"] == str(baseline)
    text = out.getvalue()
    assert "ours alone: limits is not installed" in text
    assert "pin the server to another CPU yourself" in text
    assert "ours/base" in text


def test_redis_options_need_a_redis(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.run(["--redis-only"], io.StringIO())
    assert exit_info.value.code == 2
    assert "need --start-redis or --redis URL" in capsys.readouterr().err
