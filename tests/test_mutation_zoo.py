"""The mutation zoo: the whole suite, at CI budget, catches each mutant of tests/mutants.

Each mutant runs once per session (``zoo``), through ``actiongate_conformance.cli.run`` with the
CI seed and the default examples and concurrent checks; its test asserts exit 1 and a layer that
caught it (for the mutants written with the suite: the unseen ones measure it, and the table
says which it misses), and the last test holds tests/mutants/CAUGHT.md to the table of these
runs, so the committed table cannot rot. Correct targets under the same harness must not be
flagged, or a caught mutant would prove nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .mutants import MUTANTS, UNSEEN
from .mutants.zoo import (
    CAUGHT_FILE,
    CONTROLS,
    README,
    Caught,
    readme_with,
    run_mutant,
    run_mutants,
    table,
)

Zoo = Callable[[str], Caught]


@pytest.fixture(scope="module")
def zoo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    """Each mutant's run, its counterexamples and report in a temp dir. At first use, every
    mutant a selected test asks for runs, as many at once as there are CPUs."""
    results: dict[str, Caught] = {}

    def result(name: str) -> Caught:
        if not results:
            wanted = _wanted(request.session.items)
            results.update(run_mutants(wanted, tmp_path_factory.mktemp("zoo")))
        if name not in results:
            results.update(run_mutants([name], tmp_path_factory.mktemp("zoo")))
        return results[name]

    return result


def _wanted(items: list[pytest.Item]) -> list[str]:
    """The mutants the selected tests of this file will ask for: all, with the table's."""
    names = set()
    for item in items:
        if item.path != Path(__file__):
            continue
        if item.name == "test_the_committed_table_is_the_zoo":
            return list(MUTANTS)
        callspec = getattr(item, "callspec", None)
        if item.name.startswith("test_suite_catches_the_mutant") and callspec is not None:
            names.add(callspec.params["name"])
    return [name for name in MUTANTS if name in names]


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in MUTANTS if name not in UNSEEN])
def test_suite_catches_the_mutant(name: str, zoo: Zoo) -> None:
    # The unseen mutants measure the suite rather than hold it: the committed table says
    # which it misses, and the table test keeps that true.
    result = zoo(name)
    assert result.exit_code == 1, f"{MUTANTS[name].bug}\n{result.output}"
    assert result.caught, result.output


@pytest.mark.slow
@pytest.mark.parametrize("name", CONTROLS)
def test_correct_target_is_not_flagged(name: str, tmp_path: Path) -> None:
    result = run_mutant(name, CONTROLS[name], tmp_path)
    assert result.exit_code == 0, result.output
    assert not any(result.by_layer().values()), result.output
    assert result.stateful is False and result.atomicity is False, result.output
    assert not list(tmp_path.glob("stateful-*.json"))


@pytest.mark.slow
def test_the_committed_table_is_the_zoo(zoo: Zoo) -> None:
    fresh = table([zoo(name) for name in MUTANTS])
    committed = CAUGHT_FILE.read_text(encoding="utf-8") if CAUGHT_FILE.exists() else ""
    assert fresh == committed, (
        f"{CAUGHT_FILE} is not what the zoo gives; regenerate it with "
        f"`python3 -m tests.mutants --write`, or look into the difference. Fresh:\n{fresh}"
    )


def test_the_readme_shows_the_committed_table() -> None:
    caught = CAUGHT_FILE.read_text(encoding="utf-8")
    assert README.read_text(encoding="utf-8") == readme_with(caught), (
        "README.md's mutation-zoo table is not tests/mutants/CAUGHT.md; "
        "run `python3 -m tests.mutants --write`"
    )
