"""The pytest plugin: the conformance suite as ordinary pytest items, in a vendor's own test run.

Installed with the package (entry point ``pytest11``, named ``actiongate``), so pytest loads it
into every session of anyone who has the package, this project's own tests included. Without a
target it adds its options and nothing else: no item, no fixture, no import of the suite.

The target is the first of:

1. ``--actiongate-target TARGET``: any target string (``py:mystore:make``, ``cmd:...``);
2. the value of a fixture named ``actiongate_target``, where the suite sees it: the root
   ``conftest.py`` or a plugin. It may use other fixtures (to start a server); make it
   session-scoped, as the layers share one run. Its value is a target string, a store factory
   (a callable taking no argument that returns a fresh store: ``lambda: MyStore(server.url)``)
   or a store, as ``api.run`` takes them; reports name a callable ``py:module:qualname``;
3. the ini option ``actiongate_target``.

The suite joins every run given ``--actiongate-target``. Named by the fixture or the ini option,
it joins a run that collects a directory (``pytest``, ``pytest tests/``), not one given only
files or node ids (``pytest tests/test_store.py``), so that such a run stays as quick as it was.

The items: one per vector, ``vectors/retention.json::retention-event-exactly-window-old-counts``
(``-k`` also matches the clauses it cites), then ``actiongate::stateful``,
``actiongate::atomicity`` and ``actiongate::faults``; ``-k actiongate`` selects them all. A
failure shows the command's explanation of it. ``--actiongate-skip FILE`` declares failures:
each is a strict xfail with its reason, so one that passes fails the run, as a stale
declaration fails the command's. A vector the target cannot run (it cannot make its store fail)
and a layer the target cannot be checked for are skips, with the reason.

The items read one ``api.Runner``, made at the first item that runs and advanced a layer at a
time as the items ask: each item's time is its own layer's, and ``-x`` stops the run there. The
vectors run once, all the selected ones together, as the command runs them, and are read once:
the files collected are those the Runner runs.

Why this hook. The suite has no files in the vendor's repository, so ``pytest_collect_file`` has
nothing to attach to; ``pytest_collection_modifyitems`` comes after ``-k``, ``-m``,
``--deselect`` and ``--lf`` have chosen; ``pytest_collect_directory`` (pytest 8 and later)
replaces a directory's collector rather than adding one. A hook wrapper around the Session's
``pytest_make_collect_report`` adds one collector to what the Session collected, before pytest
expands the tree: the items then pass through every selection, report and plugin as any other,
on pytest 7, 8 and 9 alike. They are ``pytest.Function`` items, with a test function of their
own, so that they can use fixtures: ``actiongate_target``, and the run's autouse ones.
"""

from __future__ import annotations

import glob
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from .api import Runner
    from .data.skips import KnownFailures
    from .data.vectors import Vector, VectorFile

__all__ = ["ConformanceFailure"]

FIXTURE = "actiongate_target"
SUITE = "actiongate"
# The later layers' items, and the layer of the run each one reads.
LAYER_ITEMS = {"stateful": "stateful", "atomicity": "atomicity", "faults": "atomicity"}


