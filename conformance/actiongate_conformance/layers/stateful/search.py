"""A stateful run: hypothesis searches with the machine, and a failure is explained."""

from __future__ import annotations

import json
import random
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.reporting import with_reporter
from hypothesis.stateful import run_state_machine_as_test

from ...data import clause_ids
from ...data.vectors import _vector
from ...targets import Target
from ..timeline import timeline
from .control import Found, OutOfTime, Run, Unrunnable
from .emit import vector_document
from .machine import Model
from .minimize import minimized
from .trace import Counterexample

__all__ = ["StatefulResult", "run_stateful"]


@dataclass(frozen=True)
class StatefulResult:
    """How a stateful run went.

    ``examples`` is the number of examples run, or on a failure the number it took to find it
    (shrinking replays not counted). ``vector`` is the counterexample written to ``emit_dir``;
    ``rerun`` the one command that reruns it (or the run); ``failure`` explains, for people.
    """

    passed: bool
    examples: int
    seed: int
    vector: Path | None = None
    rerun: str = ""
    failure: str = ""
    out_of_time: bool = False


def run_stateful(
    target: Target,
    examples: int,
    seed: int | None = None,
    emit_dir: Path | None = None,
    deadline_seconds: float | None = None,
    *,
    target_spec: str = "TARGET",
    steps: int = 30,
    progress: Callable[[int], None] | None = None,
    batched: bool = True,
) -> StatefulResult:
    """Run ``examples`` stateful examples of up to ``steps`` steps against ``target``.

    The same ``seed`` (and target) gives the same run; without one, a seed is drawn and
    reported. ``deadline_seconds`` stops the search (not the shrinking of a failure found) once
    spent. On a failure the shrunk run is written to ``emit_dir`` as a vector file, if given
    and if no step of it rests on housekeeping. ``target_spec`` is the target's string, for the
    rerun command. ``progress``, if given, is called as each example starts with the number
    started so far (at most ``examples``; shrinking replays say ``examples``). ``batched``:
    send each example's steps together until a failure (False: a step at a time throughout;
    the same result, slower). Raises TargetError if the target cannot be run.
    """
    chosen = random.SystemRandom().randrange(2**32) if seed is None else seed
    options = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=False,  # the seed decides instead, so --seed can vary the search
        database=None,
        print_blob=False,
        report_multiple_bugs=False,  # one failure site; stop searching once it is found
        verbosity=Verbosity.quiet,
        phases=(Phase.generate, Phase.shrink),
        # A slow cmd: target or a long run is no fault of the model.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    search = _search_command(target_spec, examples, chosen)
    shown = 0

    def started(example: int) -> None:
        nonlocal shown
        if progress is not None and example > shown:  # not again as a search is repeated
            shown = example
            progress(min(example, examples))

    # First each example's steps in one batch, the fastest, until a failure. Hypothesis
    # shrinks by where a failure is raised, so then the search is repeated with the same seed
    # (the same examples) a step at a time, the examples before that failure drawn only.
    faults = "store_faults" in target.capabilities
    run = Run(target, faults, deadline_seconds, batched=batched)
    error = _search(run, chosen, options, started)
    if run.found_in is not None:
        before = [(n, found) for n, found in run.housekeeping if n < run.found_in]
        run = Run(target, faults, deadline_seconds, run.started, known=run.found_in)
        run.housekeeping = before  # of the examples it only draws
        error = _search(run, chosen, options, started)
    if error is not None:
        found = sorted(_counterexamples(error), key=lambda c: len(c.trace.steps))
        if not found:
            raise error
        after = run.found_after or run.examples
        shortest = minimized(target, run.faults, found[0])
        return _failed(shortest, chosen, emit_dir, target_spec, after=after, search=search)
    if run.housekeeping:
        after, shortest = min(run.housekeeping, key=lambda pair: len(pair[1].trace.steps))
        return _failed(shortest, chosen, None, target_spec, after=after, search=search)
    # Hypothesis also starts examples it then abandons (too large to draw) and does not count
    # them towards max_examples: a run it lets finish ran exactly the number asked for.
    ran = run.examples if run.out_of_time else min(run.examples, examples)
    return StatefulResult(True, ran, chosen, rerun=search, out_of_time=run.out_of_time)


def _search(
    run: Run, chosen: int, options: settings, started: Callable[[int], None]
) -> BaseException | None:
    """Hypothesis' search with ``run``: what it raised at the end, if anything but a Stop.
    Raises TargetError if the target cannot be run."""

    def model() -> Model:
        machine = Model(run)
        started(run.examples)
        return machine

    # @seed on the factory is how hypothesis seeds a state machine.
    factory = hypothesis_seed(chosen)(model)
    try:
        with with_reporter(lambda _: None):
            # Typed differently across hypothesis releases (a factory is documented to work).
            run_machine: Any = run_state_machine_as_test
            run_machine(factory, settings=options)
    except (OutOfTime, Found):
        return None
    except Unrunnable as stop:
        raise stop.error from None
    except BaseException as error:  # a Counterexample, or an exception group holding some
        return error
    return None


def _ordered(clauses: set[str]) -> list[str]:
    """As SEMANTICS.md orders them."""
    return [clause for clause in clause_ids() if clause in clauses]


def _search_command(target_spec: str, examples: int, chosen: int) -> str:
    return (
        f"actiongate-conformance run --target {shlex.quote(target_spec)} "
        f"--examples {examples} --seed {chosen}"
    )


def _counterexamples(error: BaseException) -> Iterator[Counterexample]:
    if isinstance(error, Counterexample):
        yield error
    for inner in getattr(error, "exceptions", ()):  # an ExceptionGroup, a FlakyFailure
        yield from _counterexamples(inner)


def _failed(
    found: Counterexample,
    chosen: int,
    emit_dir: Path | None,
    target_spec: str,
    *,
    after: int,
    search: str,
) -> StatefulResult:
    trace = found.trace
    document = vector_document(found, chosen, target_spec)
    raw = document["vectors"][0]
    path = None
    if emit_dir is not None and not trace.open_steps:
        emit_dir.mkdir(parents=True, exist_ok=True)
        path = emit_dir / f"{raw['id']}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=True) + "\n", "utf-8")
    vector = _vector(path or Path("<stateful>"), 0, raw)
    lines = [
        f"The stateful model found a disagreement after {after} examples (seed {chosen}), "
        + ("shrunk to" if not trace.open_steps else "in a run of")
        + (" 1 step:" if len(trace.steps) == 1 else f" {len(trace.steps)} steps:"),
        *("  " + line for line in timeline(vector, None, tuple(trace.responses))),
        f"step {len(trace.steps) - 1} breaks {', '.join(_ordered(found.clauses)) or 'DEC-1'}:",
        *("  " + line for line in "\n".join(found.problems).splitlines()),
    ]
    rerun = search
    if trace.open_steps:
        lines.append(
            f"No vector: steps {', '.join(map(str, trace.open_steps))} retain events that RET-4 "
            "lets a store drop by housekeeping, so SEMANTICS.md does not fix their results. "
            "Rerun the search:"
        )
    elif path is None:
        lines.append("Rerun the search (add --emit DIR to write the counterexample as a vector):")
    else:
        lines.append(f"Counterexample vector: {path}; rerun it:")
        rerun = (
            f"actiongate-conformance run --target {shlex.quote(target_spec)} "
            f"--vectors {shlex.quote(str(path))}"
        )
    lines.append(f"  {rerun}")
    return StatefulResult(False, after, chosen, path, rerun, "\n".join(lines))
