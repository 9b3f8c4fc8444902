"""Upstream actiongate 0.3.0 (PyPI) behind the adapter protocol (spec/protocol.schema.json).

Run by the Python of a venv that holds upstream (it needs Python >= 3.12 and has our import
name, so this file imports nothing of the reference; see README.md here):

    actiongate-conformance run --target \
        "cmd:/tmp/upv/bin/python examples/upstream/adapter.py --store memory"
    actiongate-conformance run --target \
        "cmd:/tmp/upv/bin/python examples/upstream/adapter.py --store redis --redis-url URL"

Theory of operation. Each request is answered by calling upstream's public API the way a
Python caller would: ``Gate(**gate)``, ``Policy(**policy)``, then ``Engine.check`` with the
vector's time injected through upstream's ``clock=`` parameter. The adapter validates nothing
itself. Where upstream raises while a Gate or a Policy is built, the answer is an error
``invalid_gate`` / ``invalid_policy`` naming the field upstream's check was about; whatever
upstream accepts it decides, and that decision is the answer, even for input SEMANTICS.md
rejects (POL-5). Upstream never checks a time (it has no ``invalid_time``).

Translations (a JSON value has to become a Python one somehow; each choice is the one a caller
of upstream's typed API would make):
- ``{"$float": "NaN"}`` and friends become floats; a JSON number given as ``window``,
  ``cooldown`` or ``now`` becomes a float (TIME-2: a JSON number denotes a binary64);
  ``max_calls`` and gate fields go to upstream exactly as JSON decoded them.
- ``mode`` / ``on_store_error``: a name of a ``Mode`` / ``StoreErrorMode`` member becomes that
  member; any other value goes to ``Policy`` unchanged (upstream's Policy accepts it).
- Redis: ``redis.Redis.from_url(url, decode_responses=True)``, as upstream's RedisStore
  docstring builds its client; ``reset`` is FLUSHDB of that database and a new RedisStore.

Decision record (spec/decision.schema.json) from upstream's ``Decision`` object, field by field:
- ``status``, ``reason``: ``Decision.status.name``, ``Decision.reason.name`` (or null);
- ``message``: ``Decision.message``;
- ``gate``: the three fields of ``Decision.gate`` (upstream's own ``to_dict`` writes the string
  ``ns:action@principal`` instead, which is kept in ``x_upstream_record``);
- ``policy``: the fields of ``Decision.policy``, enum members by name (``to_dict`` omits it);
- ``calls_in_window``, ``time_since_last``: the fields of the same name;
- ``now``: upstream's Decision has no time; this is what the injected clock returned to the
  check. ``schema_version`` is ours ("1.0"); upstream's ("0.2.2") is in ``x_upstream_record``.
Numbers JSON cannot write are sent as ``{"$float": ...}``. Where upstream decides on input
SEMANTICS.md rejects (a gate field 5, a NaN window, max_calls true, mode "hard", a time
beyond 2^53), the echoes carry that input, which the decision schema cannot hold; the suite
takes such a decision as upstream's answer and reports the step as failed (an error was due),
quoting it. Nothing upstream answers is changed or left out.

Store faults (capability ``store_faults``): a wrapper around upstream's store raises
ConnectionError from every call, before it reaches the store, while failing. Bursts
(capability ``burst``): ``count`` threads call one upstream Engine over the adapter's store at
once, each taking its time from a shared counter as it is invoked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import threading
import time
import traceback
from enum import Enum
from typing import Any

import actiongate as upstream
from actiongate import Decision, Engine, Gate, MemoryStore, Mode, Policy, StoreErrorMode

SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
GATE_FIELDS = ("namespace", "action", "principal")
POLICY_FIELDS = ("max_calls", "window", "cooldown", "mode", "on_store_error")
ENUMS: dict[str, type[Enum]] = {"mode": Mode, "on_store_error": StoreErrorMode}


class Rejected(Exception):
    """Upstream refused to build a Gate or a Policy: an error response."""

    def __init__(self, kind: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.kind, self.field = kind, field


def decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$float"} and value["$float"] in SPECIAL:
        return SPECIAL[value["$float"]]
    return value


def as_float(value: Any) -> Any:
    """A JSON number as the binary64 it denotes; anything else unchanged."""
    value = decode(value)
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def jsonable(value: Any) -> Any:
    """Enum members by name, non-finite floats as {"$float": ...}, containers recursively."""
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, float) and not math.isfinite(value):
        return {
            "$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        }
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def field_named(error: Exception, fields: tuple[str, ...]) -> str | None:
    """The field upstream's failing check was about: named in the message (ValueError
    "window must be > 0", TypeError "missing ... 'action'"), or in the source line that
    raised (a TypeError from "if self.max_calls < 0:")."""
    frames = traceback.extract_tb(error.__traceback__)
    source_line = (frames[-1].line or "") if frames else ""
    for text in (str(error), source_line):
        for name in fields:
            if name in text:
                return name
    return None


def make_gate(raw: Any) -> Gate:
    try:
        return Gate(**raw)
    except TypeError as error:  # a missing or unknown field, or not an object at all
        raise Rejected("invalid_gate", field_named(error, GATE_FIELDS), str(error)) from None


def policy_value(name: str, value: Any) -> Any:
    """A policy field as a caller of upstream's typed API would pass it (see the docstring)."""
    value = decode(value)
    if name in ("window", "cooldown"):
        return as_float(value)
    if name in ENUMS and isinstance(value, str) and value in ENUMS[name].__members__:
        return ENUMS[name][value]
    return value


