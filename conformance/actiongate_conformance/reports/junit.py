"""JUnit XML of a run, for CI dashboards."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from ..layers.vectors import DECLARED, ERROR, FAIL, SKIP, STALE, Outcome, Report
from .terminal import failure_lines, first_problem

__all__ = ["junit_xml"]


def junit_xml(report: Report, target: str) -> str:
    """JUnit XML: a testsuite per vector file, a testcase per vector."""
    by_file: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in report.outcomes:
        by_file[outcome.vector.file].append(outcome)
    suites = ET.Element("testsuites", name=f"actiongate-conformance {target}")
    for file, outcomes in by_file.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=file,
            tests=str(len(outcomes)),
            failures=str(sum(o.result in (FAIL, STALE) for o in outcomes)),
            errors=str(sum(o.result == ERROR for o in outcomes)),
            skipped=str(sum(o.result in (SKIP, DECLARED) for o in outcomes)),
        )
        for outcome in outcomes:
            case = ET.SubElement(
                suite, "testcase", classname=file.removesuffix(".json"), name=outcome.vector.id
            )
            text = "\n".join(failure_lines(outcome, target))
            if outcome.result in (FAIL, STALE):
                ET.SubElement(case, "failure", message=first_problem(outcome)).text = text
            elif outcome.result == ERROR:
                ET.SubElement(case, "error", message=first_problem(outcome)).text = text
            elif outcome.result in (SKIP, DECLARED):
                ET.SubElement(case, "skipped", message=outcome.reason or outcome.result)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
