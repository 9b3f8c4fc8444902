"""actiongate-conformance report: the compatibility matrix, read back as a browser would."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from actiongate import Gate, Policy
from actiongate_conformance import data as _data
from actiongate_conformance.cli import run
from actiongate_conformance.reports.matrix import LAYERS

from .broken_stores import ListStore


class NoCooldown(ListStore):
    """Ignores the cooldown: every CD vector that needs a cooldown BLOCK fails."""

    def cooling(self, gate: Gate, since: float | None, policy: Policy) -> bool:
        return False


def call(*arguments: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(list(arguments), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A conforming report with every layer, and a failing one without the later layers."""
    folder = tmp_path_factory.mktemp("reports")
    paths = {"reference": folder / "reference.json", "no-cooldown": folder / "no-cooldown.json"}
    code, out, err = call(
        "run", "--seed", "3", "--examples", "20", "--atomicity", "200",
        "--json", str(paths["reference"]), "--emit", str(folder),
    )  # fmt: skip
    assert code == 0, out + err
    code, out, err = call(
        "run", "--target", "py:tests.test_matrix:NoCooldown", "--examples", "0",
        "--atomicity", "0", "--json", str(paths["no-cooldown"]),
    )  # fmt: skip
    assert code == 1, out + err
    return paths


class Page(HTMLParser):
    """What a reader of the page sees: ids, links, the matrix's header, rows and cells."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.header: list[str] = []
        self.rows: list[tuple[str, list[tuple[str, list[str]]]]] = []
        self._in_matrix = self._in_head = False
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.add(tag)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        for name in ("href", "src"):
            if attributes.get(name):
                self.links.append(str(attributes[name]))
        if tag == "table" and attributes.get("id") == "matrix":
            self._in_matrix = True
        if not self._in_matrix:
            return
        if tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self.rows.append((str(attributes["id"]), []))
        elif tag == "th" and self._in_head:
            self._text = []
        elif tag == "td":
            self.rows[-1][1].append((str(attributes["class"]), []))
        elif tag == "a" and self.rows and self.rows[-1][1]:
            self.rows[-1][1][-1][1].append(str(attributes["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._in_matrix = False
        elif tag == "th" and self._text is not None:
            self.header.append("".join(self._text))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def failing_ids(report: Path, clause: str) -> list[str]:
    document: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return [
        vector["id"]
        for vector in document["vectors"]
        if clause in vector["clauses"] and vector["result"] in ("fail", "error")
    ]


def test_the_page_links_every_failing_cell_to_its_vectors(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    html_file = tmp_path / "matrix.html"
    code, out, err = call(
        "report", str(reports["reference"]), str(reports["no-cooldown"]),
        "--label", "reference", "--label", "no cooldown", "--html", str(html_file),
    )  # fmt: skip
    assert code == 0, out + err
    page = Page()
    page.feed(html_file.read_text(encoding="utf-8"))

    assert page.header == ["clause", "reference", "no cooldown"]
    assert [row_id for row_id, _ in page.rows] == [
        f"row-{key}" for key in (*_data.clause_ids(), *(key for key, _ in LAYERS))
    ]
    # Self-contained: no script, no stylesheet or image fetched, every link inside the page.
    assert not page.tags & {"script", "link", "img", "iframe"}
    assert all(link.startswith("#") and link[1:] in page.ids for link in page.links)

    states = {row_id.removeprefix("row-"): cells for row_id, cells in page.rows}
    assert all(state == "pass" for cells in states.values() for state, _ in cells[:1])
    for clause in _data.clause_ids():
        state, links = states[clause][1]
        expected = failing_ids(reports["no-cooldown"], clause)
        assert state == ("fail" if expected else "pass"), clause
        assert links == [f"#c1-{vector}" for vector in expected], clause
    assert states["CD-1"][1][0] == "fail"
    # The failing report ran neither the model nor the concurrent checks: not run, not pass.
    assert {state for state, _ in (cells[1] for key, cells in states.items() if key in
            dict(LAYERS))} == {"not-run"}  # fmt: skip


def test_markdown_cells_link_to_headings_that_exist(reports: dict[str, Path]) -> None:
    code, out, err = call(
        "report", str(reports["reference"]), str(reports["no-cooldown"]),
        "--label", "reference, memory", "--label", "no cooldown",
    )  # fmt: skip
    assert code == 0, err
    table = [line for line in out.splitlines() if line.startswith("| **")]
    assert len(table) == len(_data.clause_ids()) + len(LAYERS)
    headings = {
        re.sub(r"[^\w\- ]", "", line[4:].lower()).replace(" ", "-")
        for line in out.splitlines()
        if line.startswith("### ")
    }
    anchors = set(re.findall(r"\]\(#([^)]+)\)", out))
    assert anchors == {"no-cooldown"} and anchors <= headings
    cd1 = next(line for line in table if line.startswith("| **CD-1**"))
    total = len(json.loads(reports["no-cooldown"].read_text())["vectors"])
    assert "✅ pass | [❌" in cd1 and total > 0
    for vector in failing_ids(reports["no-cooldown"], "CD-1"):
        assert f"| `{vector}` |" in out


def test_a_readme_gets_the_table_between_its_markers(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\nbefore\n<!-- compatibility-matrix -->\nold table\n"
        "<!-- /compatibility-matrix -->\nafter\n",
        encoding="utf-8",
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    code, _, err = call(
        "report", str(reports["reference"]), str(reports["no-cooldown"]), "--label", "ref",
        "--label", "broken", "--md", str(readme), "--md", str(docs / "matrix.md"),
    )  # fmt: skip
    assert code == 0, err
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nbefore\n<!-- compatibility-matrix -->\n| clause |")
    assert text.endswith("<!-- /compatibility-matrix -->\nafter\n")
    assert "old table" not in text and "](docs/matrix.md#broken)" in text
    assert "### broken" not in text  # the details stay in the whole document
    assert "### broken" in (docs / "matrix.md").read_text(encoding="utf-8")


def test_bad_reports_are_named(reports: dict[str, Path], tmp_path: Path) -> None:
    not_a_report = tmp_path / "decision.json"
    not_a_report.write_text('{"status": "ALLOW"}', encoding="utf-8")
    code, _, err = call("report", str(not_a_report))
    assert code == 2 and f"{not_a_report}: not a run report" in err
    code, _, err = call("report", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json: cannot read as JSON" in err
    code, _, err = call("report", str(reports["reference"]), str(reports["reference"]))
    assert code == 2 and "not unique; give each report its own --label" in err
    code, _, err = call("report", str(reports["reference"]), "--label", "a", "--label", "b")
    assert code == 2 and "2 labels for 1 reports" in err


def test_a_lone_surrogate_in_a_mismatch_is_written_as_its_escape(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    # A vector about ID-3 sends "\ud800"; an implementation that echoes it back must not
    # make the matrix unwritable (no encoding can write a lone surrogate).
    document = json.loads(reports["reference"].read_text(encoding="utf-8"))
    vector = next(
        v for v in document["vectors"] if v["id"] == "identity-invalid-gate-lone-surrogate"
    )
    vector.update(
        result="fail",
        step=0,
        mismatches=[
            {"field": "response", "expected": {"error": "invalid_gate"}, "actual": {"x": "\ud800"}}
        ],
    )
    bad = tmp_path / "surrogate.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    md, html_file = tmp_path / "m.md", tmp_path / "m.html"
    code, _, err = call("report", str(bad), "--md", str(md), "--html", str(html_file))
    assert code == 0, err
    for path in (md, html_file):
        assert 'got {"x": "\\ud800"}' in path.read_text(encoding="utf-8").replace("&quot;", '"')


def test_a_logic_bug_reads_as_one_not_as_a_race(tmp_path: Path) -> None:
    # A store off by one in its rate limit fails the concurrent checks too, but it is wrong one
    # check at a time: the matrix must not send its author hunting for a race.
    report, table = tmp_path / "off-by-one.json", tmp_path / "matrix.md"
    code, out, err = call(
        "run", "--target", "py:tests.mutants.stores:OffByOneRateLimit", "--examples", "0",
        "--seed", "3", "--json", str(report),
    )  # fmt: skip
    assert code == 1, out + err
    code, out, err = call("report", str(report), "--label", "off-by-one", "--md", str(table))
    assert code == 0, out + err
    text = table.read_text("utf-8")
    assert "wrong one check at a time (a logic bug, not a race)" in text
    assert "wrong with no fault injected (a logic bug)" in text
    assert "not linearizable" not in text


def test_a_run_of_chosen_vectors_shows_partly_run_clauses_as_partial(tmp_path: Path) -> None:
    # Issue 18: a clause of which 1 of 4 vectors ran showed as pass.
    report, html_file = tmp_path / "ret-1.json", tmp_path / "matrix.html"
    code, out, err = call("run", "--select", "RET-1", "--json", str(report))
    assert code == 0, out + err
    code, out, err = call("report", str(report), "--label", "RET-1 only", "--html", str(html_file))
    assert code == 0, out + err
    page = Page()
    page.feed(html_file.read_text(encoding="utf-8"))
    states = {row_id.removeprefix("row-"): cells[0][0] for row_id, cells in page.rows}
    assert states["RET-1"] == "pass"  # every RET-1 vector ran
    assert states["RET-2"] == "partial"  # some RET-2 vectors cite RET-1 too, not all
    assert states["POL-1"] == "not-run"
    assert {states[key] for key, _ in LAYERS} == {"not-run"}
    assert "RET-1 only" in page.header and "partial (" in html_file.read_text(encoding="utf-8")
