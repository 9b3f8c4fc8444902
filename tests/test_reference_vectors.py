"""Every vector replayed through the reference Engine over each of its stores."""

from __future__ import annotations

import pytest
from actiongate_conformance.data.vectors import Vector, load_all
from actiongate_conformance.layers.vectors import PASS, run_vector
from actiongate_conformance.reports.terminal import failure_lines
from actiongate_conformance.targets import Target, target_from_string

VECTORS = [vector for vector_file in load_all() for vector in vector_file.vectors]


@pytest.fixture(scope="module")
def memory_target() -> Target:
    return target_from_string("memory://")


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v.file} > {v.id}" for v in VECTORS])
def test_reference_memory_store_passes(memory_target: Target, vector: Vector) -> None:
    outcome = run_vector(memory_target, vector)
    assert outcome.result == PASS, "\n".join(failure_lines(outcome))
