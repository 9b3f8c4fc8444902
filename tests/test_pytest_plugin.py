"""The pytest plugin (issue 17) in a vendor's repository: README's example, run by pytester.

Each test writes a vendor's repository into a temporary directory (README's store module, and
its pyproject.toml, conftest.py or a command-line option) and runs pytest there in-process, with
the plugin the package's entry point installs: the suite must arrive as ordinary items, fail with
the command's explanations, honour skip files as strict xfails, and, without a target, change
nothing at all. One runs README's example as a vendor would: its files, and its command in a
pytest process of its own.
"""

from __future__ import annotations

import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from actiongate_conformance import api
from actiongate_conformance.data import vector_files
from actiongate_conformance.data import vectors as vectors_module
from actiongate_conformance.data.vectors import VectorFile, load_all
from actiongate_conformance.reports.terminal import failure_lines

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
VECTORS = sum(len(vector_file.vectors) for vector_file in load_all())
FAST = ("-p", "no:cacheprovider", "--actiongate-examples", "20", "--actiongate-seed", "1")
# README's store with the rate limit off by one: it lets max_calls + 1 calls by.
OFF_BY_ONE = ("len(events) >= policy.max_calls", "len(events) > policy.max_calls")
BLOCKS = "rate-limit-blocks-at-max-calls"  # a vector the off-by-one store fails
PASSES = "validation-mode-invalid-rejected"  # ... and one it passes
# A vector item and the three layer items, as -v lists them when a store passes.
EVERY_KIND_PASSED = [
    f"vectors/validation.json::{PASSES} PASSED*",
    "actiongate::stateful PASSED*",
    "actiongate::atomicity PASSED*",
    "actiongate::faults PASSED*",
]


def readme_blocks(languages: str = "python|toml") -> list[str]:
    """The blocks of README's "In your own tests (pytest)" section in ``languages`` (a regex)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## In your own tests (pytest)\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"^```(?:{languages})\n(.*?)^```", section, flags=re.S | re.M)


def readme_example() -> dict[str, str]:
    """README's example files, by the name each block's first line gives (``# mystore.py: ...``
    -> ``mystore.py``)."""
    named = ((re.match(r"# ([\w.]+)", block), block) for block in readme_blocks())
    return {name[1]: block for name, block in named if name}


EXAMPLE = readme_example()
# The example's command: the section's first ```sh block, after its files.
COMMAND = shlex.split(readme_blocks("sh")[0])


@pytest.fixture
def vendor(pytester: pytest.Pytester) -> pytest.Pytester:
    """A vendor's repository: README's store, and a test of their own."""
    pytester.makepyfile(mystore=EXAMPLE["mystore.py"])
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    return pytester


def broken(pytester: pytest.Pytester) -> str:
    """README's store off by one, as the module ``brokenstore``; its target."""
    pytester.makepyfile(brokenstore=EXAMPLE["mystore.py"].replace(*OFF_BY_ONE))
    return "py:brokenstore:DictStore"


def fixture_returning(value: str) -> str:
    """A conftest.py whose fixture ``actiongate_target`` returns ``value``, a Python expression
    over README's store (``DictStore``) and the broken one (``BrokenStore``)."""
    return (
        "import pytest\n"
        "from brokenstore import DictStore as BrokenStore\n"
        "from mystore import DictStore\n\n\n"
        '@pytest.fixture(scope="session")\n'
        f"def actiongate_target():\n    return {value}\n"
    )


def test_the_entry_point_is_installed() -> None:
    # Without it no vendor's pytest loads the plugin (an editable install made before the entry
    # point was added lacks it: reinstall).
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("actiongate") == "actiongate_conformance.pytest_plugin"
    assert {"mystore.py", "pyproject.toml", "conftest.py"} <= set(EXAMPLE), EXAMPLE.keys()
    assert COMMAND[:3] == ["python3", "-m", "pytest"], COMMAND


@pytest.mark.slow
def test_readmes_example_runs_as_written(pytester: pytest.Pytester) -> None:
    # README's two files, alone, and its command in a process of its own, as a vendor runs it:
    # python3 -m pytest is the interpreter running these tests, with the package installed.
    pytester.makepyfile(mystore=EXAMPLE["mystore.py"])
    pytester.makeconftest(EXAMPLE["conftest.py"])
    assert "def actiongate_target():\n    return lambda: DictStore()" in EXAMPLE["conftest.py"]
    result = pytester.runpytest_subprocess(*COMMAND[3:], "-v")
    result.assert_outcomes(passed=VECTORS + 3)
    result.stdout.fnmatch_lines(EVERY_KIND_PASSED)


@pytest.mark.slow
def test_a_correct_store_named_in_the_ini_passes_every_item(vendor: pytest.Pytester) -> None:
    vendor.makepyprojecttoml(EXAMPLE["pyproject.toml"])
    result = vendor.runpytest("-v", *FAST)
    result.assert_outcomes(passed=VECTORS + 3 + 1)  # the vectors, the layers, the vendor's own
    result.stdout.fnmatch_lines(EVERY_KIND_PASSED)