class ConformanceFailure(Exception):
    """An item failed; the message is the explanation, shown as the command shows it."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("actiongate", "ActionGate conformance suite (actiongate-conformance)")
    group.addoption(
        "--actiongate-target",
        metavar="TARGET",
        help="run the conformance suite against TARGET (py:module:callable, cmd:PROGRAM, "
        "memory://, ...), as items of this run",
    )
    group.addoption(
        "--actiongate-seed",
        type=int,
        metavar="N",
        help="seed of the stateful model (default: drawn)",
    )
    group.addoption(
        "--actiongate-examples",
        type=int,
        metavar="N",
        help="stateful-model examples (default 200; 0 skips the model)",
    )
    group.addoption(
        "--actiongate-skip",
        metavar="FILE",
        help="a skip file: the failures it declares are strict xfails, with its reasons",
    )
    parser.addini(FIXTURE, "the conformance suite's target, as --actiongate-target", default="")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    if isinstance(collector, pytest.Session) and _wanted(collector):
        report = outcome.get_result()
        if report.passed:
            report.result.append(ConformanceSuite.from_parent(collector, name=SUITE, nodeid=SUITE))


def _wanted(session: pytest.Session) -> bool:
    """Is a target given, for this run?"""
    config = session.config
    if config.getoption("actiongate_target"):
        return True
    start = config.invocation_params.dir
    if not any(Path(start, arg.split("::")[0]).is_dir() for arg in config.args):
        return False
    return bool(config.getini(FIXTURE)) or _fixture_defined(session)


def _fixture_defined(session: pytest.Session) -> bool:
    """Does the root see a fixture ``actiongate_target``? Only the fixture manager knows before
    a test runs, and it is private: pytest 8.1 and later take a node, earlier ones its id."""
    manager: Any = session._fixturemanager
    try:
        return bool(manager.getfixturedefs(FIXTURE, session))
    except (AttributeError, TypeError):
        return bool(manager.getfixturedefs(FIXTURE, session.nodeid))


class ConformanceSuite(pytest.Collector):
    """The suite: a collector per vector file, then the later layers' items. It holds the run
    (one per target string) and closes it when its items are done."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs: dict[str, SuiteRun] = {}
        self.files: list[VectorFile] = []  # read once, for the items and the Runner

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from .data.skips import load_skip_file  # noqa: PLC0415 - the suite loads once wanted
        from .data.vectors import VectorError, load_all  # noqa: PLC0415

        config = self.config
        examples = config.getoption("actiongate_examples")
        if examples is not None and examples < 0:
            raise self.CollectError(f"--actiongate-examples must be >= 0, got {examples}")
        skip = config.getoption("actiongate_skip")
        try:
            self.files = load_all()
            known = load_skip_file(Path(config.invocation_params.dir, skip)) if skip else None
        except VectorError as error:
            raise self.CollectError(str(error)) from None
        for vector_file in self.files:
            name = f"vectors/{vector_file.path.name}"
            yield VectorFileCollector.from_parent(
                self, name=name, nodeid=name, path=vector_file.path, vectors=vector_file.vectors,
                known=known,
            )  # fmt: skip
        for name in LAYER_ITEMS:
            yield LayerItem.from_parent(self, name=name, callobj=_conformance)

    def run(self, request: pytest.FixtureRequest) -> SuiteRun:
        """The run of this session's target, made at the first item that asks."""
        target = _target(request)
        if target not in self.runs:
            self.runs[target] = SuiteRun(self._runner(target, request.session.items))
        return self.runs[target]

    def _runner(self, target: str, items: list[pytest.Item]) -> Runner:
        from .api import DEFAULT_EXAMPLES, Runner  # noqa: PLC0415

        ours = [item for item in items if item.getparent(ConformanceSuite) is self]
        ids = [item.vector.id for item in ours if isinstance(item, VectorItem)]
        layers = {"vectors"} | {
            LAYER_ITEMS[item.name] for item in ours if isinstance(item, LayerItem)
        }
        examples = self.config.getoption("actiongate_examples")
        examples = DEFAULT_EXAMPLES if examples is None else examples
        if not examples:
            layers.discard("stateful")
        # All of them, or none (a run of the later layers alone): the suite's, unselected.
        every = len(ids) in (0, sum(len(vector_file.vectors) for vector_file in self.files))
        try:
            return Runner(
                target,
                layers=layers,
                seed=self.config.getoption("actiongate_seed"),
                examples=examples,
                select=() if every else [glob.escape(vector_id) for vector_id in ids],
                loaded=self.files,
            )
        except ValueError as error:  # VectorError too
            raise ConformanceFailure(f"the suite cannot run: {error}") from None

    def teardown(self) -> None:
        for run in self.runs.values():
            run.runner.close()
        self.runs.clear()


