"""An adapter whose port mishandles store faults, in one way chosen by MODE; right otherwise.

Usage: python mishandles_faults.py MODE, with MODE one of
  records     a check under store_fail records its event, then answers STORE_ERROR: the store
              wrote and then reported a failure (breaks ERR-2);
  blocks      a check under store_fail answers BLOCK RATE_LIMIT, whatever on_store_error says:
              the port reads any failure as over the limit (breaks ERR-1);
  errors      a check under store_fail answers the error store_error, not a decision (ERR-3);
  clears      clear and clear_all under store_fail clear anyway and answer ok (CLR-1);
  crashes     a check under store_fail crashes the adapter when its policy fails open and has a
              cooldown: one path of the port, left untested (ERR-3);
  undeclared  right, but declares no capability, so the suite cannot inject faults.
It declares store_faults only (no burst), so the suite's atomicity layer runs its faults alone.
"""

import json
import sys

from actiongate import MemoryStore
from actiongate_conformance.targets.adapter import ReferenceAdapter

mode = sys.argv[1]
adapter = ReferenceAdapter(MemoryStore, name=f"mishandles faults ({mode})")
failing = False  # between store_fail and store_recover (or reset)


def store_error(response, policy):
    """The check's decision rewritten as ERR-1's, as if the store had failed."""
    fail_open = policy["on_store_error"] == "FAIL_OPEN"
    response["decision"].update(
        status="ALLOW" if fail_open else "BLOCK",
        reason="STORE_ERROR",
        message="store error",
        calls_in_window=0,
        time_since_last=None,
    )
    return response


for line in sys.stdin:
    request = json.loads(line)
    op = request.get("op")
    policy = request.get("policy") if isinstance(request.get("policy"), dict) else {}
    fails_open = policy.get("on_store_error") == "FAIL_OPEN"
    if mode == "crashes" and failing and op == "check" and fails_open and policy.get("cooldown"):
        print("TypeError: cannot read the last event of a failed read", file=sys.stderr)
        sys.exit(1)
    if op in ("store_fail", "store_recover", "reset"):
        failing = op == "store_fail"
    if mode == "records" and op in ("store_fail", "store_recover"):
        response = {"id": request["id"], "ok": True}  # the store itself never fails
    elif mode == "records" and failing and op == "check":
        response = adapter.handle(request)  # the event is recorded...
        if "decision" in response:
            response = store_error(response, request["policy"])  # ...then "it failed"
    elif mode == "records" and failing and op in ("clear", "clear_all"):
        error = {"kind": "store_error", "field": None, "message": "store error"}
        response = {"id": request["id"], "error": error}
    elif mode == "clears" and failing and op in ("clear", "clear_all"):
        adapter.handle({"id": 0, "op": "store_recover"})
        response = adapter.handle(request)
        adapter.handle({"id": 0, "op": "store_fail"})
    else:
        response = adapter.handle(request)
    if failing and op == "check" and "decision" in response:
        if mode == "blocks":
            response["decision"].update(status="BLOCK", reason="RATE_LIMIT")
        if mode == "errors":
            error = {"kind": "store_error", "field": None, "message": "the store failed"}
            response = {"id": request["id"], "error": error}
    if op == "hello":
        response["capabilities"] = [] if mode == "undeclared" else ["store_faults"]
    print(json.dumps(response), flush=True)
    if op == "bye":
        break
