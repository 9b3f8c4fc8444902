"""JUnit XML of a run, for CI dashboards: every layer's testcases, so a dashboard is red when
any layer failed (issue 18: a store with no lock gave 152 testcases, 0 failures, and exit 1).

A testsuite per vector file, a testcase per vector; then a testsuite per later layer: the
stateful model (one testcase), the concurrent checks (one), and the injected store faults (one
per fault). A layer that failed fails its testcases with the layer's own explanation; a layer not
run or not checked is one skipped testcase saying why.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..layers.atomicity import AtomicityResult
from ..layers.stateful import StatefulResult
from ..layers.vectors import DECLARED, ERROR, FAIL, SKIP, STALE, Outcome, Report
from .terminal import failure_lines, first_problem, stateful_summary
from .verdict import FAILED, PASSED, Layer, Selection, run_verdict

__all__ = ["junit_xml"]


def junit_xml(
    report: Report,
    target: str,
    stateful: StatefulResult | None = None,
    atomicity: AtomicityResult | None = None,
    *,
    selection: Selection | None = None,
    timings: Mapping[str, float] | None = None,
) -> str:
    """JUnit XML of every layer; ``None`` results are layers not run (as in ``run_verdict``),
    ``timings`` the seconds of each (as in ``json_report``)."""
    verdict = run_verdict(report, stateful, atomicity, selection)
    seconds = dict(timings or {})
    suites = ET.Element("testsuites", name=f"actiongate-conformance {target}")
    _vector_suites(suites, report, target)
    stateful_suite = _suite(suites, "stateful model", seconds.get("stateful"))
    _layer_case(stateful_suite, verdict.layer("stateful"), "stateful", "stateful model", stateful)
    atomicity_suite = _suite(suites, "concurrent checks", seconds.get("atomicity"))
    _layer_case(atomicity_suite, verdict.layer("atomicity"), "atomicity", "linearizability",
                atomicity)  # fmt: skip
    _fault_cases(_suite(suites, "injected store faults"), verdict.layer("faults"), atomicity)
    for suite in suites:
        _count(suite, suite.findall("testcase"))
    _count(suites, suites.findall("testsuite/testcase"))
    if "total" in seconds:
        suites.set("time", f"{seconds['total']:.3f}")
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _vector_suites(suites: ET.Element, report: Report, target: str) -> None:
    """A testsuite per vector file, a testcase per vector."""
    by_file: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in report.outcomes:
        by_file[outcome.vector.file].append(outcome)
    for file, outcomes in by_file.items():
        suite = _suite(suites, file)
        for outcome in outcomes:
            case = _case(suite, file.removesuffix(".json"), outcome.vector.id)
            text = "\n".join(failure_lines(outcome, target))
            if outcome.result in (FAIL, STALE):
                ET.SubElement(case, "failure", message=first_problem(outcome)).text = text
            elif outcome.result == ERROR:
                ET.SubElement(case, "error", message=first_problem(outcome)).text = text
            elif outcome.result in (SKIP, DECLARED):
                ET.SubElement(case, "skipped", message=outcome.reason or outcome.result)


def _layer_case(
    suite: ET.Element,
    layer: Layer,
    classname: str,
    name: str,
    result: StatefulResult | AtomicityResult | None,
) -> None:
    """One testcase for a layer: failing with its explanation, or skipped saying why."""
    case = _case(suite, classname, name)
    if layer.state == PASSED:
        ET.SubElement(case, "system-out").text = layer.text
    elif layer.state != FAILED or result is None:
        ET.SubElement(case, "skipped", message=f"{layer.state}: {layer.reason}")
    elif isinstance(result, StatefulResult):
        _fail(case, layer, stateful_summary(result))
    else:
        # An AtomicityResult's details are the concurrency layer's explanations, then, when the
        # faults failed, the fault layer's report (layers/atomicity.py): that one is not ours.
        details = result.details[:-1] if result.faults_ok is False else result.details
        _fail(case, layer, "\n".join([result.summary().splitlines()[0], *details]))


def _fault_cases(suite: ET.Element, layer: Layer, result: AtomicityResult | None) -> None:
    """A testcase per injected fault (its case, on_store_error or operation, and step)."""
    if layer.state not in (PASSED, FAILED) or result is None:
        _layer_case(suite, layer, "faults", "injected store faults", None)
        return
    failing = 0
    for fault in result.faults:
        how = fault.get("on_store_error") or fault.get("operation", "check")
        case = _case(suite, "faults", f"{fault['case']} ({how}) step {fault['step']}")
        detail = str(fault.get("detail", ""))
        if fault.get("decision_ok") is False or fault.get("nothing_recorded") is False:
            failing += 1
            ET.SubElement(case, "failure", message=detail.splitlines()[0] if detail else
                          "mishandled").text = _fault_text(fault, detail)  # fmt: skip
        else:
            ET.SubElement(case, "system-out").text = detail
    if layer.state == PASSED and not result.faults:
        _layer_case(suite, layer, "faults", "injected store faults", result)
    if layer.state == FAILED and not failing:
        # Failed with no fault mishandled: the cases are wrong with no fault injected (a logic
        # bug), or a check failed before any fault. The fault layer's report says which.
        case = _case(suite, "faults", "the fault cases")
        _fail(case, layer, "\n".join([result.summary().splitlines()[0], *result.details[-1:]]))


def _fault_text(fault: Mapping[str, Any], detail: str) -> str:
    where = ", ".join(
        f"{key} {fault[key]}"
        for key in ("case", "operation", "on_store_error", "step", "now", "injected")
        if fault.get(key) is not None
    )
    return f"{where}\n{detail}"


def _fail(case: ET.Element, layer: Layer, text: str) -> None:
    ET.SubElement(case, "failure", message=f"{layer.name} failed: {layer.reason}").text = text


def _suite(parent: ET.Element, name: str, seconds: float | None = None) -> ET.Element:
    suite = ET.SubElement(parent, "testsuite", name=name)
    if seconds is not None:
        suite.set("time", f"{seconds:.3f}")
    return suite


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name)


def _count(element: ET.Element, cases: list[ET.Element]) -> None:
    """The tallies JUnit readers show, of ``cases``."""
    element.set("tests", str(len(cases)))
    for tally, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        element.set(tally, str(sum(case.find(tag) is not None for case in cases)))
