"""What the command prints and when (issue 18): streamed sections, flags, output paths, pipes.

Each test runs the real command: ``run(arguments, stdout, stderr)``, or the console script in a
subprocess where the point is about the process (its pipes, its current directory).
"""

from __future__ import annotations

import gc
import io
import json
import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from actiongate import Gate, MemoryStore, Policy
from actiongate_conformance import SPEC_VERSION, __version__
from actiongate_conformance import data as _data
from actiongate_conformance.cli import run
from actiongate_conformance.data.vectors import load_all

VECTORS = sum(len(vector_file.vectors) for vector_file in load_all())
COMMAND = str(Path(sys.executable).with_name("actiongate-conformance"))
ROOT = Path(__file__).resolve().parents[1]
BROKEN = "py:tests.test_cli_output:ForgetsRetention"
FINE = "py:tests.test_cli_output:Fine"
HEADING = re.compile(r"^== (vectors|stateful|atomicity and faults) \((\d+\.\d\d) s\)$", re.M)
SHORT = ("--examples", "10", "--atomicity", "100", "--seed", "1")


class ForgetsRetention(MemoryStore):
    """Forgets the events of namespace "ret" (retention.json's) before each check of it: some
    vectors fail, the other layers (which use other namespaces) pass."""

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        if gate.namespace == "ret":
            self.clear(gate)
        return super().check_and_reserve(gate, now, policy)


class Fine(MemoryStore):
    """A correct store behind a py: target (so that the target is not the default)."""


