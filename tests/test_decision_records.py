"""Decision.to_dict writes exactly the record of spec/decision.schema.json, and reads back."""

from __future__ import annotations

from typing import Any

import pytest
from actiongate import (
    BlockReason,
    Decision,
    Engine,
    Gate,
    MemoryStore,
    Mode,
    Policy,
    Status,
    StoreErrorMode,
)
from actiongate_conformance import data as _data

from .conftest import ManualClock


def _errors(record: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in _data.validator("decision").iter_errors(record)]


class BrokenStore:
    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        raise ConnectionError("down")

    def clear(self, gate: Gate) -> None: ...

    def clear_all(self) -> None: ...


def _decisions(clock: ManualClock) -> list[Decision]:
    engine = Engine(MemoryStore(), clock=clock)
    odd = Gate("", "a:b@{c}", "\u00e9\u0000")
    policy = Policy(max_calls=1, window=None, cooldown=5, mode=Mode.SOFT)
    made = [engine.check(odd, policy)]
    clock.now = 2.0
    made.append(engine.check(odd, policy))  # cooldown
    clock.now = 10.0
    made.append(engine.check(odd, policy))  # rate limit
    clock.now = -3.0
    made.append(engine.check(Gate("n", "a"), Policy(max_calls=2, window=1e300)))
    made.append(engine.check(Gate("n", "a"), Policy(max_calls=3, window=1e300)))  # age 0
    broken = Engine(BrokenStore(), clock=clock)
    made.append(broken.check(odd, Policy(on_store_error=StoreErrorMode.FAIL_OPEN)))
    made.append(broken.check(odd, Policy()))
    return made


def test_every_kind_of_decision_matches_the_schema(clock: ManualClock) -> None:
    for decision in _decisions(clock):
        assert _errors(decision.to_dict()) == [], decision


def test_records_read_back_equal(clock: ManualClock) -> None:
    for decision in _decisions(clock):
        assert Decision.from_dict(decision.to_dict()) == decision


def test_a_record_with_another_schema_version_is_refused(clock: ManualClock) -> None:
    record = _decisions(clock)[0].to_dict()
    record["schema_version"] = "0.2.2"
    with pytest.raises(ValueError, match="schema_version"):
        Decision.from_dict(record)


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema_version": "1.0",
        "status": "ALLOW",
        "reason": None,
        "message": None,
        "gate": {"namespace": "n", "action": "a", "principal": "p"},
        "policy": {
            "max_calls": 3,
            "window": 60,
            "cooldown": 0,
            "mode": "HARD",
            "on_store_error": "FAIL_CLOSED",
        },
        "calls_in_window": 1,
        "time_since_last": None,
        "now": 0,
    }
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({}, True),
        ({"time_since_last": -6.0, "calls_in_window": 3}, True),  # CLK-1
        ({"gate": {"namespace": "", "action": "", "principal": ""}}, True),  # ID-1
        ({"x_trace_id": "abc"}, True),
        ({"status": "ALLOW", "reason": "RATE_LIMIT"}, False),  # DEC-1
        ({"status": "BLOCK", "reason": None}, False),  # DEC-1
        ({"status": "ALLOW", "reason": None, "calls_in_window": 0}, False),  # DEC-2
        ({"status": "BLOCK", "reason": "COOLDOWN", "time_since_last": None}, False),  # CD-1
        ({"status": "BLOCK", "reason": "STORE_ERROR", "calls_in_window": 2}, False),  # ERR-1
        ({"status": "ALLOW", "reason": "STORE_ERROR", "calls_in_window": 0}, True),  # ERR-1
        ({"gate": "n:a@p"}, False),  # the ambiguous upstream string
        ({"trace": "abc"}, False),
        ({"policy": {**_record()["policy"], "window": 0}}, False),
    ],
)
def test_the_schema_encodes_the_status_and_reason_rules(
    changes: dict[str, Any], valid: bool
) -> None:
    assert (not _errors(_record(**changes))) is valid


def test_block_reasons_and_statuses_are_the_spec_names() -> None:
    assert [s.value for s in Status] == ["ALLOW", "BLOCK"]
    assert [r.value for r in BlockReason] == ["RATE_LIMIT", "COOLDOWN", "STORE_ERROR"]
