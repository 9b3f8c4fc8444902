"""Every shell command README.md gives works as written (issue 18).

The commands are the lines of README's ```sh blocks, and inline code that starts with
``actiongate-conformance`` (README gives ``report`` in running text). Each runs under ``sh -c``,
with a timeout, in a temporary directory holding a copy of the files a clone has at its root,
so that no command can write into the checkout. Nothing is rewritten silently: a command that
cannot run here is skipped for a reason declared in the tables below, and one that README gets
wrong is a strict xfail naming the README text that fixes it. A test holds the tables to README,
so that none outlives the line it is about.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# What a command may read, as a clone has it at its root.
CLONE = ("vectors", "spec", "docs", "examples", "SEMANTICS.md", "README.md")
TIMEOUT = 300  # seconds a command may take; the longest, --examples 2000, took 30 to 80 here

# Text that stands for the reader's own program, module or file: a command holding one is an
# example to adapt, and is not run.
PLACEHOLDERS = {
    "py:mypackage.stores:make": "your store's factory",
    "cmd:./my-port --adapter": "your port's adapter",
    "--target ...": "your target",
    "--target TARGET": "each mutant's target: tests/test_mutation_zoo.py runs them",
    "found/stateful-1a2b3c4d5e6f.json": "the file a stateful counterexample is written to, when a "
    "run finds one",
}
# A first step that the test run has taken already: the rest of the command runs.
DONE = {
    "python3 -m pip install -e '.[dev]' && ": "the editable install these tests run in (.ci/run "
    "makes it on a fresh machine)",
}
# Commands (after DONE) that must not run here, and why.
NOT_HERE = {
    "python3 -m pytest": "the project's whole test suite, this test included; .ci/run runs it",
}
# Commands that need a program the machine may not have, by the text that names it.
NEEDS = {"cmd:node ": "node"}
# Files a command reads that an earlier README command writes: that command runs first when the
# file is not there yet (a command run alone, -k).
WRITTEN_BY = {
    "mine.json": "actiongate-conformance run --json mine.json",
    "report.json": "actiongate-conformance run --json report.json --junit junit.xml",
}


def _without_comment(line: str) -> str:
    """The line up to a ``#`` that starts a shell comment (after a blank, outside quotes)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def readme_commands(text: str) -> list[str]:
    """README's commands in order, each once: ```sh lines, then inline actiongate-conformance."""
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        commands += [_without_comment(line) for line in block.splitlines()]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for span in re.findall(r"`(actiongate-conformance\s[^`]*)`", prose):  # not the bare name
        commands.append(" ".join(span.split()))  # a span may wrap across lines
    return list(dict.fromkeys(command for command in commands if command))


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def _runnable(command: str) -> str:
    for step in DONE:
        if command.startswith(step):
            return command[len(step) :]
    return command


def _param(command: str) -> object:
    marks: list[pytest.MarkDecorator] = [pytest.mark.slow]
    placeholder = next((text for text in PLACEHOLDERS if text in command), None)
    if placeholder is not None:
        why = PLACEHOLDERS[placeholder]
        marks.append(pytest.mark.skip(reason=f"{placeholder!r} stands for {why}"))
    elif _runnable(command) in NOT_HERE:
        marks.append(pytest.mark.skip(reason=NOT_HERE[_runnable(command)]))
    for text, program in NEEDS.items():
        if text in command:
            reason = f"needs {program}, which is not installed (.ci/run installs it)"
            marks.append(pytest.mark.skipif(shutil.which(program) is None, reason=reason))
    return pytest.param(command, marks=marks, id=command)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a copy of what a clone holds at its root, shared by the commands."""
    root = tmp_path_factory.mktemp("clone")
    for name in CLONE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return root


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The interpreter running these tests comes first, with its console script.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        ["sh", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


# A command README gives twice, once after a DONE step, runs once: the first time.
RUN_ONCE: dict[str, str] = {}
for _command in COMMANDS:
    RUN_ONCE.setdefault(_runnable(_command), _command)


@pytest.mark.parametrize("command", [_param(command) for command in RUN_ONCE.values()])
def test_the_readme_command_works_as_written(command: str, clone: Path) -> None:
    for name, producer in WRITTEN_BY.items():
        mentioned = re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w.-])", command)
        if mentioned and command != producer and not (clone / name).exists():
            made = run(producer, clone)
            assert made.returncode == 0, f"{producer} exited {made.returncode}"
    result = run(_runnable(command), clone)
    assert result.returncode == 0, (
        f"{command}\nexited {result.returncode}\n"
        f"stdout: ...{result.stdout[-1500:]}\nstderr: ...{result.stderr[-1500:]}"
    )


def test_the_tables_name_readme_commands() -> None:
    assert len(COMMANDS) >= 10, COMMANDS  # the extraction found README's commands
    runnable = {_runnable(command) for command in COMMANDS}
    unused = [text for text in PLACEHOLDERS if not any(text in c for c in COMMANDS)]
    assert not unused, f"no README command holds the placeholders {unused}: remove them"
    assert set(NOT_HERE) <= runnable, "a NOT_HERE command is no longer in README: remove it"
    assert set(WRITTEN_BY.values()) <= set(COMMANDS), "WRITTEN_BY names a command README lacks"


def test_commands_are_read_as_a_shell_reads_them() -> None:
    text = (
        "```sh\nactiongate-conformance list   # clauses\n"
        "actiongate-conformance run --select 'RET-*' --target \"cmd:a # b\"\n\n```\n"
        "The `actiongate-conformance` command: `actiongate-conformance\nreport a.json`, not "
        "`python3 x.py`.\n"
        "```sh\nactiongate-conformance list\n```\n"
    )
    assert readme_commands(text) == [
        "actiongate-conformance list",
        "actiongate-conformance run --select 'RET-*' --target \"cmd:a # b\"",
        "actiongate-conformance report a.json",
    ]
