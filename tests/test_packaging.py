"""The wheel carries spec/, vectors/ and SEMANTICS.md, and the installed suite finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