@pytest.mark.slow
def test_a_broken_store_fails_the_right_items_with_the_commands_explanation(
    vendor: pytest.Pytester,
) -> None:
    target = broken(vendor)
    chosen = f"{BLOCKS} or {PASSES} or stateful or atomicity"
    result = vendor.runpytest("--actiongate-target", target, "-k", chosen, *FAST)
    result.assert_outcomes(passed=1, failed=3, deselected=VECTORS - 2 + 1 + 1)
    result.stdout.fnmatch_lines(
        [
            f"FAILED vectors/rate.json::{BLOCKS} - FAIL rate.json > *",
            "FAILED actiongate::stateful - STATEFUL MODEL FAILED (seed 1):",
            "FAILED actiongate::atomicity - atomicity: *",
        ]
    )
    # The vector's explanation is the command's, line for line, its rerun hint included.
    outcome = api.run(target, layers=["vectors"], select=BLOCKS).outcome(BLOCKS)
    assert outcome is not None and outcome.result == "fail"
    shown = result.stdout.str()
    assert "\n".join(failure_lines(outcome, target)) in shown
    assert f"rerun: actiongate-conformance run --target {target} --select {BLOCKS}" in shown
    assert "Rerun the search" in shown and "--examples 20 --seed 1" in shown


@pytest.mark.slow
def test_a_skip_files_declared_failures_are_strict_xfails_with_their_reasons(
    vendor: pytest.Pytester,
) -> None:
    target = broken(vendor)
    vendor.makefile(
        ".json",
        known='{"known_failures": ['
        f'{{"vectors": "{BLOCKS}", "reason": "one call too many (ticket 7)"}}, '
        f'{{"vectors": "{PASSES}", "reason": "fixed since"}}]}}',
    )
    options = ("--actiongate-target", target, "--actiongate-skip", "known.json", "-rfxX")
    result = vendor.runpytest(*options, "-k", f"{BLOCKS} or {PASSES}", *FAST)
    # The declared failure fails: xfailed. The one that passes is reported: strict.
    result.assert_outcomes(xfailed=1, failed=1, deselected=VECTORS - 2 + 3 + 1)
    result.stdout.fnmatch_lines(
        [
            f"FAILED vectors/validation.json::{PASSES} - [[]XPASS*",
            f"XFAIL vectors/rate.json::{BLOCKS} - one call too many (ticket 7)",
        ]
    )
    assert "[XPASS(strict)] fixed since" in result.stdout.str()


def test_a_skip_file_with_a_placeholder_reason_is_a_collection_error(
    vendor: pytest.Pytester,
) -> None:
    vendor.makefile(
        ".json", known='{"known_failures": [{"vectors": "x", "reason": "TODO: explain"}]}'
    )
    result = vendor.runpytest("--actiongate-target", "memory://", "--actiongate-skip", "known.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*known.json: 1 known failures still have the reason*"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "returned",
    ['"py:mystore:DictStore"', "DictStore", "lambda: DictStore()", "DictStore()"],
    ids=["a target string", "a class", "a factory", "a store"],
)
def test_a_fixture_can_name_the_target_and_the_option_wins_over_it(
    vendor: pytest.Pytester, returned: str
) -> None:
    target = broken(vendor)
    vendor.makeconftest(fixture_returning(returned))
    result = vendor.runpytest("-v", "-k", f"{BLOCKS} or atomicity or faults", *FAST)
    result.assert_outcomes(passed=3, deselected=VECTORS - 1 + 1 + 1)
    result.stdout.fnmatch_lines(["actiongate::atomicity PASSED*", "actiongate::faults PASSED*"])
    # The command line's target comes first: here, the broken one.
    result = vendor.runpytest("--actiongate-target", target, "-k", BLOCKS, *FAST)
    result.assert_outcomes(failed=1, deselected=VECTORS - 1 + 3 + 1)


@pytest.mark.slow
def test_a_broken_factory_fails_with_its_name_and_rerun_hints_that_work(
    vendor: pytest.Pytester,
) -> None:
    broken(vendor)
    vendor.makeconftest(fixture_returning("lambda: BrokenStore()"))
    result = vendor.runpytest("-k", f"{BLOCKS} or stateful", *FAST)
    result.assert_outcomes(failed=2, deselected=VECTORS - 1 + 2 + 1)
    shown = result.stdout.str()
    # No module names the lambda, so the command cannot rerun it: pytest can.
    label = "py:conftest:actiongate_target.<locals>.<lambda>"
    assert f"  rerun: pytest -k {BLOCKS}\n" in shown
    assert f"Rerun the search with pytest (the command cannot import {label}):\n" in shown
    assert "  pytest -k stateful --actiongate-examples 20 --actiongate-seed 1\n" in shown
    assert "actiongate-conformance run" not in shown  # no hint that cannot work
    # A class a module names keeps the command's hint: the command runs the same target.
    vendor.makeconftest(fixture_returning("BrokenStore"))
    result = vendor.runpytest("-k", BLOCKS, *FAST)
    result.assert_outcomes(failed=1, deselected=VECTORS - 1 + 3 + 1)
    assert "rerun: actiongate-conformance run --target py:brokenstore:DictStore " in (
        result.stdout.str()
    )


