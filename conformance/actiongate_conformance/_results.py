"""What a run gives back (``RunResult``) and tells as it goes (``Observer``, ``LayerFinished``).

Re-exported by ``api``, which runs the layers; see there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .layers.atomicity import AtomicityResult
from .layers.stateful import StatefulResult
from .layers.vectors import Outcome, Report
from .reports.json_report import json_report
from .reports.terminal import stateful_summary, terminal_report
from .reports.verdict import Selection, Verdict, run_verdict

__all__ = ["LayerFinished", "LayerResult", "Observer", "RunResult"]

LayerResult = Report | StatefulResult | AtomicityResult


@dataclass(frozen=True)
class LayerFinished:
    """A layer has run: its name (one of ``LAYERS``), its time and its result."""

    layer: str
    seconds: float
    result: LayerResult


class Observer:
    """Told how a run goes, as it goes. Each method does nothing unless overridden."""

    def started(self, hello: Mapping[str, Any]) -> None:
        """The target passed the smoke check; ``hello`` is its hello (implementation, ...)."""

    def layer_started(self, layer: str, total: int) -> None:
        """``layer`` begins; ``progress`` will count to ``total`` (0: it counts nothing)."""

    def progress(self, layer: str, done: int) -> None:
        """``done`` of the layer's ``total``: vectors run, or stateful examples started."""

    def layer_finished(self, event: LayerFinished) -> None:
        """A layer has run; its result is ``event.result``."""


@dataclass(frozen=True)
class RunResult:
    """A run's results: each layer's (``None``: not run), the selection and the one verdict.

    ``report`` holds the vectors' outcomes; ``stateful`` the model's; ``atomicity`` the
    concurrent checks' and the injected faults'. ``timings`` are seconds per layer run and
    ``total``. ``verdict`` is ``reports/verdict.py``'s: ``.value`` as in the JSON report,
    ``.conforming`` (nothing failed), ``.line`` (the command's last line).
    """

    target: str
    hello: Mapping[str, Any]
    report: Report
    stateful: StatefulResult | None
    atomicity: AtomicityResult | None
    selection: Selection
    timings: Mapping[str, float]
    verdict: Verdict = field(init=False)

    def __post_init__(self) -> None:
        verdict = run_verdict(self.report, self.stateful, self.atomicity, self.selection)
        object.__setattr__(self, "verdict", verdict)

    @property
    def conforming(self) -> bool:
        """Nothing failed (the command's exit 0); ``verdict.value`` says how much was checked."""
        return self.verdict.conforming

    def outcome(self, vector_id: str) -> Outcome | None:
        """How the vector ``vector_id`` went; None if this run did not run it."""
        return next((o for o in self.report.outcomes if o.vector.id == vector_id), None)

    def json(self) -> dict[str, Any]:
        """The JSON report (spec/report.schema.json), as ``run --json`` writes it."""
        return json_report(
            self.report,
            self.target,
            dict(self.hello),
            self.stateful,
            self.atomicity,
            selection=self.selection,
            timings=self.timings,
        )

    def text(self) -> str:
        """What the command prints, without the times: each layer's section, the verdict last."""
        implementation = self.hello.get("implementation", {})
        parts = [terminal_report(self.report, self.target, implementation)]
        if self.stateful is not None:
            parts.append(stateful_summary(self.stateful))
        if self.atomicity is not None:
            parts.append(self.atomicity.summary())
        return "\n\n".join([*parts, self.verdict.line])