def call(*arguments: str, stdout: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = stdout or io.StringIO(), io.StringIO()
    code = run(list(arguments), out, err)
    return code, out.getvalue(), err.getvalue()


class Flushes(io.StringIO):
    """A stream that keeps what had been written at each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def flush(self) -> None:
        super().flush()
        self.seen.append(self.getvalue())


class Terminal(Flushes):
    def isatty(self) -> bool:
        return True


def rendered(text: str) -> str:
    """What a terminal shows: a carriage return goes back to the line's start, and what follows
    overwrites it."""
    lines = []
    for raw in text.split("\n"):
        screen: list[str] = []
        column = 0
        for char in raw:
            if char == "\r":
                column = 0
                continue
            screen[column : column + 1] = [char]
            column += 1
        lines.append("".join(screen).rstrip())
    return "\n".join(lines)


def untimed(text: str) -> str:
    return re.sub(r"\(\d+\.\d\d s\)", "(T s)", text)


# Streamed output.


@pytest.mark.slow
def test_each_section_is_flushed_as_its_layer_finishes_and_the_verdict_last() -> None:
    stream = Flushes()
    code, out, _ = call("run", *SHORT, stdout=stream)
    assert code == 0, out
    # One flush per block, in the order the layers run; each adds its section and nothing more.
    seen = stream.seen
    blocks = [seen[0]] + [seen[n][len(seen[n - 1]) :] for n in range(1, len(seen))]
    assert blocks[0] == out.splitlines()[0] + "\n"
    assert blocks[0].startswith(f"ActionGate {SPEC_VERSION} conformance: memory://")
    assert [HEADING.match(block[1:]) is not None for block in blocks[1:]] == [True] * 3 + [False]
    assert "\nvectors: " in blocks[1] and "\nstateful model: 10 examples" in blocks[2]
    assert "\natomicity: 96 concurrent checks linearizable" in blocks[3]
    verdict = out.rstrip("\n").splitlines()[-1]
    assert blocks[4] == f"\n{verdict}\n" and verdict.startswith("CONFORMING")
    names = [name for name, _ in HEADING.findall(out)]
    assert names == ["vectors", "stateful", "atomicity and faults"]


@pytest.mark.slow
def test_the_header_and_the_vectors_arrive_through_a_pipe_while_the_run_goes_on() -> None:
    arguments = [COMMAND, "run", "--examples", "1000000", "--atomicity", "0", "--seed", "1"]
    with subprocess.Popen(
        arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        try:
            lines = [process.stdout.readline()]
            while not lines[-1].startswith("vectors: "):
                assert lines[-1], "".join(lines)  # the run ended before its vectors' tally
                lines.append(process.stdout.readline())
            assert process.poll() is None, "".join(lines)  # the stateful model is still running
        finally:
            process.kill()
    assert lines[0].startswith(f"ActionGate {SPEC_VERSION} conformance: memory://")
    assert HEADING.search("".join(lines))


@pytest.mark.slow
def test_a_terminal_shows_a_count_that_is_cleared_before_each_section() -> None:
    code, plain, _ = call("run", *SHORT)
    terminal = Terminal()
    assert call("run", *SHORT, stdout=terminal)[0] == code == 0
    shown = terminal.getvalue()
    assert f"\rvectors 1/{VECTORS}" in shown and f"\rvectors {VECTORS}/{VECTORS}" in shown
    assert "\rstateful examples 1/10" in shown and "\rstateful examples 10/10" in shown
    assert "\ratomicity and faults: about 100 concurrent checks" in shown
    # Once the terminal has drawn it, nothing of the count is left: the same text as in a file.
    assert untimed(rendered(shown)) == untimed(plain)
    assert "\r" not in plain


# Flags.


@pytest.mark.slow
def test_quiet_prints_only_the_verdict_when_nothing_fails() -> None:
    code, out, _ = call("run", "-q", *SHORT)
    assert code == 0
    assert out.splitlines() == [out.strip()] and out.startswith("CONFORMING")


@pytest.mark.slow
def test_quiet_prints_the_failures_and_the_verdict() -> None:
    code, out, _ = call("run", "--quiet", "--target", BROKEN, "--examples", "0", "--atomicity", "0")
    assert code == 1
    assert "conformance:" not in out and "clause     vectors" not in out and "== " not in out
    assert (
        "FAIL retention.json > " in out
        and f"rerun: actiongate-conformance run --target {BROKEN}" in out
    )
    assert out.splitlines()[-1].startswith("NOT CONFORMING")


@pytest.mark.slow
def test_quiet_shows_a_stateful_failure(tmp_path: Path) -> None:
    target = ["--target", "py:tests.broken_stores:SixthEqualTimestamp", "--emit", str(tmp_path)]
    code, out, _ = call("run", "-q", *target, "--seed", "2", "--atomicity", "0")
    assert code == 1
    assert out.startswith("STATEFUL MODEL FAILED (seed 2)") and "== " not in out


@pytest.mark.slow
def test_verbose_lists_the_vectors_that_passed() -> None:
    code, out, _ = call("run", "-v", "--select", "RET-1")
    assert code == 0
    passed = re.search(r"^passed: (\d+) vectors$", out, re.M)
    assert passed and int(passed[1]) > 1
    assert "\n  retention-event-exactly-window-old-counts  [" in out


def test_quiet_and_verbose_exclude_each_other() -> None:
    code, _, err = call("run", "-q", "-v")
    assert code == 2 and "not allowed with argument" in err


@pytest.mark.slow
def test_fail_fast_stops_after_the_first_layer_that_fails() -> None:
    code, out, _ = call("run", "--fail-fast", "--target", BROKEN, "--seed", "1")
    assert code == 1
    assert [name for name, _ in HEADING.findall(out)] == ["vectors"]
    last = out.splitlines()[-1]
    assert last.startswith("NOT CONFORMING: vectors failed"), last
    assert "not run" in last and "stateful" in last and "atomicity" in last, last


def test_version_names_the_suite_and_the_spec() -> None:
    code, out, _ = call("--version")
    assert code == 0
    assert out.strip() == f"actiongate-conformance {__version__} (ActionGate spec {SPEC_VERSION})"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_is_accepted_before_the_command_and_after_it(where: str) -> None:
    failing = ["run", "--target", "py:no_such_module_here:make"]
    arguments = ["--debug", *failing] if where == "before" else [*failing, "--debug"]
    code, _, err = call(*arguments)
    assert code == 2 and "Traceback" in err
    assert "Traceback" not in call(*failing)[2]
    assert call("list", "--debug")[0] == 0


@pytest.mark.parametrize("arguments", [["--help"], ["run", "--help"]], ids=" ".join)
def test_help_documents_the_exit_codes(arguments: list[str]) -> None:
    code, out, _ = call(*arguments)
    assert code == 0
    codes = out.split("exit codes:\n", 1)[1]
    for number, meaning in (("0", "conforming"), ("1", "not conforming"), ("2", "no verdict")):
        assert re.search(rf"^  {number} +{meaning}", codes, re.M), codes


# Output paths are checked before anything runs.


@pytest.mark.parametrize(
    ("flag", "where", "problem"),
    [
        ("--json", "missing/r.json", "the directory {tmp}/missing does not exist"),
        ("--junit", ".", "is a directory"),
        ("--write-skip", "file/skip.json", "{tmp}/file is not a directory"),
        ("--emit", "file/found", "{tmp}/file is not a directory"),
    ],
)
def test_an_output_path_that_cannot_be_written_stops_the_run_before_it_starts(
    tmp_path: Path, flag: str, where: str, problem: str
) -> None:
    (tmp_path / "file").write_text("")
    started = tmp_path / "started"
    target = f"cmd:{sys.executable} -c \"open(r'{started}', 'w')\""  # would leave a trace
    path = tmp_path / where
    code, out, err = call("run", "--target", target, flag, str(path))
    assert code == 2 and out == ""
    assert err.strip() == (
        f"actiongate-conformance: error: {flag} {path}: {problem.format(tmp=tmp_path)}"
    )
    assert not started.exists()


def test_json_into_a_missing_directory_is_exit_2_at_once() -> None:
    code, out, err = call("run", "--json", "/nonexistent/dir/r.json")
    assert code == 2 and out == ""
    assert "--json /nonexistent/dir/r.json: the directory /nonexistent/dir does not exist" in err


# The process: pipes and the current directory.


def test_list_into_a_pipe_closed_early_stops_without_a_traceback() -> None:
    read, write = os.pipe()
    os.close(read)  # as `| head` does once it has its lines: every write now fails
    try:
        finished = subprocess.run(
            [COMMAND, "list"], stdout=write, stderr=subprocess.PIPE, timeout=60, check=False
        )
    finally:
        os.close(write)
    assert finished.stderr.decode() == ""
    assert finished.returncode == 141


@pytest.mark.slow
def test_a_run_leaves_nothing_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "here_store.py").write_text(
        "from actiongate import MemoryStore\n\ndef make():\n    return MemoryStore()\n"
    )
    temporary = tmp_path.parent / f"{tmp_path.name}-tmp"
    temporary.mkdir()
    environment = {
        name: value for name, value in os.environ.items() if name != "HYPOTHESIS_STORAGE_DIRECTORY"
    }
    environment |= {"PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(temporary)}
    finished = subprocess.run(
        [COMMAND, "run", "--target", "py:here_store:make", *SHORT],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["here_store.py"]
    assert not list(temporary.iterdir())  # hypothesis' own directory is gone too


# Rerun hints.


@pytest.mark.slow
def test_rerun_hints_keep_the_vector_files_target_and_timeout(tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    retention = next(path for path in _data.vector_files() if path.name == "retention.json")
    mine.write_text(retention.read_text(encoding="utf-8"), encoding="utf-8")
    options = ["--target", BROKEN, "--vectors", str(mine), "--timeout", "5"]
    code, out, _ = call("run", *options)
    assert code == 1
    hints = [line.split("rerun: ", 1)[1] for line in out.splitlines() if "rerun: " in line]
    assert hints, out
    for hint in hints:
        words = shlex.split(hint)
        assert words[:2] == ["actiongate-conformance", "run"] and words[-2] == "--select"
        assert words[2:-2] == options, hint
    failing = out.split("\nFAIL ", 1)[1].split(" > ")[1]
    code, out, err = call(*shlex.split(hints[0])[1:])
    assert code == 1 and "no vector matches" not in err, err
    assert f"> {failing} > " in out and "vectors: 0 passed, 1 failed" in out


@pytest.mark.slow
def test_the_stateful_rerun_hint_keeps_the_target_and_the_seed() -> None:
    code, out, _ = call(
        "run", "--target", FINE, "--examples", "5", "--atomicity", "0", "--seed", "7"
    )
    assert code == 0
    hint = re.search(r"stateful model: .*; rerun: (.*)$", out, re.M)
    assert hint, out
    words = shlex.split(hint[1])
    assert words[words.index("--target") + 1] == FINE and words[words.index("--seed") + 1] == "7"
    again = call(*words[1:], "--atomicity", "0")
    assert again[0] == 0 and "(seed 7)" in again[1]


# Skip files.


@pytest.mark.slow
def test_write_skip_says_what_it_wrote_and_its_placeholders_are_rejected(tmp_path: Path) -> None:
    skip = tmp_path / "known.json"
    target = ["run", "--target", BROKEN, "--examples", "0", "--atomicity", "0"]
    code, out, _ = call(*target, "--write-skip", str(skip))
    assert code == 1
    written = re.search(rf"^wrote (\d+) known failures to {re.escape(str(skip))};", out, re.M)
    assert written, out
    document = json.loads(skip.read_text())
    entries = document["known_failures"]
    assert len(entries) == int(written[1])
    assert not list(_data.validator("skip").iter_errors(document))  # only its reasons are wrong
    first = entries[0]["vectors"]

    code, out, _ = call("validate", str(skip))
    assert code == 1
    assert f"{skip}: {first}: the reason is still the placeholder --write-skip wrote" in out
    code, out, err = call(*target, "--skip", str(skip))
    assert code == 2 and out == ""
    assert f"{len(entries)} known failures still have the reason --write-skip wrote ({first}" in err

    for entry in entries:
        entry["reason"] = "our store forgets retention gates (ticket 12)"
    skip.write_text(json.dumps({"known_failures": entries}))
    assert call("validate", str(skip))[0] == 0
    code, out, _ = call(*target, "--skip", str(skip))
    assert code == 0, out[-2000:]


# Targets that cannot start.


@pytest.mark.parametrize(
    "command",
    [f"cmd:{sys.executable} -c pass", "cmd:/nonexistent/actiongate-adapter"],
    ids=["exits-at-once", "does-not-exist"],
)
def test_an_adapter_that_fails_to_start_leaks_no_pipe(command: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = call("run", "--target", command)
        gc.collect()
    assert code == 2 and out == "" and "adapter fault" in err
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_an_adapter_that_exits_at_once_leaks_nothing_under_dev_mode() -> None:
    arguments = ["-X", "dev", "-W", "error::ResourceWarning", "-m", "actiongate_conformance"]
    target = f"cmd:{sys.executable} -c pass"
    finished = subprocess.run(
        [sys.executable, *arguments, "run", "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert "ResourceWarning" not in finished.stderr, finished.stderr
    assert finished.stderr.startswith("actiongate-conformance: error: ")


def test_fakeredis_without_fakeredis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fakeredis", None)
    code, out, err = call("run", "--target", "fakeredis://")
    assert code == 2 and out == ""
    assert "pip install 'actiongate-conformance[test]'" in err, err
    assert "unreachable" not in err and "No module named" not in err


# The suite's own output.


@pytest.mark.slow
def test_no_test_prints_between_pytests_dots() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "ten_thousand",
         "tests/test_linearizability.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout
    assert "operations, 8 threads" not in finished.stdout
