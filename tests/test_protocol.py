"""cmd: targets end to end: the example adapter passes; broken adapters are reported as such."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from actiongate_conformance import data as _data
from actiongate_conformance.cli import run
from actiongate_conformance.data.vectors import ExpectedError, load_all, select
from actiongate_conformance.targets.messages import (
    plainly_valid_decision,
    plainly_valid_reply,
    response_errors,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = f"cmd:{sys.executable} {ROOT / 'examples' / 'python_adapter.py'}"
BROKEN = f"cmd:{sys.executable} {ROOT / 'tests' / 'adapters' / 'broken.py'}"
TWO = ["--select", "rate-max-calls-one", "--select", "rate-max-calls-zero-blocks-every-check"]


VECTORS = sum(len(vector_file.vectors) for vector_file in load_all())


def call(*arguments: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(list(arguments), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_the_example_adapter_passes_every_vector_over_the_protocol() -> None:
    code, out, err = call("run", "--target", EXAMPLE, "--examples", "20", "--seed", "1")
    assert code == 0, out[-3000:] + err
    assert f"vectors: {VECTORS} passed, 0 failed" in out
    assert "(python example)" in out


# The reference's own adapter, reading raw lines as the project's cmd: test adapters may.
REFERENCE_LINES = (
    "import json, sys\n"
    "from actiongate import MemoryStore\n"
    "from actiongate_conformance.targets.adapter import ReferenceAdapter\n"
    "adapter = ReferenceAdapter(MemoryStore)\n"
    "for line in sys.stdin:\n"
    "    print(json.dumps(adapter.handle_line(line)), flush=True)\n"
)
ADAPTERS = [
    pytest.param([sys.executable, "-c", REFERENCE_LINES], id="reference"),
    pytest.param([sys.executable, str(ROOT / "examples" / "python_adapter.py")], id="python"),
    pytest.param(
        ["node", str(ROOT / "examples" / "ports" / "javascript" / "adapter.js")],
        id="javascript",
        marks=pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH"),
    ),
]


@pytest.mark.parametrize("command", ADAPTERS)
def test_a_line_the_adapter_cannot_read_is_answered_with_id_null(command: list[str]) -> None:
    # ADP-1: not JSON, not an object, no usable id: id null and bad_request, nothing carried
    # out, and the adapter reads on. A lone surrogate's escape is JSON, so that line is readable.
    gate = {"namespace": "adp", "action": "lines", "principal": "p"}
    policy = {"max_calls": 1, "window": 60, "cooldown": 0}
    policy |= {"mode": "HARD", "on_store_error": "FAIL_CLOSED"}
    check = {"op": "check", "gate": gate, "policy": policy, "now": 0}
    hello = {"id": 0, "op": "hello", "protocol": 1, "spec_version": "1.0"}
    hello["suite"] = {"name": "test", "version": "0"}
    unreadable = [
        "Segmentation fault",
        '{"id": 9, "op": "check", "gate": ',
        "NaN",
        "[1, 2]",
        json.dumps(check),  # no id: a check that must not be carried out
        json.dumps({**check, "id": -1}),
        json.dumps({**check, "id": "7"}),
    ]
    lines = [
        json.dumps(hello),
        *unreadable,
        json.dumps({**check, "id": 1, "gate": {**gate, "namespace": "\ud800"}}),
        json.dumps({**check, "id": 2}),
        json.dumps({"id": 3, "op": "bye"}),
    ]
    result = subprocess.run(
        command, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    responses = [json.loads(line) for line in result.stdout.splitlines()]
    assert [response["id"] for response in responses] == [0, *[None] * len(unreadable), 1, 2, 3]
    for response in responses:
        assert response_errors(response) == [], response
    for response in responses[1 : 1 + len(unreadable)]:
        assert response["error"]["kind"] == "bad_request" and response["error"]["field"] is None
    rejected = responses[-3]["error"]  # the lone surrogate's line: readable, ID-3 rejects it
    assert (rejected["kind"], rejected["field"]) == ("invalid_gate", "namespace")
    # The check without an id recorded nothing: under max_calls 1 this one is allowed.
    assert responses[-2]["decision"]["status"] == "ALLOW"


@pytest.mark.parametrize(
    ("mode", "fault", "detail"),
    [
        ("crash", "crashed", "about to crash: out of cheese"),
        ("hang", "timeout", "no response within 0.5 s"),
        ("garbage", "not_json", "Segmentation fault (core dumped)"),
        ("wrong_id", "wrong_id", "expected id"),
    ],
)
def test_a_broken_adapter_is_reported_as_an_adapter_fault_within_the_timeout(
    mode: str, fault: str, detail: str
) -> None:
    started = time.monotonic()
    code, out, err = call("run", "--target", f"{BROKEN} {mode}", "--timeout", "0.5", *TWO)
    assert time.monotonic() - started < 10
    assert code == 1, out + err
    assert out.count(f"adapter fault ({fault})") == 2, out  # restarted after the first
    assert detail in out
    assert '"op": "check"' in out  # the request that was sent
    assert "vectors: 0 passed, 0 failed, 2 adapter faults" in out


def test_a_decision_on_input_the_spec_rejects_is_a_wrong_answer_not_an_adapter_fault() -> None:
    # Its echoes (a NaN window, a number for a gate field) cannot match the decision schema,
    # yet the adapter answered: the runner compares the answer with the expected error.
    code, out, err = call("run", "--target", f"{BROKEN} lenient", "--select", "POL-*")
    assert code == 1, out + err
    assert "adapter fault" not in out
    # Every POL-* vector with a check that expects a rejection fails; the others pass.
    rejecting = [
        vector
        for vector in select(load_all(), ["POL-*"])
        if any(
            isinstance(step.expect, ExpectedError) for step in vector.steps if step.op == "check"
        )
    ]
    assert len(rejecting) >= 30
    assert re.search(rf"vectors: [0-9]+ passed, {len(rejecting)} failed\n", out), out[-500:]


def test_a_decision_that_breaks_its_schema_is_a_wrong_answer_naming_the_field() -> None:
    code, out, err = call("run", "--target", f"{BROKEN} bad_decision", *TWO)
    assert code == 1, out + err
    assert "adapter fault" not in out
    assert "calls_in_window: expected 1, got -1" in out
    assert 'record: expected "a record of decision.schema.json", got' in out
    assert f"rerun: actiongate-conformance run --target '{BROKEN} bad_decision' --select" in out
    assert "$.decision.calls_in_window: -1 is less than the minimum of 0" in out


def test_a_noisy_but_correct_adapter_conforms() -> None:
    code, out, _ = call("run", "--target", f"{BROKEN} noisy", *TWO)
    assert code == 0, out


def test_an_adapter_speaking_another_protocol_is_stopped_with_exit_2() -> None:
    code, out, err = call("run", "--target", f"{BROKEN} wrong_protocol")
    assert code == 2
    assert "must speak protocol 1" in err
    assert out == ""


def test_a_smoke_check_failure_blames_the_adapter_not_the_engine() -> None:
    code, out, err = call("run", "--target", f"{BROKEN} rejects")
    assert code == 2
    assert "smoke check failed on a valid check under max_calls 1" in err
    assert "instead of a decision" in err and "does not carry a check through" in err
    assert out == ""


def test_wrong_decisions_are_the_engines_and_get_a_verdict() -> None:
    # An ALLOW under max_calls 0 is a wrong answer, however simple: exit 1 with the vectors
    # that show it, not "the adapter is broken".
    code, out, err = call("run", "--target", f"{BROKEN} always_allow", *TWO)
    assert code == 1, err
    assert "FAIL rate.json > rate-max-calls-zero-blocks-every-check > step 0" in out


def test_a_command_that_does_not_exist_is_exit_2() -> None:
    code, _, err = call("run", "--target", "cmd:/nonexistent/adapter --flag")
    assert code == 2
    assert "cannot start '/nonexistent/adapter'" in err


def test_reports_match_their_schemas(tmp_path: Path) -> None:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    code, _, _ = call(
        "run", "--target", f"{BROKEN} garbage", *TWO, "--json", str(report), "--junit", str(junit)
    )
    assert code == 1
    document = json.loads(report.read_text())
    errors = list(_data.validator("report").iter_errors(document))
    assert not errors, errors
    assert document["verdict"] == "not_conforming"
    assert document["implementation"]["name"] == "broken (garbage)"
    assert document["counts"]["error"] == 2
    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites"
    assert len(suites.findall("./testsuite/testcase/error")) == 2


def test_a_passing_run_report_matches_its_schema(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    assert call("run", "--json", str(report), "--examples", "20", "--seed", "3")[0] == 0
    document = json.loads(report.read_text())
    assert not list(_data.validator("report").iter_errors(document))
    assert document["verdict"] == "conforming"
    assert document["stateful"]["passed"] is True
    assert document["stateful"]["seed"] == 3
    assert document["vectors_digest"].startswith("sha256:")
    assert {c["clause"] for c in document["clauses"]} == set(_data.clause_ids())


def test_declared_failures_pass_the_verdict_and_stale_ones_fail_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buggy = tmp_path / "buggy_store.py"
    buggy.write_text(
        "from actiongate import MemoryStore\n"
        "class OffByOne(MemoryStore):\n"
        "    def check_and_reserve(self, gate, now, policy):\n"
        "        count, allowed, age = super().check_and_reserve(gate, now, policy)\n"
        "        if allowed and count > 1:\n"
        "            return count - 1, allowed, age\n"
        "        return count, allowed, age\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    target = ["run", "--target", "py:buggy_store:OffByOne", "--examples", "0", "--atomicity", "0"]
    skip = tmp_path / "skip.json"
    code, out, _ = call(*target, "--write-skip", str(skip))
    assert code == 1
    written = json.loads(skip.read_text())
    assert not list(_data.validator("skip").iter_errors(written))
    declared = len(written["known_failures"])
    assert declared > 10
    for entry in written["known_failures"]:  # --skip takes only explained failures
        entry["reason"] = "the store counts one call short"
    skip.write_text(json.dumps(written))
    code, out, _ = call(*target, "--skip", str(skip))
    assert code == 0, out[-2000:]
    assert f"vectors: {VECTORS - declared} passed, 0 failed, {declared} declared" in out
    written["known_failures"].append({"vectors": "rate-max-calls-one", "reason": "thought so"})
    skip.write_text(json.dumps(written))
    code, out, _ = call(*target, "--skip", str(skip))
    assert code == 1
    assert "STALE rate.json > rate-max-calls-one" in out
    assert "remove it from the skip file" in out


def test_a_malformed_skip_file_is_exit_2(tmp_path: Path) -> None:
    skip = tmp_path / "skip.json"
    skip.write_text(json.dumps({"known_failures": [{"vectors": "x"}]}))
    code, _, err = call("run", "--skip", str(skip), "--examples", "0")
    assert code == 2
    assert "skip.json: does not match skip.schema.json" in err


numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-3, 3))
valid_decisions = st.fixed_dictionaries(
    {
        "schema_version": st.just("1.0"),
        "status_reason": st.sampled_from(
            [
                ("ALLOW", None),
                ("ALLOW", "STORE_ERROR"),
                ("BLOCK", "RATE_LIMIT"),
                ("BLOCK", "COOLDOWN"),
                ("BLOCK", "STORE_ERROR"),
            ]
        ),
        "message": st.one_of(st.none(), st.text(max_size=3)),
        "gate": st.fixed_dictionaries(
            {k: st.text(max_size=2) for k in ("namespace", "action", "principal")}
        ),
        "policy": st.fixed_dictionaries(
            {
                "max_calls": st.integers(0, 2**53 - 1),
                "window": st.one_of(st.none(), st.floats(min_value=5e-324, max_value=1e300)),
                "cooldown": st.floats(min_value=0, max_value=1e300),
                "mode": st.sampled_from(["HARD", "SOFT"]),
                "on_store_error": st.sampled_from(["FAIL_CLOSED", "FAIL_OPEN"]),
            }
        ),
        "calls_in_window": st.integers(0, 2**53),
        "time_since_last": st.one_of(st.none(), numbers),
        "now": st.floats(min_value=-(2.0**53), max_value=2.0**53),
    }
)
# (where, bad value): one or two of these spoil an otherwise plausible record.
spoilers = st.sampled_from(
    [
        ((), "schema_version", "0.2.2"),
        ((), "calls_in_window", -1),
        ((), "calls_in_window", True),
        ((), "calls_in_window", 1.0),
        ((), "calls_in_window", 2**53 + 1),
        ((), "time_since_last", "0"),
        ((), "now", 2.0**53 + 2),
        ((), "now", True),
        ((), "message", 3),
        ((), "extra", 1),
        (("gate",), "namespace", None),
        (("gate",), "extra", "x"),
        (("policy",), "max_calls", True),
        (("policy",), "max_calls", -1),
        (("policy",), "max_calls", 2**53),
        (("policy",), "window", 0),
        (("policy",), "window", -1.5),
        (("policy",), "cooldown", -0.5),
        (("policy",), "cooldown", None),
        (("policy",), "mode", "hard"),
        (("policy",), "on_store_error", None),
        ((), "status", "MAYBE"),
        ((), "reason", "OTHER"),
    ]
)


@settings(max_examples=1000)
@given(valid_decisions, st.lists(spoilers, max_size=2))
def test_the_fast_decision_check_never_accepts_what_the_schema_rejects(
    parts: dict,
    spoiled: list,  # type: ignore[type-arg]
) -> None:
    decision = dict(parts)
    decision["status"], decision["reason"] = decision.pop("status_reason")
    decision["gate"], decision["policy"] = dict(decision["gate"]), dict(decision["policy"])
    for where, key, value in spoiled:
        (decision[where[0]] if where else decision)[key] = value
    schema_valid = not list(_data.validator("decision").iter_errors(decision))
    if plainly_valid_decision(decision):
        assert schema_valid, decision


RESPONSE_SCHEMA = Draft202012Validator(
    {"$ref": "urn:actiongate:schema:protocol:1#/$defs/response"}, registry=_data.schema_registry()
)
json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2**64), st.floats(), st.text(max_size=3)
)
ERROR_KINDS = ("invalid_gate", "invalid_policy", "invalid_time", "store_error", "unsupported")
valid_replies = st.one_of(
    st.fixed_dictionaries({"id": st.integers(0, 2**53), "ok": st.just(True)}),
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 2**53),
            "error": st.fixed_dictionaries(
                {
                    "kind": st.sampled_from([*ERROR_KINDS, "bad_request"]),
                    "field": st.one_of(st.none(), st.text(max_size=3)),
                    "message": st.text(max_size=3),
                }
            ),
        }
    ),
)
# Where (the reply, or its error), which key, and a value to put there.
reply_spoilers = st.tuples(
    st.booleans(),
    st.sampled_from(["id", "ok", "error", "decision", "kind", "field", "message", "extra"]),
    st.one_of(json_values, st.sampled_from(["other", "BAD_REQUEST", ""]), st.just(True)),
)


@settings(max_examples=1000)
@given(valid_replies, st.lists(reply_spoilers, max_size=2))
def test_the_fast_reply_check_never_accepts_what_the_schema_rejects(
    reply: dict,  # type: ignore[type-arg]
    spoiled: list,  # type: ignore[type-arg]
) -> None:
    reply = {key: dict(value) if type(value) is dict else value for key, value in reply.items()}
    for inside_error, key, value in spoiled:
        place = reply.get("error") if inside_error else reply
        if type(place) is dict:
            place[key] = value
    if plainly_valid_reply(reply):
        assert not list(RESPONSE_SCHEMA.iter_errors(reply)), reply


def test_the_fast_reply_check_takes_the_common_replies() -> None:
    assert plainly_valid_reply({"id": 3, "ok": True})
    assert plainly_valid_reply(
        {"id": 0, "error": {"kind": "invalid_gate", "field": "namespace", "message": "empty"}}
    )
    assert not plainly_valid_reply({"id": True, "ok": True})
    assert not plainly_valid_reply({"id": None, "error": {"kind": "bad_request"}})


def test_a_port_with_the_burst_capability_has_its_atomicity_checked() -> None:
    code, out, _ = call("run", "--target", f"{BROKEN} noisy", "--examples", "0")
    assert code == 0, out[-2000:]
    assert "atomicity: 2000 concurrent checks linearizable; 18 injected store faults" in out
    assert "(40 bursts of 50 checks run by the port" in out


def test_a_port_whose_store_is_not_atomic_fails_by_its_bursts() -> None:
    code, out, _ = call("run", "--target", f"{BROKEN} racy", "--examples", "0")
    assert code == 1
    assert f"vectors: {VECTORS} passed, 0 failed" in out  # one check at a time it is right
    assert "concurrent checks NOT LINEARIZABLE" in out


def test_a_port_without_bursts_is_reported_as_not_checked() -> None:
    code, out, _ = call("run", "--target", EXAMPLE, "--examples", "0")
    assert code == 0
    assert "atomicity: concurrent checks not checked; 18 injected store faults handled" in out
    assert "the port does not declare the burst capability" in out
