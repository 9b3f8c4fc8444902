"""The JSON report of a run (spec/report.schema.json)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .. import SPEC_VERSION, __version__
from ..layers.atomicity import AtomicityResult
from ..layers.stateful import StatefulResult
from ..layers.vectors import DECLARED, ERROR, FAIL, PASS, SKIP, STALE, Report
from .verdict import Selection, run_verdict

__all__ = ["json_report", "timestamp"]


def json_report(
    report: Report,
    target: str,
    hello: dict[str, Any],
    stateful: StatefulResult | None = None,
    atomicity: AtomicityResult | None = None,
    *,
    selection: Selection | None = None,
    timings: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The report of spec/report.schema.json.

    ``selection``: the vectors the run chose (``None``: the suite's own, all of them), written
    when given. ``timings``: seconds per layer run (``vectors``, ``stateful``, ``atomicity``,
    which holds the injected faults too) and ``total``, the run's wall time (without it, the
    layers' sum), written when given.
    """
    verdict = run_verdict(report, stateful, atomicity, selection)
    digest = hashlib.sha256(
        "\n".join(outcome.vector.digest for outcome in report.outcomes).encode()
    ).hexdigest()
    return {
        "schema": "urn:actiongate:schema:report:1",
        "suite": {"name": "actiongate-conformance", "version": __version__},
        "spec_version": SPEC_VERSION,
        "target": target,
        "implementation": hello.get("implementation", {}),
        "capabilities": sorted(hello.get("capabilities", [])),
        "vectors_digest": f"sha256:{digest}",
        "timestamp": timestamp(),
        **({} if selection is None else {"selection": selection.to_dict()}),
        **({} if timings is None else {"timings": _timings(timings)}),
        # The same function the terminal's last line and the exit code read (issue 14).
        "verdict": verdict.value,
        "layers": {layer.name: layer.to_dict() for layer in verdict.layers},
        "stateful": None
        if stateful is None
        else {
            "passed": stateful.passed,
            "examples": stateful.examples,
            "seed": stateful.seed,
            "vector": None if stateful.vector is None else str(stateful.vector),
            "rerun": stateful.rerun,
        },
        "atomicity": None if atomicity is None else atomicity.to_dict(),
        "counts": {
            result: report.count(result) for result in (PASS, FAIL, ERROR, SKIP, DECLARED, STALE)
        },
        "clauses": [
            {"clause": v.clause, "result": v.result, "counts": dict(v.counts)}
            for v in report.clauses()
        ],
        "vectors": [
            {
                "id": o.vector.id,
                "file": o.vector.file,
                "clauses": list(o.vector.clauses),
                "result": o.result,
                "step": None if o.step is None else o.step.in_file,
                "mismatches": [
                    {"field": m.field, "expected": m.expected, "actual": m.actual}
                    for m in o.mismatches
                ],
                "reason": o.reason,
            }
            for o in report.outcomes
        ],
    }


def timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) in UTC, ISO 8601 to the second: ``2026-01-31T12:00:00Z``."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timings(timings: Mapping[str, float]) -> dict[str, float]:
    seconds = {name: round(value, 3) for name, value in timings.items() if name != "total"}
    seconds["total"] = round(timings.get("total", sum(timings.values())), 3)
    return seconds
