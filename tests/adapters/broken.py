"""A deliberately broken adapter: correct until a check outside the smoke test, then MODE.

Usage: python broken.py MODE, with MODE one of crash, hang, garbage, bad_decision, wrong_id,
wrong_protocol, always_allow, noisy (correct, but chatty on stderr), racy (a store that reads,
yields, then writes: right one check at a time, wrong under the burst capability), lenient
(validates nothing: decides on any input and echoes it, as upstream 0.3.0 does), rejects (answers
every check with an error, the smoke check's included).
"""

import json
import sys
import time
from pathlib import Path

from actiongate import MemoryStore
from actiongate_conformance.targets.adapter import ReferenceAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.*
from tests.broken_stores import ReadThenWriteStore

mode = sys.argv[1]
store = ReadThenWriteStore if mode == "racy" else MemoryStore
adapter = ReferenceAdapter(store, name=f"broken ({mode})")
PLAIN_ALLOW = {
    "schema_version": "1.0",
    "status": "ALLOW",
    "reason": None,
    "message": None,
    "calls_in_window": 1,
    "time_since_last": None,
}

for line in sys.stdin:
    request = json.loads(line)
    response = adapter.handle(request)
    if request["op"] == "hello" and mode == "wrong_protocol":
        response["protocol"] = 99
    gate = request.get("gate")
    smoke = isinstance(gate, dict) and gate.get("namespace") == "actiongate-conformance"
    if request["op"] == "check" and mode == "rejects":
        error = {"kind": "invalid_policy", "field": "window", "message": "window?"}
        response = {"id": request["id"], "error": error}
    if request["op"] == "check" and mode == "lenient" and "error" in response:
        echoes = {key: request[key] for key in ("gate", "policy", "now")}
        response = {"id": request["id"], "decision": {**PLAIN_ALLOW, **echoes}}
    if request["op"] == "check" and mode == "always_allow" and "decision" in response:
        response["decision"].update(status="ALLOW", reason=None, calls_in_window=1)
    if request["op"] == "check" and not smoke:
        if mode == "crash":
            print("about to crash: out of cheese", file=sys.stderr, flush=True)
            sys.exit(3)
        if mode == "hang":
            time.sleep(3600)
        if mode == "garbage":
            print("Segmentation fault (core dumped)", flush=True)
            continue
        if mode == "bad_decision" and "decision" in response:
            response["decision"]["calls_in_window"] = -1
        if mode == "wrong_id":
            response["id"] += 1
        if mode == "noisy":
            print(f"debug: handled {request['id']}", file=sys.stderr, flush=True)
    print(json.dumps(response), flush=True)
    if request["op"] == "bye":
        break
