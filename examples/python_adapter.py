"""A complete ActionGate adapter: the reference engine behind the protocol, in one page.

Run the suite on it:  actiongate-conformance run --target "cmd:python3 examples/python_adapter.py"

A port in another language does the same: read a JSON request per line from stdin, answer one
JSON line on stdout with the request's id. See spec/protocol.schema.json.
"""

import json
import math
import sys

from actiongate import Engine, Gate, InvalidInput, MemoryStore, Policy, StoreError

SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def number(value):  # non-finite numbers travel as {"$float": "NaN"}
    return SPECIAL[value["$float"]] if isinstance(value, dict) and "$float" in value else value


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
        request = json.loads(line)
        op, answer = request["op"], {"ok": True}
        try:
            if op == "hello":
                answer = {"protocol": 1, "spec_version": "1.0", "capabilities": ["store_faults"],
                          "implementation": {"name": "python example", "version": "1.0"}}
            elif op == "reset":
                store.failing = False
                store.clear_all()
            elif op == "check":
                gate = Gate.from_dict(request["gate"])  # validates: gate, policy, then time
                policy = Policy.from_dict({k: number(v) for k, v in request["policy"].items()})
                clock[0] = number(request["now"])
                answer = {"decision": engine.check(gate, policy).to_dict()}
            elif op == "clear":
                store.clear(Gate.from_dict(request["gate"]))
            elif op == "clear_all":
                store.working()
                store.clear_all()
            elif op in ("store_fail", "store_recover"):
                store.failing = op == "store_fail"
        except InvalidInput as error:
            answer = {"error": {"kind": error.kind, "field": error.field, "message": str(error)}}
        except StoreError as error:  # a clear while the store fails (CLR-1)
            answer = {"error": {"kind": "store_error", "field": None, "message": str(error)}}
        print(json.dumps({"id": request["id"], **answer}), flush=True)
        if op == "bye":
            break


if __name__ == "__main__":
    main()