class VectorFileCollector(pytest.Collector):
    """A vector file's vectors, each an item; a declared failure is marked a strict xfail."""

    def __init__(
        self, *, vectors: tuple[Vector, ...], known: KnownFailures | None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.vectors = vectors
        self.known = known

    def collect(self) -> Iterator[pytest.Item]:
        for vector in self.vectors:
            item = VectorItem.from_parent(self, name=vector.id, vector=vector, callobj=_conformance)
            reason = None if self.known is None else self.known.reason_for(vector.id)
            if reason is not None:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
            yield item


class SuiteRun:
    """The Runner, and the first error that stopped it, which every later item reports."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.error: str | None = None

    def until(self, layer: str) -> bool:
        from .targets import TargetError  # noqa: PLC0415

        if self.error is not None:
            raise ConformanceFailure(self.error)
        try:
            return self.runner.until(layer)
        except TargetError as error:
            self.error = f"the target could not be run: {error}"
            raise ConformanceFailure(self.error) from None
        except Exception as error:
            self.error = f"the run stopped at an error in an earlier item: {error!r}"
            raise


class ConformanceItem(pytest.Function):
    """An item of the suite: its test function asks the suite's run for the item's result."""

    def check(self, run: SuiteRun) -> None:
        raise NotImplementedError

    def repr_failure(  # type: ignore[override] # as pytest.Function's own: no style
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class VectorItem(ConformanceItem):
    def __init__(self, *, vector: Vector, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vector = vector
        self.extra_keyword_matches.update(vector.clauses)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.vector.file} > {self.vector.id}"

    def check(self, run: SuiteRun) -> None:
        from .layers.vectors import PASS, SKIP  # noqa: PLC0415
        from .reports.terminal import failure_lines  # noqa: PLC0415

        run.until("vectors")
        vector_id = self.vector.id
        outcome = next((o for o in run.runner.report.outcomes if o.vector.id == vector_id), None)
        if outcome is None:
            raise ConformanceFailure(f"{vector_id} was not in this session's run of the vectors")
        if outcome.result == SKIP:
            pytest.skip(outcome.reason or "")
        if outcome.result != PASS:
            lines = failure_lines(outcome, run.runner.target)
            if not _runnable(run.runner.target):  # the command's rerun hint would not work
                lines[-1] = f"  rerun: pytest -k {vector_id}"
            raise ConformanceFailure("\n".join(lines))


class LayerItem(ConformanceItem):
    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(__file__), None, f"{SUITE} {self.name}"

    def check(self, run: SuiteRun) -> None:
        from .layers.vectors import Report  # noqa: PLC0415
        from .reports.terminal import stateful_summary  # noqa: PLC0415
        from .reports.verdict import FAILED, NOT_CHECKED, NOT_RUN, run_verdict  # noqa: PLC0415

        run.until(LAYER_ITEMS[self.name])
        runner = run.runner
        # The verdict's own judgement of the layer: passed, failed, not run or not checked.
        layer = run_verdict(Report(), runner.stateful, runner.atomicity).layer(self.name)
        if layer.state == NOT_RUN:  # the one way a layer is left out here
            pytest.skip("the stateful model is left out: --actiongate-examples 0")
        if layer.state == NOT_CHECKED:
            pytest.skip(f"{self.name} not checked: {layer.reason}")
        if runner.stateful is not None and self.name == "stateful":
            text = stateful_summary(runner.stateful)
            if not runner.stateful.passed and not _runnable(runner.target):
                text = _pytest_rerun(text, runner.stateful.rerun, runner)
        else:
            text = "" if runner.atomicity is None else runner.atomicity.summary()
        if layer.state == FAILED:
            raise ConformanceFailure(text)
        self.add_report_section("call", "actiongate", text)


def _conformance(request: pytest.FixtureRequest) -> None:
    """An item of the ActionGate conformance suite (actiongate_conformance.pytest_plugin)."""
    item = request.node
    assert isinstance(item, ConformanceItem)
    suite = item.getparent(ConformanceSuite)
    assert suite is not None
    item.check(suite.run(request))


def _target(request: pytest.FixtureRequest) -> str:
    """The target: the option, else the fixture, else the ini option. A store factory or a
    store the fixture returns is a FactoryTarget: a str, its label."""
    from .targets import as_target  # noqa: PLC0415

    value = request.config.getoption("actiongate_target")
    if not value:
        try:
            value = request.getfixturevalue(FIXTURE)
        except pytest.FixtureLookupError:
            value = request.config.getini(FIXTURE)
    try:
        return as_target(value)
    except ValueError as error:
        raise ConformanceFailure(f"the fixture {FIXTURE} returned no target: {error}") from None


def _pytest_rerun(text: str, command: str, runner: Runner) -> str:
    """The stateful failure ``text`` with its rerun command, which cannot import the target,
    replaced by the pytest command that reruns the same search."""
    assert runner.stateful is not None
    lines = text.splitlines()
    hint = (
        f"  pytest -k stateful --actiongate-examples {runner.examples} "
        f"--actiongate-seed {runner.stateful.seed}"
    )
    why = f"(the command cannot import {runner.target})"
    if lines and lines[-1] == f"  {command}":
        lines[-1] = hint
        if len(lines) > 1 and lines[-2].startswith("Rerun the search"):
            lines[-2] = f"Rerun the search with pytest {why}:"
        else:
            lines.insert(len(lines) - 1, f"Rerun it with pytest {why}:")
        return "\n".join(lines)
    return f"{text}\nRerun the search with pytest {why}:\n{hint}"


def _runnable(target: str) -> bool:
    """Can the command run this target, so that its rerun hints hold? Not a store factory or a
    store no ``py:`` string names (a fixture's lambda)."""
    from .targets import FactoryTarget  # noqa: PLC0415

    return not isinstance(target, FactoryTarget) or target.runnable
