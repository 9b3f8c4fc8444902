"""The Python API (issue 17): ``actiongate_conformance.run`` and the ``Runner`` under it.

The command's ``run`` is this API with an observer that prints, so the two must agree: the same
verdict and the same report for the same options.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import math
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from actiongate import Gate, MemoryStore, Policy
from actiongate_conformance import LayerFinished, Observer, Runner, RunResult, api, run
from actiongate_conformance.cli import run as cli
from actiongate_conformance.data import validator
from actiongate_conformance.data.vectors import VectorError, load_all
from actiongate_conformance.layers.atomicity import AtomicityResult
from actiongate_conformance.layers.stateful import StatefulResult
from actiongate_conformance.layers.vectors import Report
from actiongate_conformance.targets import FactoryTarget, TargetError, as_target, store_factory

from .test_pytest_plugin import EXAMPLE, readme_blocks

VECTORS = sum(len(vector_file.vectors) for vector_file in load_all())
SHORT: dict[str, Any] = {"seed": 1, "examples": 10, "atomicity": 100}
BROKEN = "py:tests.test_api:ForgetsRetention"


class ForgetsRetention(MemoryStore):
    """Forgets the events of namespace "ret" (retention.json's) before each check of it."""

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        if gate.namespace == "ret":
            self.clear(gate)
        return super().check_and_reserve(gate, now, policy)


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def started(self, hello: Any) -> None:
        self.events.append(("started", hello["implementation"]["name"]))

    def layer_started(self, layer: str, total: int) -> None:
        self.events.append(("layer_started", layer, total))

    def progress(self, layer: str, done: int) -> None:
        self.events.append(("progress", layer, done))

    def layer_finished(self, event: LayerFinished) -> None:
        self.events.append(("layer_finished", event.layer, type(event.result)))


@pytest.mark.slow
def test_a_run_of_every_layer_gives_each_result_the_verdict_and_the_json_report() -> None:
    result = run("memory://", **SHORT)
    assert isinstance(result, RunResult)
    assert result.verdict.value == "conforming" and result.conforming
    assert result.verdict.line.startswith("CONFORMING: vectors ")
    assert len(result.report.outcomes) == VECTORS
    assert result.stateful is not None and result.stateful.seed == 1
    assert result.atomicity is not None and result.atomicity.passed
    assert set(result.timings) == {"vectors", "stateful", "atomicity", "total"}
    document = result.json()
    assert not list(validator("report").iter_errors(document))
    assert document["verdict"] == result.verdict.value
    text = result.text()
    assert text.startswith("ActionGate 1.0 conformance: memory://")
    assert "stateful model: 10 examples passed (seed 1)" in text
    assert text.endswith(result.verdict.line)


@pytest.mark.slow
def test_the_command_and_the_api_give_the_same_report(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    code = cli(
        ["run", "--seed", "1", "--examples", "10", "--atomicity", "100", "--json", str(path)],
        io.StringIO(),
        io.StringIO(),
    )
    assert code == 0
    written = json.loads(path.read_text())
    mine = run("memory://", **SHORT).json()
    for document in (written, mine):
        del document["timestamp"], document["timings"]
    assert mine == written


def test_a_failing_target_is_a_result_not_an_exception() -> None:
    result = run(BROKEN, select="retention-*")
    assert result.verdict.value == "not_conforming" and not result.conforming
    assert result.verdict.line.startswith("NOT CONFORMING: vectors failed")
    # A selection leaves the later layers out, as the command does.
    assert result.stateful is None and result.atomicity is None
    failed = result.outcome("retention-event-exactly-window-old-counts")
    assert failed is not None and failed.result == "fail"
    assert result.outcome("rate-limit-blocks-at-max-calls") is None  # not selected
    assert "FAIL retention.json > " in result.text()


def test_a_skip_file_declares_failures(tmp_path: Path) -> None:
    skip = tmp_path / "known.json"
    reason = "our store forgets retention gates (ticket 12)"
    vector = "retention-event-exactly-window-old-counts"
    skip.write_text(json.dumps({"known_failures": [{"vectors": vector, "reason": reason}]}))
    result = run(BROKEN, select=[vector], skip=skip)
    assert result.conforming and result.verdict.value == "partial"
    declared = result.outcome(vector)
    assert declared is not None and declared.result == "declared" and declared.reason == reason


@pytest.mark.slow
def test_the_observer_is_told_of_each_layer_in_order() -> None:
    recorder = Recorder()
    run("memory://", **SHORT, observer=recorder)
    events = recorder.events
    assert events[0] == ("started", "actiongate reference (memory://)")
    assert ("layer_started", "vectors", VECTORS) in events
    assert ("progress", "vectors", VECTORS) in events and ("progress", "stateful", 10) in events
    finished = [event[1:] for event in events if event[0] == "layer_finished"]
    assert finished == [
        ("vectors", Report),
        ("stateful", StatefulResult),
        ("atomicity", AtomicityResult),
    ]
    # Each layer starts, counts, then finishes before the next one starts.
    layers = [event[1] for event in events[1:]]
    assert layers == sorted(layers, key=["vectors", "stateful", "atomicity"].index)


@pytest.mark.slow
def test_a_runner_goes_one_layer_at_a_time() -> None:
    runner = Runner("memory://", layers=["vectors", "stateful"], seed=1, examples=5)
    try:
        assert runner.until("vectors") and runner.done == ["vectors"]
        assert runner.stateful is None and len(runner.report.outcomes) == VECTORS
        assert not runner.until("atomicity")  # not chosen: the run ends without it
        assert runner.done == ["vectors", "stateful"]
        result = runner.finish()
    finally:
        runner.close()
    assert result.stateful is not None and result.atomicity is None
    assert result.verdict.value == "partial"
    assert "atomicity, faults not run" in result.verdict.line


@pytest.mark.slow
def test_fail_fast_stops_after_the_first_failing_layer() -> None:
    result = run(BROKEN, fail_fast=True, **SHORT)
    assert not result.conforming and result.stateful is None and result.atomicity is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layers": ["vectors", "faults"]}, "the injected faults run with 'atomicity'"),
        ({"layers": ["stateful"]}, "layers must include 'vectors'"),
        ({"layers": ["vectors", "stateful"], "examples": 0}, "examples must be > 0"),
        ({"examples": -1}, "examples must be an integer >= 0, got -1"),
        ({"atomicity": 1.5}, "atomicity must be an integer >= 0, got 1.5"),
        ({"seed": "7"}, "seed must be an integer or None, got '7'"),
        ({"timeout": math.nan}, "timeout must be finite and > 0, got nan"),
        ({"budget": 0}, "budget must be finite and > 0, got 0"),
        ({"target": ""}, "target must be a target string"),
        (
            {"target": 42},
            "a store factory (a callable taking no argument that returns a fresh "
            "store) or a store, got 42",
        ),
    ],
    ids=lambda value: str(value)[:40],
)
def test_a_bad_argument_is_refused_naming_it(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        run(**options)


@pytest.mark.slow
def test_files_and_targets_that_cannot_be_used_raise_before_any_verdict(tmp_path: Path) -> None:
    with pytest.raises(VectorError, match="no vector matches NOPE-\\*"):
        run(select="NOPE-*")
    placeholder = tmp_path / "known.json"
    placeholder.write_text('{"known_failures": [{"vectors": "x", "reason": "TODO: explain"}]}')
    with pytest.raises(VectorError, match="still have the reason --write-skip wrote"):
        run(skip=placeholder)
    with pytest.raises(TargetError, match="cannot import 'no_such_module_here'"):
        run("py:no_such_module_here:make", layers=["vectors"])


def test_a_store_factory_or_a_store_is_a_target_named_by_its_qualified_name() -> None:
    vector = "retention-event-exactly-window-old-counts"
    # A class a module names is the py: target naming it: the same run, the same label.
    result = run(ForgetsRetention, select=vector)
    assert result.target == BROKEN and not result.conforming
    assert result.text().endswith(result.verdict.line)
    assert f"rerun: actiongate-conformance run --target {BROKEN} --select {vector}" in (
        result.text()
    )
    # A lambda, and a store, which every reset empties.
    result = run(lambda: MemoryStore(), select="RET-*")  # noqa: PLW0108 - as a fixture's
    assert result.conforming and type(result.target) is str
    assert result.target == (
        "py:tests.test_api:"
        "test_a_store_factory_or_a_store_is_a_target_named_by_its_qualified_name.<locals>.<lambda>"
    )
    result = run(MemoryStore(), select="RET-*")
    assert result.conforming
    assert result.target == "py:actiongate.stores.memory:MemoryStore instance"
    # A partial, by the function it calls: "functools:partial" would name every one alike.
    target = as_target(functools.partial(MemoryStore))
    assert target == "py:actiongate.stores.memory:MemoryStore partial" and not target.runnable
    assert result.hello["implementation"]["name"] == result.target


def test_a_factory_target_is_its_label_and_keeps_its_factory() -> None:
    # A str, so that every layer takes it as a target string; copied or pickled, still itself.
    target = as_target(MemoryStore)
    assert isinstance(target, FactoryTarget) and target.runnable
    assert target == "py:actiongate.stores.memory:MemoryStore"
    assert copy.deepcopy(target) is target
    assert pickle.loads(pickle.dumps(target)).factory is MemoryStore
    store = MemoryStore()
    made = store_factory(as_target(store))
    assert made is not None and made() is store


def test_a_factory_that_makes_no_store_cannot_be_run() -> None:
    with pytest.raises(TargetError, match=r"<lambda>: the factory returned int, not a store "):
        run(lambda: 42, layers=["vectors"])
    with pytest.raises(TargetError, match=r"the factory raised ConnectionError: refused"):
        run(_refused, layers=["vectors"])


def _refused() -> MemoryStore:
    raise ConnectionError("refused")


def test_a_runner_takes_the_vector_files_already_loaded() -> None:
    files = load_all()
    runner = Runner(select="RET-1", loaded=files[:1])  # not started: the target is not run yet
    runner.close()
    chosen = [v for v in files[0].vectors if "RET-1" in v.clauses]
    assert runner.vectors == chosen and runner.vectors


def test_the_api_is_exported_from_the_package_and_loaded_on_first_use() -> None:
    import actiongate_conformance

    assert actiongate_conformance.run is api.run and "run" in actiongate_conformance.__all__
    assert {"run", "RunResult", "Runner", "Observer"} <= set(dir(actiongate_conformance))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = actiongate_conformance.nope  # type: ignore[attr-defined]
    # Importing the package (as pytest does to load the plugin) imports none of the suite.
    code = (
        "import sys, actiongate_conformance, actiongate_conformance.pytest_plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith(('actiongate', 'hypothesis'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert loaded.strip() == "['actiongate_conformance', 'actiongate_conformance.pytest_plugin']"


@pytest.mark.slow
def test_readmes_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mystore.py").write_text(EXAMPLE["mystore.py"])
    example = next(block for block in readme_blocks() if "actiongate_conformance.run(" in block)
    monkeypatch.chdir(tmp_path)  # where a vendor runs it: py:mystore names ./mystore.py
    monkeypatch.syspath_prepend(str(tmp_path))  # what the target puts on sys.path, undone after
    try:
        exec(compile(example, "README.md", "exec"), {})
    finally:
        sys.modules.pop("mystore", None)
    assert capsys.readouterr().out.startswith("CONFORMING: vectors ")
