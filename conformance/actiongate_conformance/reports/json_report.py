"""The JSON report of a run (spec/report.schema.json)."""

from __future__ import annotations

import hashlib
from typing import Any

from .. import SPEC_VERSION, __version__
from ..layers.atomicity import AtomicityResult
from ..layers.stateful import StatefulResult
from ..layers.vectors import DECLARED, ERROR, FAIL, PASS, SKIP, STALE, Report
from .verdict import run_verdict

__all__ = ["json_report"]


def json_report(
    report: Report,
    target: str,
    hello: dict[str, Any],
    stateful: StatefulResult | None = None,
    atomicity: AtomicityResult | None = None,
) -> dict[str, Any]:
    """The report of spec/report.schema.json."""
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
        # The same function the terminal's last line and the exit code read (issue 14).
        "verdict": run_verdict(report, stateful, atomicity).value,
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
