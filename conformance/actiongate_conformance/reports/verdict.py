"""The one verdict of a run across its four layers: vectors, stateful, atomicity, faults.

``run_verdict`` is the only place the verdict is decided. The terminal's last line, the JSON
report's ``verdict`` and the exit code are all read from the ``Verdict`` it returns, so they
cannot disagree (issue 14: a run whose concurrency layer alone failed printed CONFORMING and
exited 1).

A layer is ``passed``, ``failed``, ``not run`` (the options skipped it: ``--examples 0``,
``--atomicity 0``, ``--select``, ``--vectors``, ``--fail-fast`` after a failure) or ``not
checked`` (it ran, but could not check this target: a ``cmd:`` port without the ``burst`` or
the ``store_faults`` capability).

The verdict, in order (issue 18: a partial run must never read as conforming):

- ``not_conforming``: a layer failed, whatever else ran (a failure found is one to fix);
- ``partial``: nothing failed, but a layer was not run or not checked, or the run chose its
  vectors (``Selection``). It is no conformance verdict: its line says ``PARTIAL (not a
  conformance verdict)`` and what was left out. Declared failures do not change it (the tally
  counts them: ``vectors 150/170 passed, 20 declared``), so ``conforming_except_declared`` is
  always a run of everything;
- ``conforming_except_declared``: everything ran, and every failure is declared in a skip file;
- ``conforming``: everything ran and passed.

A partial run with no failure exits 0, like a conforming one: the exit code says whether
anything failed, the verdict how much was checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layers.atomicity import AtomicityResult
from ..layers.stateful import StatefulResult
from ..layers.vectors import DECLARED, PASS, SKIP, Report

__all__ = [
    "CONFORMING",
    "CONFORMING_EXCEPT_DECLARED",
    "NOT_CONFORMING",
    "PARTIAL",
    "Layer",
    "Selection",
    "Verdict",
    "run_verdict",
]

# The values of spec/report.schema.json's ``verdict``.
CONFORMING = "conforming"
CONFORMING_EXCEPT_DECLARED = "conforming_except_declared"
NOT_CONFORMING = "not_conforming"
PARTIAL = "partial"

PASSED, FAILED, NOT_RUN, NOT_CHECKED = "passed", "failed", "not run", "not checked"
STATES = (PASSED, FAILED, NOT_RUN, NOT_CHECKED)
PARTIAL_HEAD = "PARTIAL (not a conformance verdict)"


@dataclass(frozen=True)
class Selection:
    """The vectors a run chose: its ``--select`` patterns and ``--vectors`` files, as given.
    Both empty: the suite's own vectors, every one of them."""

    select: tuple[str, ...] = ()
    vectors: tuple[str, ...] = ()

    @property
    def chosen(self) -> bool:
        """The run chose its vectors, so it is partial (the later layers do not run either)."""
        return bool(self.select or self.vectors)

    @property
    def text(self) -> str:
        """``only vectors of found.json matching --select RET-1``; empty for the whole suite."""
        if not self.chosen:
            return ""
        files = f" of {', '.join(self.vectors)}" if self.vectors else ""
        patterns = f" matching --select {' '.join(self.select)}" if self.select else ""
        return f"only vectors{files}{patterns}"

    def to_dict(self) -> dict[str, list[str]]:
        return {"select": list(self.select), "vectors": list(self.vectors)}


@dataclass(frozen=True)
class Layer:
    """One layer's state and, for people, its tally when it passed (``159/159 passed``), or
    its ``reason``: what failed, or why it was not run or not checked."""

    name: str
    state: str
    tally: str = ""
    reason: str = ""

    @property
    def text(self) -> str:
        return f"{self.name} {self.tally}"

    def to_dict(self) -> dict[str, str]:
        """The JSON report's entry of this layer (``layers`` in spec/report.schema.json)."""
        return {"state": self.state, "detail": self.tally or self.reason}


@dataclass(frozen=True)
class Verdict:
    """The run's verdict: ``value`` is the JSON report's, ``conforming`` the exit code's."""

    value: str
    layers: tuple[Layer, ...]
    declared: int = 0
    selection: Selection = Selection()

    @property
    def conforming(self) -> bool:
        """Nothing failed (exit 0): true of a partial run too, whose verdict says what ran."""
        return self.value != NOT_CONFORMING

    def named(self, state: str) -> list[str]:
        """The layers in ``state``, in the order they run."""
        return [layer.name for layer in self.layers if layer.state == state]

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    @property
    def left_out(self) -> str:
        """What the run did not check: ``stateful, atomicity, faults not run``."""
        return "; ".join(
            f"{_and(self.named(state), ', ')} {state}"
            for state in (NOT_RUN, NOT_CHECKED)
            if self.named(state)
        )

    @property
    def line(self) -> str:
        """The run's last line: the verdict, the layers that failed, the tallies of those that
        passed, and what was left out."""
        tallies = ", ".join(layer.text for layer in self.layers if layer.state == PASSED)
        if not self.conforming:
            parts = (tallies, self.left_out, self.selection.text)
            others = "; ".join(part for part in parts if part)
            failed = f"{_and(self.named(FAILED))} failed"
            return f"NOT CONFORMING: {failed}" + (f" ({others})" if others else "")
        if self.value == PARTIAL:
            parts = (self.selection.text, self.left_out, tallies)
            return f"{PARTIAL_HEAD}: " + "; ".join(part for part in parts if part)
        head = "CONFORMING"
        if self.value == CONFORMING_EXCEPT_DECLARED:
            head += f" EXCEPT {self.declared} DECLARED"
        return f"{head}: {tallies}"


