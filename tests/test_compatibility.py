"""The compatibility matrix in docs/ and README.md: made from the reports in docs/results/.

Two things keep it true. The committed matrix must be exactly what ``actiongate-conformance
report`` makes of the committed reports (so nobody edits it by hand), and the reports of our
own targets (the reference over memory, Redis and a Redis Cluster, and the JavaScript port)
must still say what a fresh run says, cell by cell. Upstream's reports come from upstream's own
venv (examples/upstream/README.md) and are only rendered here.

After a change that moves a cell, refresh our reports and the matrix with
``ACTIONGATE_UPDATE_RESULTS=1 python3 -m pytest tests/test_compatibility.py``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from actiongate_conformance.cli import run
from actiongate_conformance.reports.matrix import cells, load_column

from .redis_servers import HAVE_REDIS_SERVER, Backend

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
UPDATE = os.environ.get("ACTIONGATE_UPDATE_RESULTS") == "1"
# (label, report file), in the matrix's column order.
COLUMNS = (
    ("reference, memory", "reference-memory.json"),
    ("reference, Redis", "reference-redis.json"),
    ("reference, Redis Cluster", "reference-cluster.json"),
    ("JavaScript port", "javascript.json"),
    ("upstream 0.3.0, memory", "upstream-memory.json"),
    ("upstream 0.3.0, Redis", "upstream-redis.json"),
)
REGENERATE = "ACTIONGATE_UPDATE_RESULTS=1 python3 -m pytest tests/test_compatibility.py"


def report_arguments(results: Path) -> list[str]:
    arguments = ["report"]
    for _, name in COLUMNS:
        arguments.append(str(results / name))
    for label, _ in COLUMNS:
        arguments += ["--label", label]
    return arguments


def render(into: Path) -> None:
    """The matrix as the repository holds it, made afresh under ``into`` (same layout)."""
    (into / "docs").mkdir(parents=True, exist_ok=True)
    readme = into / "README.md"
    if not readme.exists():
        shutil.copy(ROOT / "README.md", readme)
    outputs = [
        *("--md", str(into / "docs" / "compatibility.md")),
        *("--md", str(readme)),
        *("--html", str(into / "docs" / "compatibility.html")),
    ]
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run([*report_arguments(RESULTS), *outputs], stdout, stderr)
    assert code == 0, stderr.getvalue()


def run_suite(target: str, report: Path, tmp_path: Path) -> dict[str, object]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(
        ["run", "--target", target, "--seed", "20261124", "--json", str(report),
         "--emit", str(tmp_path)],
        stdout,
        stderr,
    )  # fmt: skip
    assert code == 0, stdout.getvalue()[-4000:] + stderr.getvalue()
    return json.loads(report.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def check_column(target: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh run of ``target`` fills every cell as the committed report ``name`` does."""
    monkeypatch.chdir(ROOT)  # report the JavaScript port by its path in the repository
    fresh = tmp_path / name
    run_suite(target, fresh, tmp_path)
    if UPDATE:
        shutil.copy(fresh, RESULTS / name)
    committed = {key: cell.state for key, cell in cells(load_column(RESULTS / name)).items()}
    now = {key: cell.state for key, cell in cells(load_column(fresh)).items()}
    moved = {key: (committed[key], now[key]) for key in now if committed[key] != now[key]}
    assert not moved, f"cells moved (committed, now): {moved}; run: {REGENERATE}"


def test_the_reference_over_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_column("memory://", "reference-memory.json", tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_REDIS_SERVER, reason="the Redis column is of a real redis-server")
def test_the_reference_over_redis(
    redis_server: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = redis_server.url_with(prefix="compatibility")
    check_column(target, "reference-redis.json", tmp_path, monkeypatch)


@pytest.mark.slow
def test_the_reference_over_a_redis_cluster(
    redis_cluster: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = redis_cluster.url_with(prefix="compatibility")
    check_column(target, "reference-cluster.json", tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_the_javascript_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = "cmd:node examples/ports/javascript/adapter.js"
    check_column(target, "javascript.json", tmp_path, monkeypatch)


# Last, so that with ACTIONGATE_UPDATE_RESULTS=1 it renders the reports the tests above wrote.
def test_the_committed_matrix_is_what_the_reports_make(tmp_path: Path) -> None:
    if UPDATE:
        render(ROOT)
    render(tmp_path)
    for name in ("docs/compatibility.md", "docs/compatibility.html", "README.md"):
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        assert (ROOT / name).read_text(encoding="utf-8") == fresh, (
            f"{name} is not what docs/results/ make; run: {REGENERATE}"
        )
