"""A counterexample as a vector file that can be committed and rerun."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ...data import clause_ids, schema
from .strategies import FIELD_CLAUSES
from .trace import Counterexample

__all__ = ["vector_document"]


def vector_document(found: Counterexample, chosen: int, target_spec: str) -> dict[str, Any]:
    """A vector file (spec/vector.schema.json) of a counterexample: its steps with the oracle's
    expectations, an id from a hash of them, the clauses they touched."""
    trace = found.trace
    steps = [dict(step) for step in trace.steps]
    problems = "; ".join(problem.splitlines()[0] for problem in found.problems)
    steps[-1]["note"] = f"the failing step: {problems}"[:2000]
    # Every decision clause is compared at every check; cite those whose fields were wrong.
    cited = {c for c in trace.clauses if not c.startswith("DEC-")}
    cited |= {FIELD_CLAUSES[name] for name in found.fields if name in FIELD_CLAUSES}
    canonical = json.dumps(trace.steps, sort_keys=True, ensure_ascii=True)
    vector_id = f"stateful-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
    gates = [step["gate"] for step in steps if isinstance(step.get("gate"), dict)]
    fields = [value for gate in gates for value in gate.values() if isinstance(value, str)]
    max_calls = [step["policy"].get("max_calls") for step in steps if "policy" in step]
    derived = {
        "many-gates": len({json.dumps(gate, sort_keys=True) for gate in gates}) > 3,
        "separator": any(mark in value for value in fields for mark in ":@/|{}"),
        "unicode": any(not value.isascii() for value in fields),
        "max-calls-edge": any(type(n) is int and n <= 1 for n in max_calls),
    }
    found_flags = trace.flags | {flag for flag, holds in derived.items() if holds}
    known_flags = schema("vector")["$defs"]["flag"]["enum"]
    flags = [flag for flag in known_flags if flag in found_flags]
    return {
        "schema": "urn:actiongate:schema:vector:1.0",
        "spec_version": "1.0",
        "topic": "stateful",
        "description": "A counterexample found by the stateful model and shrunk by hypothesis.",
        "vectors": [
            {
                "id": vector_id,
                "clauses": [c for c in clause_ids() if c in cited] or ["DEC-1"],
                "flags": flags or ["decision-fields"],
                "description": (
                    f"Found by the stateful model (seed {chosen}) against {target_spec}; at the "
                    f"last step: {problems[:1000]}. The expected values are the "
                    "oracle's (SEMANTICS.md), not any implementation's."
                ),
                "steps": steps,
            }
        ],
    }
