"""Loading vector files: schema-checked JSON in, frozen dataclasses out.

Steps keep their gate, policy and time as raw JSON (non-finite numbers as ``{"$float": ...}``),
because that is what every target receives: invalid input must reach the implementation as
written, not as Python made it. A check's or a clear's gate may be any JSON value, ``None``
(JSON null) included, and so may a check's policy (ID-4, POL-7).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..data import clause_ids, validator, vector_files

__all__ = [
    "FAULT_OPS",
    "ExpectedDecision",
    "ExpectedError",
    "ExpectedStatus",
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
_ABSENT = object()  # a step or vector that names no gate (or policy), unlike one naming null


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
    """An error response: ``invalid_*`` with its field, or ``store_error`` (field None) from a
    clear or clear_all under store_fail."""

    error: str
    field: str | None


@dataclass(frozen=True)
class ExpectedStatus:
    """A check of a bulk: only its status and reason (and its echoes) are judged."""

    status: str
    reason: str | None


Expected = ExpectedDecision | ExpectedStatus | ExpectedError


@dataclass(frozen=True)
class Step:
    """One request of a vector. ``index`` is its place in ``Vector.steps``, where a bulk step
    of the file is its checks one by one; ``number`` is the file's step it came from (None:
    the same as ``index``) and ``repeat`` which check of the bulk it is, ``(n, count)``."""

    index: int
    op: str
    now: Any
    gate: Any = None  # a check's or clear's, as written (None: JSON null); None for other ops
    policy: Any = None  # a check's, as written
    expect: Expected | None = None  # None: the answer must be ok (clear, clear_all, faults)
    note: str | None = None
    number: int | None = None
    repeat: tuple[int, int] | None = None

    @property
    def in_file(self) -> int:
        """The step's number in the vector file (``steps[n]``)."""
        return self.index if self.number is None else self.number

    @property
    def label(self) -> str:
        """Where the step is in its file: ``step 3``, or ``step 3, check 517 of 10001``."""
        if self.repeat is None:
            return f"step {self.in_file}"
        return f"step {self.in_file}, check {self.repeat[0]} of {self.repeat[1]}"

    def message(self) -> dict[str, Any]:
        """The request a target receives for this step (see spec/protocol.schema.json)."""
        message: dict[str, Any] = {"op": self.op}
        if self.op in ("check", "clear"):
            message["gate"] = _copy(self.gate)
        if self.op == "check":
            message["policy"] = _copy(self.policy)
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
    steps: list[Step] = []
    for number, step in enumerate(raw["steps"]):
        where = f"$.vectors[{index}].steps[{number}]"
        steps += _steps(_step(path, where, number, raw, step), step, len(steps))
    return Vector(
        id=raw["id"],
        clauses=tuple(raw["clauses"]),
        flags=tuple(raw["flags"]),
        description=raw["description"],
        steps=tuple(steps),
        file=path.name,
        digest=hashlib.sha256(
            json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest(),
    )


def _step(
    path: Path, where: str, number: int, vector: Mapping[str, Any], raw: Mapping[str, Any]
) -> Step:
    op = raw["op"]
    gate: Any = None
    policy: Any = None
    if op in ("check", "bulk", "clear"):
        gate = _named(raw, vector, "gate")
        if gate is _ABSENT:
            raise VectorError(f"{path}: {where}: a {op} step needs a gate, and the vector has none")
    if op in ("check", "bulk"):
        policy = _named(raw, vector, "policy")
        if policy is _ABSENT:
            raise VectorError(
                f"{path}: {where}: a {op} step needs a policy, and the vector has none"
            )
        if isinstance(policy, Mapping) and not raw.get("as_written"):
            policy = {**policy, **{k: v for k, v in POLICY_DEFAULTS.items() if k not in policy}}
    raw_expect = raw.get("expect", {})  # the schema makes a check's required
    expect: Expected | None = None  # clear, clear_all and faults: ok, unless they say otherwise
    if op == "bulk":
        expect = ExpectedStatus("ALLOW", None)
    elif "error" in raw_expect:
        expect = ExpectedError(raw_expect["error"], raw_expect["field"])
    elif op == "check":
        expect = ExpectedDecision(
            raw_expect["status"],
            raw_expect["reason"],
            raw_expect["calls_in_window"],
            raw_expect["time_since_last"],
        )
    return Step(number, op, raw["now"], gate, policy, expect, raw.get("note"))


def _named(raw: Mapping[str, Any], vector: Mapping[str, Any], name: str) -> Any:
    """The step's ``name`` (gate or policy) as written, null included, else the vector's."""
    return raw[name] if name in raw else vector.get(name, _ABSENT)


def _copy(value: Any) -> Any:
    # A message of its own for each request: a target may not change the vector's values.
    return dict(value) if isinstance(value, Mapping) else value


def _steps(step: Step, raw: Mapping[str, Any], first: int) -> list[Step]:
    """The requests of one step of the file, placed from ``first`` on: a bulk is its checks."""
    if step.op != "bulk":
        return [replace(step, index=first, number=step.index)]
    count, every = raw["count"], raw["every"]
    return [
        replace(
            step,
            index=first + n,
            op="check",
            now=step.now + n * every,  # binary64, as the schema says
            number=step.index,
            repeat=(n + 1, count),
        )
        for n in range(count)
    ]


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
