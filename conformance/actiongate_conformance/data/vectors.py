"""Loading vector files: schema-checked JSON in, frozen dataclasses out.

Steps keep their gate, policy and time as raw JSON (non-finite numbers as ``{"$float": ...}``),
because that is what every target receives: invalid input must reach the implementation as
written, not as Python made it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..data import clause_ids, validator, vector_files

__all__ = [
    "FAULT_OPS",
    "ExpectedDecision",
    "ExpectedError",
    "Step",
    "Vector",
    "VectorError",
    "VectorFile",
    "load_all",
    "load_file",
    "select",
]

FAULT_OPS = frozenset({"store_fail", "store_recover"})
POLICY_DEFAULTS = {"mode": "HARD", "on_store_error": "FAIL_CLOSED"}


class VectorError(ValueError):
    """A vector file that cannot be used; the message names the file and the JSON path."""


@dataclass(frozen=True)
class ExpectedDecision:
    status: str
    reason: str | None
    calls_in_window: int
    time_since_last: float | None


@dataclass(frozen=True)
class ExpectedError:
    error: str
    field: str


@dataclass(frozen=True)
class Step:
    index: int
    op: str
    now: Any
    gate: Mapping[str, Any] | None = None
    policy: Mapping[str, Any] | None = None
    expect: ExpectedDecision | ExpectedError | None = None
    note: str | None = None

    def message(self) -> dict[str, Any]:
        """The request a target receives for this step (see spec/protocol.schema.json)."""
        message: dict[str, Any] = {"op": self.op}
        if self.gate is not None:
            message["gate"] = dict(self.gate)
        if self.op == "check":
            message["policy"] = dict(self.policy or {})
            message["now"] = self.now
        return message


@dataclass(frozen=True)
class Vector:
    id: str
    clauses: tuple[str, ...]
    flags: tuple[str, ...]
    description: str
    steps: tuple[Step, ...]
    file: str
    digest: str  # sha256 of the vector's canonical JSON, as written

    @property
    def needs_faults(self) -> bool:
        """True iff the vector makes the store fail, which some targets cannot do."""
        return any(step.op in FAULT_OPS for step in self.steps)


@dataclass(frozen=True)
class VectorFile:
    path: Path
    topic: str
    description: str
    vectors: tuple[Vector, ...]


def load_file(path: Path) -> VectorFile:
    """Read and check one vector file; raises VectorError naming the file and JSON path."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise VectorError(f"{path}: cannot read: {error}") from None
    except json.JSONDecodeError as error:
        raise VectorError(f"{path}: line {error.lineno}: not JSON: {error.msg}") from None
    errors = sorted(validator("vector").iter_errors(document), key=lambda e: e.json_path)
    if errors:
        details = "\n".join(f"  {e.json_path}: {_short(e.message)}" for e in errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise VectorError(f"{path}: does not match vector.schema.json:\n{details}{more}")
    vectors = tuple(_vector(path, index, raw) for index, raw in enumerate(document["vectors"]))
    return VectorFile(path, document["topic"], document["description"], vectors)


def load_all(paths: Iterable[Path] | None = None) -> list[VectorFile]:
    """Every vector file (by default the suite's own), checked across files too."""
    files = [load_file(path) for path in (vector_files() if paths is None else paths)]
    known = set(clause_ids())
    seen: dict[str, Path] = {}
    for vector_file in files:
        for vector in vector_file.vectors:
            if vector.id in seen:
                raise VectorError(
                    f"{vector_file.path}: vector id {vector.id!r} is also used in {seen[vector.id]}"
                )
            seen[vector.id] = vector_file.path
            for clause in vector.clauses:
                if clause not in known:
                    raise VectorError(
                        f"{vector_file.path}: vector {vector.id!r} cites {clause}, "
                        "which SEMANTICS.md does not define"
                    )
    return files


def _vector(path: Path, index: int, raw: Mapping[str, Any]) -> Vector:
    steps = tuple(
        _step(path, f"$.vectors[{index}].steps[{number}]", number, raw, step)
        for number, step in enumerate(raw["steps"])
    )
    return Vector(
        id=raw["id"],
        clauses=tuple(raw["clauses"]),
        flags=tuple(raw["flags"]),
        description=raw["description"],
        steps=steps,
        file=path.name,
        digest=hashlib.sha256(
            json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest(),
    )


def _step(
    path: Path, where: str, number: int, vector: Mapping[str, Any], raw: Mapping[str, Any]
) -> Step:
    op = raw["op"]
    gate = raw.get("gate", vector.get("gate")) if op in ("check", "clear") else None
    policy = raw.get("policy", vector.get("policy")) if op == "check" else None
    if op in ("check", "clear") and gate is None:
        raise VectorError(f"{path}: {where}: a {op} step needs a gate, and the vector has none")
    if op == "check" and policy is None:
        raise VectorError(f"{path}: {where}: a check step needs a policy, and the vector has none")
    expect: ExpectedDecision | ExpectedError | None = None
    if op == "check":
        assert policy is not None  # checked above
        policy = {**policy, **{k: v for k, v in POLICY_DEFAULTS.items() if k not in policy}}
        raw_expect = raw["expect"]
        expect = (
            ExpectedError(raw_expect["error"], raw_expect["field"])
            if "error" in raw_expect
            else ExpectedDecision(
                raw_expect["status"],
                raw_expect["reason"],
                raw_expect["calls_in_window"],
                raw_expect["time_since_last"],
            )
        )
    return Step(number, op, raw["now"], gate, policy, expect, raw.get("note"))


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def select(files: Sequence[VectorFile], patterns: Sequence[str] = ()) -> list[Vector]:
    """The vectors whose id or any clause matches one of the glob patterns (all if none)."""
    vectors = [vector for vector_file in files for vector in vector_file.vectors]
    if not patterns:
        return vectors
    return [
        vector
        for vector in vectors
        if any(
            fnmatchcase(vector.id, pattern)
            or any(fnmatchcase(clause, pattern) for clause in vector.clauses)
            for pattern in patterns
        )
    ]
