"""The stateful model's oracle: it agrees with every vector and owes nothing to the reference."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from actiongate_conformance.checkers import oracle
from actiongate_conformance.checkers.oracle import Oracle
from actiongate_conformance.data.vectors import (
    ExpectedDecision,
    ExpectedError,
    ExpectedStatus,
    Vector,
    load_all,
)
from actiongate_conformance.layers.vectors import same

VECTORS = [vector for vector_file in load_all() for vector in vector_file.vectors]
DECISION_FIELDS = ("status", "reason", "calls_in_window", "time_since_last")

# Vectors with a step whose result RET-4 leaves open: a store may already have dropped an event
# the step retains. The vector's expectation must then be the answer with nothing dropped, and
# the vector should be fixed; an entry that no longer applies fails below, so the list stays true.
HOUSEKEEPING_DEPENDENT: dict[str, str] = {}


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v.file} > {v.id}" for v in VECTORS])
def test_oracle_agrees_with_vector(vector: Vector) -> None:
    model = Oracle()
    open_steps = []
    for step in vector.steps:
        where = f"{vector.id} > step {step.index}"
        if step.op in ("clear", "clear_all"):
            verdict = model.clear(step.gate) if step.op == "clear" else model.clear_all()
            wanted: dict[str, object] = {"ok": True}  # a clear without expect must answer ok
            if step.expect is not None:
                assert isinstance(step.expect, ExpectedError), where
                wanted = {"error": step.expect.error, "field": step.expect.field}
            assert verdict.expect == wanted, where
        elif step.op in ("store_fail", "store_recover"):
            model.failing = step.op == "store_fail"
        else:
            verdict = model.check(step.gate, step.policy, step.now)
            if verdict.open:
                open_steps.append(f"{where}: RET-4 allows more than {verdict.expect}")
            expect = step.expect
            if isinstance(expect, ExpectedError):
                wanted = {"error": expect.error, "field": expect.field}
                assert verdict.expect == wanted, where
            elif isinstance(expect, ExpectedStatus):  # a bulk's check
                wanted = {"status": expect.status, "reason": expect.reason}
                assert {name: verdict.expect[name] for name in wanted} == wanted, where
            else:
                assert isinstance(expect, ExpectedDecision)
                for name in DECISION_FIELDS:
                    assert same(getattr(expect, name), verdict.expect[name]), (
                        f"{where}: {name}: the vector says {getattr(expect, name)!r}, "
                        f"the oracle {verdict.expect[name]!r}"
                    )
    # A vector must hold for every conforming store, so none may rest on housekeeping.
    assert bool(open_steps) == (vector.id in HOUSEKEEPING_DEPENDENT), open_steps or (
        f"{vector.id} no longer depends on housekeeping: remove it from HOUSEKEEPING_DEPENDENT"
    )


def test_oracle_imports_only_the_standard_library() -> None:
    # Not even a module of its own package: any of them may import the reference.
    tree = ast.parse(Path(oracle.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the oracle makes no relative import"
            imported.add(node.module or "")
    assert imported <= {"__future__", "bisect", "math", "collections.abc", "dataclasses", "typing"}


def test_oracle_runs_where_the_reference_cannot_be_imported() -> None:
    code = (
        "import sys; sys.modules['actiongate'] = None\n"  # `import actiongate` now fails
        "from actiongate_conformance.checkers.oracle import Oracle\n"
        "gate = {'namespace': 'a', 'action': 'b', 'principal': ''}\n"
        "policy = {'max_calls': 1, 'window': 1.0, 'cooldown': 0.0, 'mode': 'HARD',\n"
        "          'on_store_error': 'FAIL_CLOSED'}\n"
        "print(Oracle().check(gate, policy, 0.5).expect['status'])\n"
        "assert not [m for m in sys.modules if m.startswith('actiongate.')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ALLOW"


def test_droppable_events_give_either_answer() -> None:
    # RET-4: after T' = 5, the event at 0 of a gate whose window is 1 may be gone; a check
    # with a window of 10 then retains it if it is still there.
    model = Oracle()
    gate, other = (
        {"namespace": "n", "action": name, "principal": ""} for name in ("gate", "other")
    )
    modes = {"mode": "HARD", "on_store_error": "FAIL_CLOSED"}
    narrow = {"max_calls": 2, "window": 1.0, "cooldown": 0.0, **modes}
    wide = {"max_calls": 2, "window": 10.0, "cooldown": 0.0, **modes}
    assert model.check(gate, narrow, 0.0).expect["calls_in_window"] == 1
    assert model.check(other, narrow, 5.0).expect["calls_in_window"] == 1
    assert model.check(gate, wide, 6.0).expect["calls_in_window"] == 2  # nothing dropped first
    model = Oracle()
    model.check(gate, narrow, 0.0)
    model.check(other, narrow, 5.0)
    verdict = model.check(
        gate,
        wide,
        6.0,
        choose=lambda answer: answer["time_since_last"] is None,
        observed={"calls_in_window": 1},
    )
    assert verdict.open
    assert verdict.expect["calls_in_window"] == 1  # the branch the implementation chose
    assert "RET-4" in verdict.clauses
    # Both branches now agree: the event at 6 is not droppable, the one at 0 is pruned.
    assert not model.check(gate, wide, 20.0).open
