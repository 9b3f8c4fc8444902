"""Skip files: failures a target declares as known, each with a reason.

A declared failure turns the verdict into "conforming except N declared", never a silent pass;
a declared vector that passes is reported as stale, because skip lists rot. A reason must say
why: the placeholder ``--write-skip`` writes ("TODO: explain. ...") is rejected until replaced.

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

__all__ = ["PLACEHOLDER", "KnownFailures", "load_skip_file", "skip_file_for", "unexplained"]

PLACEHOLDER = "TODO: explain"  # how every reason --write-skip writes begins


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
    placeholders = unexplained(document)
    if placeholders:
        shown = ", ".join(placeholders[:5]) + (
            f" and {len(placeholders) - 5} more" if len(placeholders) > 5 else ""
        )
        raise VectorError(
            f"{path}: {len(placeholders)} known failures still have the reason --write-skip "
            f"wrote ({shown}): replace each {PLACEHOLDER!r} with why the vector fails"
        )
    return KnownFailures(
        tuple((entry["vectors"], entry["reason"]) for entry in document["known_failures"])
    )


def skip_file_for(failures: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A starting skip file declaring these (vector id, first problem) pairs."""
    return {
        "known_failures": [
            {"vectors": vector_id, "reason": f"{PLACEHOLDER}. Fails with: {problem}"}
            for vector_id, problem in failures
        ]
    }


def unexplained(document: Any) -> list[str]:
    """The ``vectors`` of the entries whose reason is still --write-skip's placeholder."""
    entries = document.get("known_failures") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return []
    return [
        str(entry.get("vectors"))
        for entry in entries
        if isinstance(entry, dict) and str(entry.get("reason", "")).startswith(PLACEHOLDER)
    ]
