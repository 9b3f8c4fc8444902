"""The Python API: ``run`` checks a target in the suite's layers and returns a ``RunResult``.

::

    import actiongate_conformance

    result = actiongate_conformance.run(target="py:mystore:make", seed=1)
    print(result.verdict.line)  # CONFORMING: vectors 171/171 passed, ...
    assert result.verdict.conforming, result.text()

    result = actiongate_conformance.run(target=lambda: MyStore(url), seed=1)  # a store factory

The command's ``run`` and the pytest plugin are both this module: the command is ``run`` with an
``Observer`` that prints each layer as it finishes; the plugin takes a ``Runner`` one layer at a
time, as its items ask for them. The layers run in order, on one connection to the target, after
the smoke check: the vectors, then the stateful model, then the atomicity checks with the
injected store faults (one layer here, two in the verdict: ``atomicity`` and ``faults``).
``reports/verdict.py`` decides the verdict, as it does for the command.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from actiongate import AsyncStore, Store
from hypothesis import configuration as hypothesis_configuration

from ._results import LayerFinished, LayerResult, Observer, RunResult
from .data.skips import load_skip_file
from .data.vectors import Vector, VectorError, VectorFile, load_all, select
from .layers.atomicity import AtomicityResult, run_atomicity
from .layers.stateful import StatefulResult, run_stateful
from .layers.vectors import Report, run_vectors, smoke
from .reports.verdict import Selection
from .targets import StoreFactory, as_target, target_from_string

__all__ = [
    "DEFAULT_ATOMICITY",
    "DEFAULT_EXAMPLES",
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "LAYERS",
    "LayerFinished",
    "LayerResult",
    "Observer",
    "RunResult",
    "Runner",
    "run",
]

DEFAULT_TARGET = "memory://"
DEFAULT_TIMEOUT = 10.0  # seconds an adapter may take to answer one request
DEFAULT_EXAMPLES = 200  # stateful-model examples
DEFAULT_ATOMICITY = 2000  # concurrent checks, about
# The layers a run can ask for, in the order they run; "atomicity" holds the injected faults.
LAYERS = ("vectors", "stateful", "atomicity")
R = TypeVar("R", Report, StatefulResult, AtomicityResult)  # a layer's result


class Runner:
    """A run taken one layer at a time: ``until(layer)`` runs the layers up to that one,
    ``finish()`` the rest, and returns the result. ``run`` is a Runner taken to its end; the
    pytest plugin advances one as its items ask. ``close()`` closes the target of a run left
    unfinished.

    The arguments are ``run``'s, checked here: a bad one raises ValueError naming it, a vector
    or skip file that cannot be used VectorError, both before the target is started. One more,
    ``loaded``: the files ``vectors`` names (the suite's own by default), already read by
    ``data.vectors.load_all``, so that a caller that has read them (the pytest plugin, to
    collect its items) spares the Runner reading them again.
    """

    def __init__(
        self,
        target: str | StoreFactory | Store | AsyncStore = DEFAULT_TARGET,
        *,
        layers: Collection[str] | None = None,
        seed: int | None = None,
        examples: int = DEFAULT_EXAMPLES,
        atomicity: int = DEFAULT_ATOMICITY,
        select: str | Sequence[str] = (),
        vectors: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        skip: str | os.PathLike[str] | None = None,
        emit: str | os.PathLike[str] | None = None,
        budget: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        fail_fast: bool = False,
        observer: Observer | None = None,
        loaded: Sequence[VectorFile] | None = None,
    ) -> None:
        self.target = as_target(target)  # a factory or store: a FactoryTarget, a str (its label)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        self.seed = seed
        self.examples = _count("examples", examples)
        self.checks = _count("atomicity", atomicity)
        self.budget = None if budget is None else _seconds("budget", budget)
        self.timeout = _seconds("timeout", timeout)
        patterns = (select,) if isinstance(select, str) else tuple(select)
        many = [vectors] if isinstance(vectors, (str, os.PathLike)) else vectors
        files = None if many is None else [Path(path) for path in many]
        self.selection = Selection(patterns, tuple(map(str, files or ())))
        self.layers = self._layers(layers)
        self.vectors = _select_vectors(files, patterns, loaded)
        self.known = None if skip is None else load_skip_file(Path(skip))
        self.emit = None if emit is None else Path(emit)
        self.fail_fast = fail_fast
        self.observer = observer or Observer()
        self.hello: Mapping[str, Any] = {}
        self.report = Report()
        self.stateful: StatefulResult | None = None
        self.atomicity: AtomicityResult | None = None
        self.timings: dict[str, float] = {}
        self.done: list[str] = []  # the layers run so far, in order
        self._steps = self._run()

    def _layers(self, layers: Collection[str] | None) -> tuple[str, ...]:
        # By default, as the command does: the model and the atomicity checks follow the whole
        # suite, not a chosen few vectors, and 0 examples or checks leave a layer out.
        if layers is None:
            whole = not self.selection.chosen
            wanted = {"vectors"}
            wanted |= {"stateful"} if whole and self.examples else set()
            wanted |= {"atomicity"} if whole and self.checks else set()
            return tuple(layer for layer in LAYERS if layer in wanted)
        chosen = {layers} if isinstance(layers, str) else set(layers)
        unknown = sorted(chosen - set(LAYERS), key=str)
        if unknown:
            faults = " (the injected faults run with 'atomicity')" if "faults" in unknown else ""
            raise ValueError(f"layers must be among {', '.join(LAYERS)}, got {unknown}{faults}")
        if "vectors" not in chosen:
            raise ValueError(
                f"layers must include 'vectors': every run begins with them, got {sorted(chosen)}"
            )
        for layer, amount, name in (("stateful", self.examples, "examples"),
                                    ("atomicity", self.checks, "atomicity")):  # fmt: skip
            if layer in chosen and not amount:
                raise ValueError(f"{name} must be > 0 to run the {layer} layer, got 0")
        return tuple(layer for layer in LAYERS if layer in chosen)

    def until(self, layer: str) -> bool:
        """Run the layers up to ``layer``; False if the run ends without it (not chosen, or
        --fail-fast after a failure). Raises what the run raises (TargetError: the target
        cannot be run)."""
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
        while layer not in self.done:
            if next(self._steps, None) is None:
                return False
        return True

    def finish(self) -> RunResult:
        """Run what is left and return the result."""
        for _ in self._steps:
            pass
        return RunResult(
            str(self.target),
            self.hello,
            self.report,
            self.stateful,
            self.atomicity,
            self.selection,
            dict(self.timings),
        )

    def close(self) -> None:
        """Close the target, if the run started it and has not finished."""
        self._steps.close()

    def _run(self) -> Generator[str, None, None]:
        """The run; yields each layer's name once it has run."""
        began = time.monotonic()
        target = target_from_string(self.target, timeout=self.timeout)
        try:
            smoke(target)
            self.hello = target.hello
            self.observer.started(target.hello)
            self.report = self._layer(
                "vectors",
                len(self.vectors),
                lambda tick: run_vectors(target, self.vectors, self.known, tick),
            )
            yield "vectors"
            if "stateful" in self.layers and not self._stopped():
                with _hypothesis_home():
                    self.stateful = self._layer(
                        "stateful",
                        self.examples,
                        lambda tick: run_stateful(
                            target,
                            self.examples,
                            self.seed,
                            self.emit,
                            self.budget,
                            target_spec=self.target,
                            progress=tick,
                        ),
                    )
                yield "stateful"
            if "atomicity" in self.layers and not self._stopped():
                self.atomicity = self._layer(
                    "atomicity", 0, lambda _: run_atomicity(self.target, self.checks, target)
                )
                yield "atomicity"
        finally:
            target.close()
            self.timings["total"] = time.monotonic() - began

    def _layer(self, name: str, total: int, body: Callable[[Callable[[int], None]], R]) -> R:
        self.observer.layer_started(name, total)
        started = time.monotonic()
        result = body(lambda done: self.observer.progress(name, done))
        self.timings[name] = time.monotonic() - started
        self.done.append(name)
        self.observer.layer_finished(LayerFinished(name, self.timings[name], result))
        return result

    def _stopped(self) -> bool:
        """--fail-fast, and a layer has failed."""
        failed = bool(self.report.bad) or (self.stateful is not None and not self.stateful.passed)
        return self.fail_fast and failed


def run(
    target: str | StoreFactory | Store | AsyncStore = DEFAULT_TARGET,
    *,
    layers: Collection[str] | None = None,
    seed: int | None = None,
    examples: int = DEFAULT_EXAMPLES,
    atomicity: int = DEFAULT_ATOMICITY,
    select: str | Sequence[str] = (),
    vectors: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    skip: str | os.PathLike[str] | None = None,
    emit: str | os.PathLike[str] | None = None,
    budget: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    fail_fast: bool = False,
    observer: Observer | None = None,
) -> RunResult:
    """Check ``target`` against ActionGate 1.0, as ``actiongate-conformance run`` does.

    - ``target``: ``memory://``, ``fakeredis://``, ``redis://...``, ``py:module:callable`` (the
      reference engine over your store) or ``cmd:PROGRAM ARGS`` (an adapter); or, instead of a
      ``py:`` string, the store factory itself (a callable taking no argument that returns a
      fresh store, called at every reset) or a store (emptied by ``clear_all`` at every reset),
      which reports name ``py:module:qualname`` (``py:module:Class instance``).
    - ``layers``: among ``LAYERS`` (``vectors`` always); by default all of them, but the
      stateful model and the atomicity checks only when the run takes the whole suite (no
      ``select``, no ``vectors``) and ``examples`` or ``atomicity`` is not 0.
    - ``seed``: the stateful model's (default: drawn, and in ``result.stateful.seed``).
    - ``examples``: stateful examples; ``atomicity``: about this many concurrent checks.
    - ``select``: glob patterns of vector ids or clauses; ``vectors``: vector files to run
      instead of the suite's own; ``skip``: a skip file of declared failures.
    - ``emit``: a directory for a stateful counterexample as a vector file (default: none).
    - ``budget``: seconds after which the stateful search stops; ``timeout``: seconds an
      adapter may take per request; ``fail_fast``: stop after the first failing layer.
    - ``observer``: told of each layer as it starts, goes and finishes (``Observer``).

    A failure of the target is a result, not an exception. Raises ValueError for a bad
    argument, VectorError for a vector or skip file that cannot be used, TargetError when the
    target cannot be run (it does not start, or fails the smoke check).
    """
    runner = Runner(
        target,
        layers=layers,
        seed=seed,
        examples=examples,
        atomicity=atomicity,
        select=select,
        vectors=vectors,
        skip=skip,
        emit=emit,
        budget=budget,
        timeout=timeout,
        fail_fast=fail_fast,
        observer=observer,
    )
    try:
        return runner.finish()
    finally:
        runner.close()


def _select_vectors(
    files: Sequence[Path] | None, patterns: Sequence[str], loaded: Sequence[VectorFile] | None
) -> list[Vector]:
    """The vectors of ``files`` (None: the suite's own), or of those ``loaded`` already, that
    ``patterns`` select."""
    vectors = select(load_all(files) if loaded is None else loaded, patterns)
    if not vectors:
        raise VectorError(f"no vector matches {', '.join(patterns)}")
    return vectors


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return float(value)


@contextlib.contextmanager
def _hypothesis_home() -> Iterator[None]:
    """Hypothesis' files in a temporary directory, so that a run leaves no ``.hypothesis/``.

    The stateful search keeps no example database (``database=None``), but hypothesis still
    caches what it reads from local source files under its home, ``./.hypothesis`` unless
    HYPOTHESIS_STORAGE_DIRECTORY says otherwise; that choice, when made, is kept.
    """
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    # Private, so read defensively: None is hypothesis' own default, resolved when next needed.
    previous = vars(hypothesis_configuration).get("__hypothesis_home_directory")
    with tempfile.TemporaryDirectory(prefix="actiongate-hypothesis-") as home:
        hypothesis_configuration.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            hypothesis_configuration.set_hypothesis_home_dir(previous)
