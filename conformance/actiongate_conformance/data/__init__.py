"""The suite's data: SEMANTICS.md, the JSON Schemas of spec/ and the vectors/ files.

An installed wheel carries them inside the package (``_data/``); a source checkout keeps them at
the top of the repository. Both are found the same way, so tests exercise the installed layout.
This package also holds the loaders of vector files and skip files; it imports nothing else of
the suite.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

__all__ = [
    "clause_ids",
    "clause_titles",
    "data_root",
    "schema",
    "schema_registry",
    "semantics_text",
    "validator",
    "vector_files",
]

_CLAUSE = re.compile(r"^\*\*([A-Z]+-[0-9]+)\.\*\*", re.MULTILINE)
# A section heading ("## 2. Time"), or a clause with its name if it has one ("*Retention.*").
_TITLED = re.compile(
    r"^## [0-9]+\. (?P<section>.+)$"
    r"|^\*\*(?P<clause>[A-Z]+-[0-9]+)\.\*\* (?:\*(?P<name>[^*]+?)\.?\*)?",
    re.MULTILINE,
)


@functools.cache
def data_root() -> Path:
    """The directory holding ``spec/``, ``vectors/`` and ``SEMANTICS.md``."""
    packaged = Path(str(resources.files("actiongate_conformance"))) / "_data"
    if (packaged / "spec").is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "spec").is_dir() and (checkout / "vectors").is_dir():
        return checkout
    raise FileNotFoundError(
        f"the suite's data (spec/, vectors/) is neither in {packaged} nor in {checkout}"
    )


def semantics_text() -> str:
    return (data_root() / "SEMANTICS.md").read_text(encoding="utf-8")


@functools.cache
def clause_ids() -> tuple[str, ...]:
    """Every clause ID SEMANTICS.md defines (a line opening with ``**ID.**``), in order."""
    return tuple(_CLAUSE.findall(semantics_text()))


@functools.cache
def clause_titles() -> dict[str, str]:
    """Each clause ID to a few words: its name in SEMANTICS.md, else its section's title."""
    titles: dict[str, str] = {}
    section = ""
    for match in _TITLED.finditer(semantics_text()):
        if match["section"]:
            section = match["section"].strip()
        else:
            titles[match["clause"]] = match["name"] or section
    return titles


def vector_files() -> list[Path]:
    return sorted((data_root() / "vectors").glob("*.json"))


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """A schema of spec/ by short name: ``decision``, ``vector``, ..."""
    path = data_root() / "spec" / f"{name}.schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def schema_registry() -> Registry:
    """All schemas of spec/, so that one may $ref another by its $id."""
    spec = data_root() / "spec"
    names = [path.name.removesuffix(".schema.json") for path in spec.glob("*.schema.json")]
    resources_ = [Resource.from_contents(schema(name)) for name in sorted(names)]
    return Registry().with_resources((r.contents["$id"], r) for r in resources_)


@functools.cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), registry=schema_registry())