def run_verdict(
    report: Report,
    stateful: StatefulResult | None,
    atomicity: AtomicityResult | None,
    selection: Selection | None = None,
) -> Verdict:
    """The verdict of a run from its layers' results; ``None``: the layer was not run.

    ``selection`` is the vectors the run chose; ``None`` is the whole suite.
    """
    selection = selection or Selection()
    layers = (
        _vectors(report),
        _stateful(stateful, selection),
        *_atomicity(atomicity, selection),
    )
    declared = report.count(DECLARED)
    if any(layer.state == FAILED for layer in layers):
        value = NOT_CONFORMING
    elif selection.chosen or any(layer.state in (NOT_RUN, NOT_CHECKED) for layer in layers):
        value = PARTIAL
    elif declared:
        value = CONFORMING_EXCEPT_DECLARED
    else:
        value = CONFORMING
    return Verdict(value, layers, declared, selection)


def _vectors(report: Report) -> Layer:
    if report.bad:
        return Layer(
            "vectors", FAILED, reason=f"{len(report.bad):,}/{len(report.outcomes):,} failed"
        )
    tally = f"{report.count(PASS):,}/{len(report.outcomes):,} passed"
    for result, label in ((DECLARED, "declared"), (SKIP, "skipped")):
        if report.count(result):
            tally += f", {report.count(result):,} {label}"
    return Layer("vectors", PASSED, tally)


def _stateful(result: StatefulResult | None, selection: Selection) -> Layer:
    if result is None:
        return Layer("stateful", NOT_RUN, reason=_left_out("--examples 0", selection))
    if not result.passed:
        return Layer("stateful", FAILED, reason=f"a counterexample (seed {result.seed})")
    # The count is the result's own: hypothesis may run a few more examples than asked.
    budget = " (stopped by --budget)" if result.out_of_time else ""
    return Layer("stateful", PASSED, f"{result.examples:,} examples passed{budget}")


def _atomicity(result: AtomicityResult | None, selection: Selection) -> tuple[Layer, Layer]:
    """The concurrent checks and the injected faults: one result, two layers."""
    if result is None:
        reason = _left_out("--atomicity 0", selection)
        return Layer("atomicity", NOT_RUN, reason=reason), Layer("faults", NOT_RUN, reason=reason)
    # A failed layer's line is the summary printed above the verdict: it says what kind of
    # failure it was (a race, or a target already wrong one check at a time).
    why = "; ".join(result.notes) or "the target cannot be checked for it"
    atomicity = {
        None: Layer("atomicity", NOT_CHECKED, reason=why),
        True: Layer("atomicity", PASSED, f"{result.checks:,} checks linearizable"),
        False: Layer(
            "atomicity", FAILED, reason=_RACE.get(result.failure or "", "not linearizable")
        ),
    }[result.linearizable]
    faults = {
        None: Layer("faults", NOT_CHECKED, reason=why),
        True: Layer(
            "faults", PASSED, f"{result.faults_injected:,}/{result.faults_injected:,} handled"
        ),
        False: Layer("faults", FAILED, reason=_mishandled(result)),
    }[result.faults_ok]
    return atomicity, faults


# What kind of failure a failed concurrency layer had (AtomicityResult.failure).
_RACE = {
    "sequential": "wrong one check at a time (a logic bug, not a race)",
    "race": "not linearizable (a race)",
}


def _mishandled(result: AtomicityResult) -> str:
    if result.faults_failure == "sequential":
        return "wrong with no fault injected (a logic bug)"
    wrong = sum(not (f.get("decision_ok") and f.get("nothing_recorded")) for f in result.faults)
    return f"{wrong or 'some'} of {result.faults_injected} faults mishandled"


def _left_out(option: str, selection: Selection) -> str:
    """Why a layer did not run: the run chose its vectors, or ``option`` left it out."""
    if selection.chosen:
        return f"it follows the whole suite, and this run ran {selection.text}"
    return f"the run left it out ({option}, or --fail-fast after a failure)"


def _and(names: list[str], last: str = " and ") -> str:
    """``a``, ``a and b``, ``a, b and c`` (``last`` joins the final pair)."""
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + last + names[-1]
