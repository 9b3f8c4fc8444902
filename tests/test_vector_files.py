"""The vector files themselves: valid, citing real clauses, covering every clause twice."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from actiongate_conformance import data as _data
from actiongate_conformance.data.vectors import ExpectedError, VectorError, load_all, load_file
from actiongate_conformance.layers.timeline import timeline

VECTOR_FILES = _data.vector_files()


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[path.name for path in VECTOR_FILES])
def test_vector_file_matches_its_schema(path: Path) -> None:
    errors = list(_data.validator("vector").iter_errors(json.loads(path.read_text())))
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_every_cited_clause_exists_and_ids_are_unique() -> None:
    load_all()  # raises VectorError naming the file otherwise


def test_every_clause_is_covered_by_at_least_two_vectors() -> None:
    coverage = collections.Counter(
        clause
        for vector_file in load_all()
        for vector in vector_file.vectors
        for clause in vector.clauses
    )
    thin = {clause: coverage[clause] for clause in _data.clause_ids() if coverage[clause] < 2}
    assert not thin, f"clauses with fewer than two vectors: {thin}"


def test_there_are_at_least_eighty_vectors() -> None:
    assert sum(len(f.vectors) for f in load_all()) >= 80


def test_semantics_defines_clauses_once_each() -> None:
    ids = _data.clause_ids()
    assert len(ids) >= 30
    assert len(ids) == len(set(ids))


def test_appendix_cites_only_existing_vectors() -> None:
    known = {v.id for f in load_all() for v in f.vectors}
    appendix = _data.semantics_text().split("## Appendix A", 1)[1].split("\n## ", 1)[0]
    cited = {
        cell.strip().strip("`")
        for line in appendix.splitlines()
        if line.startswith("|")
        for cell in line.split("|")[-2].split(",")
    }
    cited -= {"Vector", "---"}
    assert cited, "the appendix table lost its vector column"
    assert cited <= known, f"appendix cites unknown vectors: {sorted(cited - known)}"


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    return path


def _minimal() -> dict[str, object]:
    return json.loads((_data.data_root() / "vectors" / "retention.json").read_text())


def test_a_malformed_file_is_reported_with_file_and_json_path(tmp_path: Path) -> None:
    document = _minimal()
    document["vectors"][0]["steps"][1]["expect"]["status"] = "MAYBE"  # type: ignore[index]
    path = _write(tmp_path, document)
    with pytest.raises(VectorError) as caught:
        load_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert "$.vectors[0].steps[1]" in message


def test_a_file_that_is_not_json_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "schema": \n')
    with pytest.raises(VectorError, match=r"broken\.json: line 3: not JSON"):
        load_file(path)


def test_an_unknown_clause_is_reported(tmp_path: Path) -> None:
    document = _minimal()
    document["vectors"][0]["clauses"] = ["RET-99"]  # type: ignore[index]
    path = _write(tmp_path, document)
    with pytest.raises(VectorError, match=r"bad\.json: vector .* cites RET-99"):
        load_all([path])


def test_a_duplicate_id_is_reported(tmp_path: Path) -> None:
    document = _minimal()
    document["vectors"].append(document["vectors"][0])  # type: ignore[attr-defined]
    path = _write(tmp_path, document)
    with pytest.raises(VectorError, match="is also used"):
        load_all([path])


def test_a_check_without_gate_anywhere_is_reported(tmp_path: Path) -> None:
    document = _minimal()
    del document["vectors"][0]["gate"]  # type: ignore[attr-defined]
    path = _write(tmp_path, document)
    with pytest.raises(VectorError, match=r"steps\[0\]: a check step needs a gate"):
        load_file(path)


@pytest.mark.parametrize(
    ("expect", "valid"),
    [
        ({"status": "ALLOW", "reason": None, "calls_in_window": 1, "time_since_last": None}, True),
        ({"error": "invalid_policy", "field": "window"}, True),
        ({"status": "ALLOW", "reason": None, "calls_in_window": 1}, False),
        ({"error": "invalid_policy"}, False),
        ({"error": "invalid_thing", "field": "window"}, False),
    ],
)
def test_the_schema_accepts_only_complete_expectations(
    expect: dict[str, object], valid: bool
) -> None:
    document = _minimal()
    step = document["vectors"][0]["steps"][0]  # type: ignore[index]
    step["expect"] = expect
    if "error" in expect:
        step["policy"] = {"max_calls": -1, "window": 1, "cooldown": 0}
    errors = list(_data.validator("vector").iter_errors(document))
    assert (not errors) is valid, errors


def _op(op: str, **fields: object) -> dict[str, object]:
    return {"op": op, "now": 0, **fields}


def _err(error: str, field: str | None) -> dict[str, object]:
    return {"error": error, "field": field}


ALLOW = {"status": "ALLOW", "reason": None, "calls_in_window": 1, "time_since_last": None}


@pytest.mark.parametrize(
    ("step", "valid"),
    [
        (_op("clear", expect={"ok": True}), True),
        (_op("clear", expect=_err("store_error", None)), True),
        (_op("clear_all", expect=_err("store_error", None)), True),
        (_op("clear", gate=None, expect=_err("invalid_gate", "gate")), True),
        (_op("clear", gate=None), False),  # an invalid gate must expect its error
        (_op("clear", gate=[], expect=_err("invalid_policy", "gate")), False),
        (_op("clear", expect=_err("store_error", "gate")), False),
        (_op("store_fail", expect={"ok": True}), False),
        (_op("check", policy=None, expect=_err("invalid_policy", "policy")), True),
        (
            _op("check", as_written=True, policy={}, expect=_err("invalid_policy", "max_calls")),
            True,
        ),
        (_op("check", as_written=True, expect=ALLOW), False),  # only a rejected check
    ],
)
def test_the_schema_lets_clears_expect_and_checks_carry_raw_records(
    step: dict[str, object], valid: bool
) -> None:
    document = _minimal()
    document["vectors"][0]["steps"] = [step]  # type: ignore[index]
    errors = list(_data.validator("vector").iter_errors(document))
    assert (not errors) is valid, errors


def test_raw_gates_and_policies_reach_the_request_as_written(tmp_path: Path) -> None:
    three = {"max_calls": 1, "window": 1, "cooldown": 0}
    document = _minimal()
    document["vectors"][0]["steps"] = [  # type: ignore[index]
        _op("check", gate=None, expect=_err("invalid_gate", "gate")),
        _op("check", policy=[], expect=_err("invalid_policy", "policy")),
        _op("check", as_written=True, policy=three, expect=_err("invalid_policy", "mode")),
        _op("check", policy={**three, "x": 1}, expect=_err("invalid_policy", "x")),
        _op("clear", gate=[], expect=_err("invalid_gate", "gate")),
        _op("clear", expect=_err("store_error", None)),
        _op("clear_all"),
    ]
    vector = load_file(_write(tmp_path, document)).vectors[0]
    messages = [step.message() for step in vector.steps]
    assert messages[0]["gate"] is None and "policy" in messages[0]
    assert messages[1]["policy"] == []
    assert messages[2]["policy"] == three  # as written: no defaults
    assert messages[3]["policy"]["mode"] == "HARD" and messages[3]["policy"]["x"] == 1
    assert messages[4] == {"op": "clear", "gate": []}
    assert vector.steps[5].expect == ExpectedError("store_error", None)
    assert vector.steps[6].expect is None and messages[6] == {"op": "clear_all"}


def test_every_vector_can_be_shown_as_a_timeline() -> None:
    # Each vector's failure report shows its timeline, whatever JSON its gates and policies are.
    for vector_file in load_all():
        for vector in vector_file.vectors:
            assert timeline(vector)
