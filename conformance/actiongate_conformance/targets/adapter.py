"""The reference engine behind the adapter protocol: protocol messages in, messages out.

In-process targets (``memory://``, ``py:...``) answer through this class, and so do the
``cmd:`` adapters of the project's tests (``handle_line`` reads a raw line for them, ADP-1), so
the runner has one code path whatever the target. Gates and policies arrive as JSON records and
are read by SEMANTICS.md ID-4 and POL-7 here (``read_gate``, ``read_policy``); the engine's
constructors judge each field's value.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from actiongate import (
    Engine,
    Gate,
    InvalidGate,
    InvalidInput,
    InvalidPolicy,
    Policy,
    __version__,
)

from .faulty_store import FaultyStore
from .messages import PROTOCOL_VERSION

__all__ = ["ReferenceAdapter", "decode_number", "encode_number", "read_gate", "read_policy"]

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Valid values of every field: with all but one of them, a constructor judges that one alone.
_GATE_STANDIN: Mapping[str, Any] = {"namespace": "", "action": "", "principal": ""}
_POLICY_STANDIN: Mapping[str, Any] = {
    "max_calls": 0,
    "window": None,
    "cooldown": 0.0,
    "mode": "HARD",
    "on_store_error": "FAIL_CLOSED",
}
T = TypeVar("T")


def decode_number(value: Any) -> Any:
    """``{"$float": "NaN"}`` and friends to a float; anything else unchanged."""
    if isinstance(value, Mapping) and set(value) == {"$float"} and value["$float"] in _SPECIAL:
        return _SPECIAL[value["$float"]]
    return value


def read_gate(value: Any) -> Gate:
    """A gate record (ID-4) as a Gate; raises InvalidGate naming the field."""
    return _record(value, "gate", _GATE_STANDIN, Gate, InvalidGate)


def read_policy(value: Any) -> Policy:
    """A policy record (POL-7), ``$float`` numbers decoded, as a Policy; raises InvalidPolicy."""
    if isinstance(value, Mapping):
        value = {key: decode_number(field) for key, field in value.items()}
    return _record(value, "policy", _POLICY_STANDIN, Policy, InvalidPolicy)


def _record(
    value: Any,
    what: str,
    standin: Mapping[str, Any],
    make: Callable[..., T],
    error: type[InvalidInput],
) -> T:
    """ID-4, POL-7 in POL-5's order: the record itself, each field in turn (a missing one is
    invalid in its place: a record has no defaults), then a member of another name, the least
    in code point order. ``make`` validates its fields in that order, so an exact record goes
    to it at once; any other is judged one field at a time, the rest stand-ins."""
    if not isinstance(value, Mapping):
        raise error(what, f"{what} must be an object, got {_json(value)}")
    if value.keys() != standin.keys():
        for name in standin:
            if name not in value:
                raise error(name, f"{what} has no {name}")
            make(**{**standin, name: value[name]})
        unknown = min(set(value) - set(standin))  # str order is code point order
        raise error(unknown, f"{what} has no field named {_json(unknown)}")
    return make(**value)


def _json(value: Any) -> str:
    # JSON's spelling (null, not None), short enough for a message.
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def encode_number(value: Any) -> Any:
    """A float JSON cannot write as ``{"$float": ...}``; anything else unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {"$float": name}
    return value


