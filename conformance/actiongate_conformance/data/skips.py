"""Skip files: failures a target declares as known, each with a reason.

A declared failure turns the verdict into "conforming except N declared", never a silent pass;
a declared vector that passes is reported as stale, because skip lists rot.

The file is JSON (spec/skip.schema.json)::

    {"known_failures": [{"vectors": "retention-*", "reason": "our store rounds to ms"}]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..data import validator
from .vectors import VectorError

__all__ = ["KnownFailures", "load_skip_file", "skip_file_for"]


@dataclass(frozen=True)
class KnownFailures:
    entries: tuple[tuple[str, str], ...]  # (vector id or glob, reason)

    def reason_for(self, vector_id: str) -> str | None:
        for pattern, reason in self.entries:
            if fnmatchcase(vector_id, pattern):
                return reason
        return None


def load_skip_file(path: Path) -> KnownFailures:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise VectorError(f"{path}: cannot read the skip file: {error}") from None
    errors = list(validator("skip").iter_errors(document))
    if errors:
        shown = "; ".join(f"{e.json_path}: {e.message}" for e in errors[:5])
        raise VectorError(f"{path}: does not match skip.schema.json: {shown}")
    return KnownFailures(
        tuple((entry["vectors"], entry["reason"]) for entry in document["known_failures"])
    )


def skip_file_for(failures: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A starting skip file declaring these (vector id, first problem) pairs."""
    return {
        "known_failures": [
            {"vectors": vector_id, "reason": f"TODO: explain. Fails with: {problem}"}
            for vector_id, problem in failures
        ]
    }