@pytest.mark.parametrize(
    ("returned", "why"),
    [
        ("42", "the fixture actiongate_target returned no target: target must be a target "
         "string (e.g. memory://), a store factory (a callable taking no argument that returns "
         "a fresh store) or a store, got 42"),
        ('""', "the fixture actiongate_target returned no target: target must be a target *, "
         "got ''"),
        ("lambda: 42", "the target could not be run: py:conftest:actiongate_target.<locals>."
         "<lambda>: the factory returned int, not a store (missing check_and_reserve, clear, "
         "clear_all)"),
        ("lambda url: DictStore(url)", "the target could not be run: *: the factory raised "
         "TypeError: *missing 1 required positional argument: 'url'"),
    ],
    ids=["not callable", "empty", "not a store", "needs an argument"],
)  # fmt: skip
def test_a_fixture_returning_no_target_fails_each_item_saying_why(
    vendor: pytest.Pytester, returned: str, why: str
) -> None:
    broken(vendor)
    vendor.makeconftest(fixture_returning(returned))
    result = vendor.runpytest("-k", f"{PASSES} or faults", *FAST)
    result.assert_outcomes(failed=2, deselected=VECTORS - 1 + 2 + 1)
    result.stdout.fnmatch_lines([why, why])


def test_the_vector_files_are_read_once(
    vendor: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[Path] = []
    load_file = vectors_module.load_file

    def counted(path: Path) -> VectorFile:
        read.append(path)
        return load_file(path)

    monkeypatch.setattr(vectors_module, "load_file", counted)
    result = vendor.runpytest("--actiongate-target", "py:mystore:DictStore", "-k", PASSES, *FAST)
    result.assert_outcomes(passed=1, deselected=VECTORS - 1 + 3 + 1)
    assert sorted(read) == vector_files()  # each once: to collect the items, and for the run


@pytest.mark.slow
def test_x_stops_at_the_first_failure_and_lf_reruns_the_failures(vendor: pytest.Pytester) -> None:
    options = ("--actiongate-target", broken(vendor), *FAST[2:])  # with the cache, for --lf
    result = vendor.runpytest("-k", f"{BLOCKS} or {PASSES}", *options)
    result.assert_outcomes(passed=1, failed=1, deselected=VECTORS - 2 + 3 + 1)
    result = vendor.runpytest("--lf", *options)
    result.assert_outcomes(failed=1, deselected=VECTORS - 1 + 3 + 1)
    result.stdout.fnmatch_lines([f"FAILED vectors/rate.json::{BLOCKS} - *"])
    result = vendor.runpytest("-x", *options)  # the store fails many vectors: the first stops
    assert result.parseoutcomes()["failed"] == 1
    assert "stopping after 1 failures" in result.stdout.str()


@pytest.mark.slow
def test_a_target_that_cannot_run_fails_each_item_saying_why(vendor: pytest.Pytester) -> None:
    options = ("--actiongate-target", "py:no_such_module:make", "-k", f"{PASSES} or faults")
    result = vendor.runpytest(*options, *FAST)
    result.assert_outcomes(failed=2, deselected=VECTORS - 1 + 2 + 1)
    # Each failure's own section says why (the short summary repeats it, cut to the terminal's
    # width unless CI is set, so it is not counted).
    why = "the target could not be run: cannot import 'no_such_module'"
    assert sum(line.startswith(why) for line in result.stdout.lines) == 2


def test_named_by_the_ini_the_suite_joins_only_a_run_of_a_directory(
    vendor: pytest.Pytester,
) -> None:
    vendor.makepyprojecttoml(EXAMPLE["pyproject.toml"])
    result = vendor.runpytest("test_own.py", "--co", "-q")
    result.stdout.fnmatch_lines(["test_own.py::test_own", "1 test collected*"])
    result = vendor.runpytest(".", "--co", "-q")
    result.stdout.fnmatch_lines(["actiongate::faults", f"{VECTORS + 4} tests collected*"])


def test_without_a_target_the_plugin_changes_nothing(vendor: pytest.Pytester) -> None:
    vendor.makeconftest("import pytest\n\n@pytest.fixture\ndef other():\n    return 1\n")
    for options in (("--co", "-v"), ("-v",), ("--fixtures",)):
        mine = vendor.runpytest(*options, "-p", "no:cacheprovider")
        plain = vendor.runpytest(*options, "-p", "no:cacheprovider", "-p", "no:actiongate")
        assert mine.ret == plain.ret == pytest.ExitCode.OK
        assert _comparable(mine.outlines) == _comparable(plain.outlines), options
    # Its options are there, and do nothing alone.
    assert "--actiongate-target=TARGET" in vendor.runpytest("--help").stdout.str()
    vendor.runpytest("--actiongate-seed", "3", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def _comparable(lines: list[str]) -> list[str]:
    """The output but for its times and the header's list of installed plugins."""
    return [re.sub(r" in \d+\.\d+s", "", line) for line in lines if not line.startswith("plugins:")]