class ReferenceAdapter:
    """Answers protocol requests with the reference Engine over a store made by ``factory``."""

    def __init__(self, factory: Callable[[], Any], name: str = "actiongate reference") -> None:
        self._factory = factory
        self.name = name
        self._now = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset()

    def capabilities(self) -> list[str]:
        # Bursts run on threads, so they need a store with a sync check_and_reserve.
        return ["store_faults"] if self._faulty.is_async else ["store_faults", "burst"]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": __version__, "language": "python"}

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def handle(self, request: Any) -> dict[str, Any]:
        """One request to its response, with the request's id. Raises nothing a request causes.

        ADP-1: a request that is not an object with an id that is an integer >= 0 is answered
        with id null and bad_request, and nothing it asks for is done."""
        request_id = request.get("id") if isinstance(request, Mapping) else None
        if type(request_id) is not int or request_id < 0:
            shown = _json(request)
            why = f"a request is a JSON object whose id is an integer >= 0, got {shown}"
            return {"id": None, **_error("bad_request", None, why)}
        return {"id": request_id, **self._answer(request)}

    def handle_line(self, line: str | bytes) -> dict[str, Any]:
        """One request line to its response; a line that is not JSON is answered (ADP-1)."""
        try:
            request = json.loads(line, parse_constant=_not_json)
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, a NaN token
            return {"id": None, **_error("bad_request", None, f"not a JSON text: {error}")}
        return self.handle(request)

    def _answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "check":
            return self._check(request)
        if op == "burst" and not self._faulty.is_async:
            return self._burst(request)
        if op == "hello":
            return {
                "protocol": PROTOCOL_VERSION,
                "implementation": self.describe(),
                "spec_version": "1.0",
                "capabilities": self.capabilities(),
            }
        if op == "reset":
            self._reset()
        elif op == "clear":
            try:  # CLR-3: the gate first, before the store is touched
                gate = read_gate(request.get("gate"))
            except InvalidInput as error:
                return _error(error.kind, error.field, str(error))
            return self._store_call(lambda: self._engine_clear(gate))
        elif op == "clear_all":
            return self._store_call(self._engine_clear_all)
        elif op == "store_fail":
            self._faulty.failing = True
        elif op == "store_recover":
            self._faulty.failing = False
        elif op == "burst":  # ADP-1: a protocol op, of a capability not declared
            return _error("unsupported", None, "burst needs a store with a sync check")
        elif op != "bye":
            return _error("bad_request", None, f"no op {_json(op)} in the protocol")
        return {"ok": True}

    def _reset(self) -> None:
        store = self._factory()
        self._faulty = FaultyStore(store)
        clock: Callable[[], float] = lambda: self._now  # noqa: E731 - read at each check
        if self._faulty.is_async:
            self._engine = Engine(clock=clock, async_store=self._faulty)
        else:
            self._engine = Engine(store=self._faulty, clock=clock)
        self._run(self._engine_clear_all)

    def _check(self, request: Mapping[str, Any]) -> dict[str, Any]:
        # POL-5: the gate, then the policy, then the time (the engine's clock reads it).
        try:
            gate = read_gate(request.get("gate"))
            policy = read_policy(request.get("policy"))
            self._now = decode_number(request.get("now"))
            if self._faulty.is_async:
                decision = self._run(lambda: self._engine.async_check(gate, policy))
            else:
                decision = self._engine.check(gate, policy)
        except InvalidInput as error:
            return _error(error.kind, error.field, str(error))
        return {"decision": decision.to_dict()}

    def _burst(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``count`` threads check one gate at once, each at the next time of a shared counter."""
        try:
            gate = Gate.from_dict(request["gate"])
            policy = Policy.from_dict(request["policy"])
            count, start, step = int(request["count"]), float(request["start"]), request["step"]
        except (InvalidInput, KeyError, TypeError, ValueError) as error:
            return _error("bad_request", None, f"bad burst request: {error}")
        local = threading.local()
        engine = Engine(store=self._faulty, clock=lambda: local.now)
        counter = itertools.count()
        lock = threading.Lock()
        barrier = threading.Barrier(count)
        results: list[dict[str, Any]] = [{} for _ in range(count)]

        def one(index: int) -> None:
            barrier.wait()
            invoked = time.monotonic_ns()
            with lock:  # the k-th invocation takes the k-th time
                local.now = start + next(counter) * step
            decision = engine.check(gate, policy)
            results[index] = {
                "now": local.now,
                "invoke_ns": invoked,
                "return_ns": time.monotonic_ns(),
                "decision": decision.to_dict(),
            }

        threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"burst": results}

    def _engine_clear(self, gate: Gate) -> Any:
        if self._faulty.is_async:
            return self._run(lambda: self._engine.async_clear(gate))
        return self._engine.clear(gate)

    def _engine_clear_all(self) -> Any:
        if self._faulty.is_async:
            return self._run(self._engine.async_clear_all)
        return self._engine.clear_all()

    def _store_call(self, call: Callable[[], Any]) -> dict[str, Any]:
        try:
            call()
        except Exception as error:  # CLR-1: a failed clear is reported, not a decision
            return _error("store_error", None, f"{type(error).__name__}: {error}")
        return {"ok": True}

    def _run(self, make: Callable[[], Any]) -> Any:
        result = make()
        if asyncio.iscoroutine(result):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(result)
        return result


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _error(kind: str, field: str | None, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "field": field, "message": message}}
