"""The reference engine behind the adapter protocol: protocol messages in, messages out.

In-process targets (``memory://``, ``py:...``) answer through this class, and so does the
example ``cmd:`` adapter, so the runner has one code path whatever the target.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

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

__all__ = ["ReferenceAdapter", "decode_number", "encode_number"]

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode_number(value: Any) -> Any:
    """``{"$float": "NaN"}`` and friends to a float; anything else unchanged."""
    if isinstance(value, Mapping) and set(value) == {"$float"} and value["$float"] in _SPECIAL:
        return _SPECIAL[value["$float"]]
    return value


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

    def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One request to its response, with the request's id. Raises nothing a request causes."""
        response = self._answer(request)
        if "id" in request:
            response = {"id": request["id"], **response}
        return response

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
            try:
                gate = Gate.from_dict(_mapping(request.get("gate"), "gate", "namespace"))
            except InvalidInput as error:
                return _error(error.kind, error.field, str(error))
            return self._store_call(lambda: self._engine_clear(gate))
        elif op == "clear_all":
            return self._store_call(self._engine_clear_all)
        elif op == "store_fail":
            self._faulty.failing = True
        elif op == "store_recover":
            self._faulty.failing = False
        elif op != "bye":
            return _error("bad_request", None, f"unknown op {op!r}")
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
        # POL-5: the gate, then the policy, then the time.
        try:
            gate = Gate.from_dict(_mapping(request.get("gate"), "gate", "namespace"))
            raw_policy = _mapping(request.get("policy"), "policy", "max_calls")
            policy = Policy.from_dict({k: decode_number(v) for k, v in raw_policy.items()})
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


def _mapping(value: Any, what: str, first_field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        error = InvalidGate if what == "gate" else InvalidPolicy
        raise error(first_field, f"{what} must be an object, got {value!r}")
    return value


def _error(kind: str, field: str | None, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "field": field, "message": message}}
