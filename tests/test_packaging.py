"""The wheel carries spec/, vectors/ and SEMANTICS.md, and the installed suite finds them; the
sdist carries what the tests read, so that they pass from an unpacked sdist too (issue 18)."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the tests read, whole: the code, the data, the tests, the examples they run, the docs
# they keep true (the matrix, README's links), README's commands; and the license and changelog.
SDIST_TREES = ("reference", "conformance", "spec", "vectors", "tests", "examples", "docs")
SDIST_FILES = ("pyproject.toml", "README.md", "SEMANTICS.md", "LICENSE", "CHANGELOG.md")
# Files the tests name, so that a tree copied empty cannot pass the check above.
NAMED = (
    "examples/python_adapter.py",
    "examples/ports/javascript/adapter.js",
    "docs/compatibility.md",
    "docs/results/reference-memory.json",
    "docs/authors.md",
    "tests/adapters/broken.py",
    "reference/actiongate/stores/check_and_reserve.lua",
)
# What hatchling leaves out of the sdist by .gitignore, and so the check does too.
IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_data_and_both_packages(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "actiongate_conformance/_data"
    expected = {
        "actiongate/__init__.py",
        "actiongate/py.typed",
        "actiongate/stores/check_and_reserve.lua",
        "actiongate_conformance/py.typed",
        f"{data}/SEMANTICS.md",
        *(f"{data}/spec/{p.name}" for p in (ROOT / "spec").glob("*.json")),
        *(f"{data}/vectors/{p.name}" for p in (ROOT / "vectors").glob("*.json")),
    }
    assert expected <= names, sorted(expected - names)
    assert not any(name.startswith("tests/") for name in names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), sorted(names)


def test_the_installed_suite_finds_its_data_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import actiongate_conformance.data as d, actiongate as a; "
        "print(d.data_root()); print(a.__file__); print(len(d.vector_files()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    data_root, package, count = result.stdout.split("\n")[:3]
    assert data_root.startswith(str(site)), data_root
    assert package.startswith(str(site)), package
    assert int(count) == len(list((ROOT / "vectors").glob("*.json")))
    run = subprocess.run(
        [sys.executable, "-m", "actiongate_conformance", "run"],
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, built by the backend's PEP 517 hook, as ``python -m build --sdist`` does."""
    out = tmp_path_factory.mktemp("sdist")
    code = "import sys, hatchling.build as b; print(b.build_sdist(sys.argv[1]))"
    subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.tar.gz")
    return built


def test_the_sdist_holds_what_the_tests_read(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {*SDIST_FILES, *NAMED}
    for tree in SDIST_TREES:
        expected |= {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / tree).rglob("*")
            if path.is_file()
            and not IGNORED & set(path.relative_to(ROOT).parts)
            and path.suffix != ".pyc"
        }
    assert expected <= names, sorted(expected - names)
    with tarfile.open(sdist) as archive:
        (pkg_info,) = [m for m in archive.getmembers() if m.name.endswith("/PKG-INFO")]
        metadata = archive.extractfile(pkg_info).read().decode()  # type: ignore[union-attr]
    # License-Expression from hatchling 1.27 (PEP 639); License before it.
    assert re.search(r"^License(-Expression)?: Apache-2.0$", metadata, re.M), metadata[:800]
    assert "License-File: LICENSE" in metadata, metadata[:800]