def make_policy(raw: Any) -> Policy:
    if not isinstance(raw, dict):
        raise Rejected("invalid_policy", None, f"policy must be an object, got {raw!r}")
    values = {name: policy_value(name, value) for name, value in raw.items()}
    try:
        return Policy(**values)
    except (TypeError, ValueError) as error:  # Policy.__post_init__, or an unknown field
        raise Rejected("invalid_policy", field_named(error, POLICY_FIELDS), str(error)) from None


def record(decision: Decision, now: Any) -> dict[str, Any]:
    """Upstream's Decision as a decision record (see the module docstring for the mapping)."""
    gate, policy = decision.gate, decision.policy
    return jsonable(
        {
            "schema_version": "1.0",
            "status": decision.status.name,
            "reason": decision.reason.name if decision.reason is not None else None,
            "message": decision.message,
            "gate": {name: getattr(gate, name) for name in GATE_FIELDS},
            "policy": {name: getattr(policy, name) for name in POLICY_FIELDS},
            "calls_in_window": decision.calls_in_window,
            "time_since_last": decision.time_since_last,
            "now": now,
            "x_upstream_record": decision.to_dict(),
        }
    )


class SwitchableStore:
    """Upstream's store behind a switch: while ``failing``, every call raises before it
    reaches the store, so the store's state is untouched."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.failing = False

    def _guard(self, operation: str) -> None:
        if self.failing:
            raise ConnectionError(f"store_fail: the adapter refused {operation}")

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        self._guard("check_and_reserve")
        return self.store.check_and_reserve(gate, now, policy)

    def clear(self, gate: Gate) -> None:
        self._guard("clear")
        self.store.clear(gate)

    def clear_all(self) -> None:
        self._guard("clear_all")
        self.store.clear_all()


class Adapter:
    def __init__(self, store: str, redis_url: str | None) -> None:
        self.kind = store
        self.client = None
        if store == "redis":
            import redis  # noqa: PLC0415 - only the redis store needs it

            self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.now: Any = 0.0
        self.reset()

    def reset(self) -> None:
        if self.client is not None:
            self.client.flushdb()
            fresh: Any = upstream.RedisStore(self.client)
        else:
            fresh = MemoryStore()
        self.store = SwitchableStore(fresh)
        self.engine = Engine(store=self.store, clock=lambda: self.now)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "hello":
            return {
                "protocol": 1,
                "spec_version": "1.0",
                "capabilities": ["store_faults", "burst"],
                "implementation": {
                    "name": f"upstream actiongate ({self.kind} store)",
                    "version": upstream.__version__,
                    "language": "python",
                    "homepage": "https://github.com/actiongate-oss/actiongate",
                },
            }
        if op == "check":
            gate = make_gate(request["gate"])  # as a caller writes it: Gate, then Policy
            policy = make_policy(request["policy"])
            self.now = as_float(request["now"])
            return {"decision": record(self.engine.check(gate, policy), self.now)}
        if op == "burst":
            return self.burst(request)
        if op in ("clear", "clear_all"):
            try:
                if op == "clear":
                    self.engine.clear(make_gate(request["gate"]))
                else:
                    self.engine.clear_all()
            except Exception as error:  # CLR-1: a clear that failed is an error
                return error_response("store_error", None, f"{type(error).__name__}: {error}")
        elif op == "reset":
            self.reset()
        elif op in ("store_fail", "store_recover"):
            self.store.failing = op == "store_fail"
        elif op != "bye":
            return error_response("bad_request", None, f"unknown op {op!r}")
        return {"ok": True}

    def burst(self, request: dict[str, Any]) -> dict[str, Any]:
        """``count`` threads check one gate at once; the k-th to be invoked uses start + k*step."""
        gate, policy = make_gate(request["gate"]), make_policy(request["policy"])
        count, start, step = request["count"], float(request["start"]), float(request["step"])
        local = threading.local()
        engine = Engine(store=self.store, clock=lambda: local.now)
        counter, lock = itertools.count(), threading.Lock()
        barrier = threading.Barrier(count)
        results: list[dict[str, Any]] = [{} for _ in range(count)]

        def one(index: int) -> None:
            barrier.wait()
            invoked = time.monotonic_ns()
            with lock:
                local.now = start + next(counter) * step
            decision = engine.check(gate, policy)
            returned = time.monotonic_ns()
            results[index] = {
                "now": local.now,
                "invoke_ns": invoked,
                "return_ns": returned,
                "decision": record(decision, local.now),
            }

        threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"burst": results}


def error_response(kind: str, field: str | None, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "field": field, "message": message}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--redis-url", help="redis://HOST:PORT/DB; reset flushes this DB")
    options = parser.parse_args()
    if options.store == "redis" and not options.redis_url:
        parser.error("--store redis needs --redis-url")
    if upstream.__version__ != "0.3.0" or hasattr(upstream, "InvalidInput"):
        sys.exit(f"this adapter runs upstream actiongate 0.3.0; imported {upstream.__file__}")
    adapter = Adapter(options.store, options.redis_url)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            response = adapter.answer(request)
        except Rejected as rejected:
            response = error_response(rejected.kind, rejected.field, str(rejected))
        print(json.dumps({"id": request["id"], **response}, allow_nan=False), flush=True)
        if request.get("op") == "bye":
            break


if __name__ == "__main__":
    main()
