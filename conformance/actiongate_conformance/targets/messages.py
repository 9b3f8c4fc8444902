"""Protocol messages checked at the boundary against spec/protocol.schema.json.

jsonschema takes about 0.2 ms for one decision, which would cap a ``cmd:`` adapter near 4,000
checks/s. ``plainly_valid_decision`` is a fast path for the common record: it accepts only
records that the schema certainly accepts (a property test holds it to that), and anything it is
unsure of goes through the full schema.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..data import schema_registry, validator

__all__ = [
    "PROTOCOL_VERSION",
    "SCHEMA_PROBLEMS",
    "plainly_valid_decision",
    "record_problems",
    "response_errors",
]

PROTOCOL_VERSION = 1
_PROTOCOL_ID = "urn:actiongate:schema:protocol:1"
_LIMIT = 2**53
_DECISION_KEYS = frozenset(
    ("schema_version", "status", "reason", "message", "gate", "policy", "calls_in_window")
) | {"time_since_last", "now"}
_GATE_KEYS = frozenset(("namespace", "action", "principal"))
_POLICY_KEYS = frozenset(("max_calls", "window", "cooldown", "mode", "on_store_error"))
_STATUS_REASONS = frozenset(
    {
        ("ALLOW", None),
        ("ALLOW", "STORE_ERROR"),
        ("BLOCK", "RATE_LIMIT"),
        ("BLOCK", "COOLDOWN"),
        ("BLOCK", "STORE_ERROR"),
    }
)


@functools.cache
def _validator(definition: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"{_PROTOCOL_ID}#/$defs/{definition}"}, registry=schema_registry()
    )


SCHEMA_PROBLEMS = "schema_problems"


def response_errors(response: Any, answers_check: bool = False) -> list[str]:
    """Why ``response`` is not a valid protocol response; empty when it is.

    ``answers_check``: the request was a check, and a decision-shaped answer
    (``{"id": ..., "decision": {...}}``) is let through whatever its record holds: it is the
    implementation's answer, for the runner to judge field by field (see ``record_problems``).
    """
    if (
        type(response) is dict
        and response.keys() == {"id", "decision"}
        and type(response["id"]) is int
        and response["id"] >= 0
        and (plainly_valid_decision(response["decision"]) or answers_check)
        and type(response["decision"]) is dict
    ):
        return []
    if plainly_valid_reply(response):
        return []
    if type(response) is dict and "decision" in response:
        # Name what is wrong inside the record rather than "matches none of oneOf".
        found = record_problems(response["decision"])
        if found:
            return found
    error = best_match(_validator("response").iter_errors(response))
    return [] if error is None else [f"{error.json_path}: {error.message}"]


_ERROR_KINDS = frozenset(
    ("invalid_gate", "invalid_policy", "invalid_time", "store_error", "unsupported", "bad_request")
)


def plainly_valid_reply(response: Any) -> bool:
    """True only for ``{"id", "ok": true}`` and well-formed error responses, which certainly
    match protocol.schema.json: most answers of a run, that jsonschema would check in ~0.2 ms."""
    if type(response) is not dict or type(response.get("id")) is not int or response["id"] < 0:
        return False
    if response.keys() == {"id", "ok"}:
        return response["ok"] is True
    if response.keys() != {"id", "error"}:
        return False
    error = response["error"]
    return (
        type(error) is dict
        and error.keys() == {"kind", "field", "message"}
        and error["kind"] in _ERROR_KINDS
        and (error["field"] is None or type(error["field"]) is str)
        and type(error["message"]) is str
    )


def record_problems(decision: Any) -> list[str]:
    """Why ``decision`` is not a record of decision.schema.json; empty when it is."""
    if plainly_valid_decision(decision):
        return []
    inner = validator("decision").iter_errors(decision)
    return [f"$.decision{e.json_path[1:]}: {e.message}" for e in inner]


def _number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def plainly_valid_decision(decision: Any) -> bool:
    """True only for decision records that certainly match decision.schema.json."""
    if type(decision) is not dict or decision.keys() != _DECISION_KEYS:
        return False
    status, reason = decision["status"], decision["reason"]
    calls, age, now = decision["calls_in_window"], decision["time_since_last"], decision["now"]
    gate, policy = decision["gate"], decision["policy"]
    if not (
        decision["schema_version"] == "1.0"
        and (status, reason) in _STATUS_REASONS
        and (decision["message"] is None or type(decision["message"]) is str)
        and type(calls) is int
        and 0 <= calls <= _LIMIT
        and (age is None or _number(age))
        and _number(now)
        and -_LIMIT <= now <= _LIMIT
        and _plain_gate(gate)
        and _plain_policy(policy)
    ):
        return False
    if reason is None:
        return calls >= 1
    if reason == "COOLDOWN":
        return calls >= 1 and age is not None
    if reason == "STORE_ERROR":
        return calls == 0 and age is None
    return True


def _plain_gate(gate: Any) -> bool:
    return (
        type(gate) is dict
        and gate.keys() == _GATE_KEYS
        and all(type(value) is str for value in gate.values())
    )


def _plain_policy(policy: Any) -> bool:
    if type(policy) is not dict or policy.keys() != _POLICY_KEYS:
        return False
    max_calls, window, cooldown = policy["max_calls"], policy["window"], policy["cooldown"]
    return (
        type(max_calls) is int
        and 0 <= max_calls < _LIMIT
        and (window is None or (_number(window) and window > 0))
        and _number(cooldown)
        and cooldown >= 0
        and policy["mode"] in ("HARD", "SOFT")
        and policy["on_store_error"] in ("FAIL_CLOSED", "FAIL_OPEN")
    )
