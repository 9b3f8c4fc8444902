"""A complete ActionGate adapter: the reference engine behind the protocol, in one page.

Run the suite on it:  actiongate-conformance run --target "cmd:python3 examples/python_adapter.py"

A port in another language does the same: read a JSON request per line from stdin, answer one
JSON line on stdout with the request's id. See spec/protocol.schema.json and SEMANTICS.md
section 12.
"""

import json
import math
import sys

from actiongate import (
    Engine,
    Gate,
    InvalidGate,
    InvalidInput,
    InvalidPolicy,
    MemoryStore,
    Policy,
    StoreError,
)

SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# A valid value of every field: with all but one of them, Gate() or Policy() judges that one.
GATE = {"namespace": "", "action": "", "principal": ""}
POLICY = {"max_calls": 0, "window": None, "cooldown": 0, "mode": "HARD",
          "on_store_error": "FAIL_CLOSED"}


def number(value):  # non-finite numbers travel as {"$float": "NaN"}
    return SPECIAL[value["$float"]] if isinstance(value, dict) and "$float" in value else value


def record(value, what, fields, make, invalid):
    """A gate or policy record (ID-4, POL-7), judged in POL-5's order: the record, each field
    in turn (a missing one in its place: a record has no defaults), then unknown members."""
    if not isinstance(value, dict):
        raise invalid(what, f"{what} must be an object, got {json.dumps(value)}")
    for name in fields:
        if name not in value:
            raise invalid(name, f"{what} has no {name}")
        make(**{**fields, name: value[name]})  # raises if this field's value is invalid
    unknown = sorted(set(value) - set(fields))  # str order is code point order
    if unknown:
        raise invalid(unknown[0], f"{what} has no field named {json.dumps(unknown[0])}")
    return make(**value)


def error(kind, field, message):
    return {"error": {"kind": kind, "field": field, "message": message}}


def not_json(name):  # Python's reader takes NaN and Infinity, which are not JSON
    raise ValueError(f"{name} is not JSON")


class FlakyStore(MemoryStore):  # store_fail / store_recover: every operation fails, then works
    failing = False

    def check_and_reserve(self, gate, now, policy):
        self.working()
        return super().check_and_reserve(gate, now, policy)

    def clear(self, gate):
        self.working()
        super().clear(gate)

    def working(self):
        if self.failing:
            raise StoreError("store_fail requested")


def main():
    store, clock = FlakyStore(), [0.0]
    engine = Engine(store, clock=lambda: clock[0])
    for line in sys.stdin:
        try:
            request = json.loads(line, parse_constant=not_json)
        except ValueError:
            request = None
        request_id = request.get("id") if isinstance(request, dict) else None
        if type(request_id) is not int or request_id < 0:  # unreadable: not carried out (ADP-1)
            answer = error("bad_request", None, f"not an object with an id: {line.strip()[:80]}")
            print(json.dumps({"id": None, **answer}), flush=True)
            continue
        op, answer = request.get("op"), {"ok": True}
        try:
            if op == "hello":
                answer = {"protocol": 1, "spec_version": "1.0", "capabilities": ["store_faults"],
                          "implementation": {"name": "python example", "version": "1.0"}}
            elif op == "reset":
                store.failing = False
                store.clear_all()
            elif op == "check":  # validates the gate, the policy, then the time (POL-5)
                gate = record(request.get("gate"), "gate", GATE, Gate, InvalidGate)
                policy = request.get("policy")
                if isinstance(policy, dict):
                    policy = {k: number(v) for k, v in policy.items()}
                policy = record(policy, "policy", POLICY, Policy, InvalidPolicy)
                clock[0] = number(request.get("now"))
                answer = {"decision": engine.check(gate, policy).to_dict()}
            elif op == "clear":  # the gate first, then the store (CLR-3)
                store.clear(record(request.get("gate"), "gate", GATE, Gate, InvalidGate))
            elif op == "clear_all":
                store.working()
                store.clear_all()
            elif op in ("store_fail", "store_recover"):
                store.failing = op == "store_fail"
            elif op == "burst":  # a capability this adapter does not declare
                answer = error("unsupported", None, "no burst capability")
            elif op != "bye":
                answer = error("bad_request", None, f"no op {json.dumps(op)}")
        except InvalidInput as invalid:
            answer = error(invalid.kind, invalid.field, str(invalid))
        except StoreError as failure:  # a clear while the store fails (CLR-1)
            answer = error("store_error", None, str(failure))
        print(json.dumps({"id": request_id, **answer}), flush=True)
        if op == "bye":
            break


if __name__ == "__main__":
    main()
