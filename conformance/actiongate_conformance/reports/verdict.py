"""The one verdict of a run across its four layers: vectors, stateful, atomicity, faults.

``run_verdict`` is the only place the verdict is decided. The terminal's last line, the JSON
report's ``verdict`` and the exit code are all read from the ``Verdict`` it returns, so they
cannot disagree (issue 14: a run whose concurrency layer alone failed printed CONFORMING and
exited 1).

A layer is ``passed``, ``failed``, ``not run`` (the options skipped it: ``--examples 0``,
``--atomicity 0``, ``--select``, ``--vectors``) or ``not checked`` (it ran, but could not check
this target: a ``cmd:`` port without the ``burst`` or the ``store_faults`` capability). A
run with no failure and a layer not run or not checked keeps its value and exit code, but its
line says PARTIAL RUN, so it never reads as a full pass.
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
    "Layer",
    "Verdict",
    "run_verdict",
]

# The values of spec/report.schema.json's ``verdict``.
CONFORMING = "conforming"
CONFORMING_EXCEPT_DECLARED = "conforming_except_declared"
NOT_CONFORMING = "not_conforming"

PASSED, FAILED, NOT_RUN, NOT_CHECKED = "passed", "failed", "not run", "not checked"


@dataclass(frozen=True)
class Layer:
    """One layer's state and, when it passed, its tally for people (``159/159 passed``)."""

    name: str
    state: str
    tally: str = ""

    @property
    def text(self) -> str:
        return f"{self.name} {self.tally}"


@dataclass(frozen=True)
class Verdict:
    """The run's verdict: ``value`` is the JSON report's, ``conforming`` the exit code's."""

    value: str
    layers: tuple[Layer, ...]
    declared: int = 0

    @property
    def conforming(self) -> bool:
        return self.value != NOT_CONFORMING

    def named(self, state: str) -> list[str]:
        """The layers in ``state``, in the order they run."""
        return [layer.name for layer in self.layers if layer.state == state]

    @property
    def line(self) -> str:
        """The run's last line: the verdict, the layers that failed, the tallies of those that
        passed, and those not run or not checked."""
        tallies = ", ".join(layer.text for layer in self.layers if layer.state == PASSED)
        missing = "; ".join(
            f"{_and(self.named(state), ', ')} {state}"
            for state in (NOT_RUN, NOT_CHECKED)
            if self.named(state)
        )
        if not self.conforming:
            others = "; ".join(part for part in (tallies, missing) if part)
            failed = f"{_and(self.named(FAILED))} failed"
            return f"NOT CONFORMING: {failed}" + (f" ({others})" if others else "")
        head = "CONFORMING"
        if self.value == CONFORMING_EXCEPT_DECLARED:
            head += f" EXCEPT {self.declared} DECLARED"
        if missing:
            head += f" (PARTIAL RUN: {missing})"
        return f"{head}: {tallies}"


def run_verdict(
    report: Report, stateful: StatefulResult | None, atomicity: AtomicityResult | None
) -> Verdict:
    """The verdict of a run from its layers' results; ``None``: the layer was not run."""
    layers = (
        _vectors(report),
        _stateful(stateful),
        *_atomicity(atomicity),
    )
    if any(layer.state == FAILED for layer in layers):
        value = NOT_CONFORMING
    elif report.count(DECLARED):
        value = CONFORMING_EXCEPT_DECLARED
    else:
        value = CONFORMING
    return Verdict(value, layers, report.count(DECLARED))


def _vectors(report: Report) -> Layer:
    if report.bad:
        return Layer("vectors", FAILED)
    tally = f"{report.count(PASS):,}/{len(report.outcomes):,} passed"
    for result, label in ((DECLARED, "declared"), (SKIP, "skipped")):
        if report.count(result):
            tally += f", {report.count(result):,} {label}"
    return Layer("vectors", PASSED, tally)


def _stateful(result: StatefulResult | None) -> Layer:
    if result is None:
        return Layer("stateful", NOT_RUN)
    if not result.passed:
        return Layer("stateful", FAILED)
    # The count is the result's own: hypothesis may run a few more examples than asked.
    budget = " (stopped by --budget)" if result.out_of_time else ""
    return Layer("stateful", PASSED, f"{result.examples:,} examples passed{budget}")


def _atomicity(result: AtomicityResult | None) -> tuple[Layer, Layer]:
    """The concurrent checks and the injected faults: one result, two layers."""
    if result is None:
        return Layer("atomicity", NOT_RUN), Layer("faults", NOT_RUN)
    # A failed layer's line is the summary printed above the verdict: it says what kind of
    # failure it was (a race, or a target already wrong one check at a time).
    atomicity = {
        None: Layer("atomicity", NOT_CHECKED),
        True: Layer("atomicity", PASSED, f"{result.checks:,} checks linearizable"),
        False: Layer("atomicity", FAILED),
    }[result.linearizable]
    faults = {
        None: Layer("faults", NOT_CHECKED),
        True: Layer(
            "faults", PASSED, f"{result.faults_injected:,}/{result.faults_injected:,} handled"
        ),
        False: Layer("faults", FAILED),
    }[result.faults_ok]
    return atomicity, faults


def _and(names: list[str], last: str = " and ") -> str:
    """``a``, ``a and b``, ``a, b and c`` (``last`` joins the final pair)."""
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + last + names[-1]
