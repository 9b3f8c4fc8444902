"""Engine: the clock, the policy registry, decorators and listeners around a store; and
Blocked, the exception its decorators raise for a BLOCK.

The engine owns time (an injectable clock) and turns what a store says into a Decision; the
rules themselves live in _decide.py. A store failure never escapes a check (ERR-3).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from ._decide import decision_from_reply, store_error_decision
from ._emitter import Emitter
from ._errors import ActionGateError, InvalidGate, InvalidPolicy, InvalidTime, StoreError
from ._types import Decision, Gate, Mode, Policy, Result
from .stores import AsyncStore, MemoryStore, Store
from .stores.memory import AsyncMemoryStore

__all__ = ["Blocked", "Engine"]

P = ParamSpec("P")
T = TypeVar("T")

TIME_LIMIT = 2.0**53  # TIME-3
DEFAULT_POLICY = Policy()


class Blocked(ActionGateError, RuntimeError):  # upstream's public name
    """Raised by ``guard`` and ``enforce`` for a BLOCK (SEMANTICS.md section 11)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message or f"blocked: {decision.reason}")
        self.decision = decision


def _check_now(now: object) -> float:
    if type(now) is float and -TIME_LIMIT <= now <= TIME_LIMIT:  # NaN fails the comparison
        return now
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise InvalidTime("now", f"the clock must return a number, got {now!r}")
    if not (math.isfinite(now) and -TIME_LIMIT <= now <= TIME_LIMIT):
        raise InvalidTime("now", f"now must be finite and within +-2**53, got {now!r}")
    return float(now)


class _ThreadedAsyncStore:
    """A sync store seen from async code: each call runs in a worker thread."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    async def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        return await asyncio.to_thread(self._store.check_and_reserve, gate, now, policy)

    async def clear(self, gate: Gate) -> None:
        await asyncio.to_thread(self._store.clear, gate)

    async def clear_all(self) -> None:
        await asyncio.to_thread(self._store.clear_all)


class Engine:
    """Decides, before an action runs, whether it may run, and records it if so.

    ``clock`` returns seconds (TIME-1). It defaults to ``time.monotonic`` for the in-process
    MemoryStore and to ``time.time`` for any other store, since a store shared by processes must
    not be fed per-process monotonic clocks. ``async_store`` defaults to the async face of
    ``store``, so sync and async checks of one engine share one state.
    """

    __slots__ = (
        "_async_server_clock",
        "_async_store",
        "_clock",
        "_emitter",
        "_policies",
        "_server_clock",
        "_store",
    )

    def __init__(
        self,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        emitter: Emitter | None = None,
        async_store: AsyncStore | None = None,
    ) -> None:
        self._store: Store = MemoryStore() if store is None else store
        if clock is None:
            clock = time.monotonic if isinstance(self._store, MemoryStore) else time.time
        self._clock = clock
        self._emitter = Emitter() if emitter is None else emitter
        self._policies: dict[Gate, Policy] = {}
        if async_store is not None:
            self._async_store: AsyncStore = async_store
        elif isinstance(self._store, MemoryStore):
            self._async_store = AsyncMemoryStore(self._store)
        else:
            self._async_store = _ThreadedAsyncStore(self._store)
        # A store that reads the time itself (RedisStore(server_time=True)) reports the T it
        # used, and that is the decision's now (DEC-4); the engine's clock then only dates a
        # STORE_ERROR decision.
        self._server_clock = _reads_its_own_clock(self._store)
        self._async_server_clock = _reads_its_own_clock(self._async_store)

    # Configuration

    def register(self, gate: Gate, policy: Policy) -> None:
        """Make ``policy`` the one ``check(gate)`` uses when it is given none."""
        self._policies[_gate(gate)] = _policy(policy)

    def policy_for(self, gate: Gate) -> Policy:
        """The registered policy of ``gate``, or ``Policy()``."""
        return self._policies.get(gate, DEFAULT_POLICY)

    def on_decision(self, listener: Callable[[Decision], object]) -> None:
        """Call ``listener`` with every decision; its exceptions are counted, never raised."""
        self._emitter.add(listener)

    @property
    def listener_errors(self) -> int:
        return self._emitter.error_count

    # Checks

    def check(self, gate: Gate, policy: Policy | None = None) -> Decision:
        """Decide and, on ALLOW, record the call. Never raises for a BLOCK or a store failure."""
        policy = self._resolve(gate, policy)
        now = _check_now(self._clock())
        try:
            if self._server_clock:
                store: Any = self._store
                reply, now = _split_timed(store.check_and_reserve_at(gate, policy))
                decision = decision_from_reply(gate, policy, now, reply)
            else:
                reply = self._store.check_and_reserve(gate, now, policy)
                decision = decision_from_reply(gate, policy, now, reply)
        except Exception as error:  # ERR-3: any failure of the store is a decision
            decision = store_error_decision(gate, policy, now, error)
        if self._emitter:
            self._emitter.emit(decision)
        return decision

    async def async_check(self, gate: Gate, policy: Policy | None = None) -> Decision:
        """``check`` through the async store."""
        policy = self._resolve(gate, policy)
        now = _check_now(self._clock())
        try:
            if self._async_server_clock:
                store: Any = self._async_store
                reply, now = _split_timed(await store.check_and_reserve_at(gate, policy))
                decision = decision_from_reply(gate, policy, now, reply)
            else:
                reply = await self._async_store.check_and_reserve(gate, now, policy)
                decision = decision_from_reply(gate, policy, now, reply)
        except Exception as error:  # ERR-3
            decision = store_error_decision(gate, policy, now, error)
        if self._emitter:
            self._emitter.emit(decision)
        return decision

    def enforce(self, decision: Decision) -> None:
        """Raise Blocked iff the decision is a BLOCK under a HARD policy (MODE-1)."""
        if decision.blocked and decision.policy.mode is Mode.HARD:
            raise Blocked(decision)

    async def async_enforce(self, decision: Decision) -> None:
        self.enforce(decision)

    def clear(self, gate: Gate) -> None:
        """Forget every event of ``gate`` (CLR-1); a store failure raises."""
        self._store.clear(_gate(gate))

    def clear_all(self) -> None:
        """Forget every event of every gate in the store (CLR-2); a store failure raises."""
        self._store.clear_all()

    async def async_clear(self, gate: Gate) -> None:
        await self._async_store.clear(_gate(gate))

    async def async_clear_all(self) -> None:
        await self._async_store.clear_all()

    # Decorators. Each binds the policy it is given to the function it wraps; with no policy,
    # the function uses the registered one at each call. Like upstream, a given policy is also
    # registered for the gate, but that never changes what another decorated function uses.

    def guard(
        self, gate: Gate, policy: Policy | None = None
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Run the function iff allowed; a BLOCK raises Blocked in either mode (section 11)."""
        bound = self._bind(gate, policy)

        def decorator(function: Callable[P, T]) -> Callable[P, T]:
            @wraps(function)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                decision = self.check(gate, bound)
                if decision.blocked:
                    raise Blocked(decision)
                return function(*args, **kwargs)

            return wrapper

        return decorator

    def guard_result(
        self, gate: Gate, policy: Policy | None = None
    ) -> Callable[[Callable[P, T]], Callable[P, Result[T]]]:
        """Run the function iff allowed; never raises for a BLOCK, returns a Result."""
        bound = self._bind(gate, policy)

        def decorator(function: Callable[P, T]) -> Callable[P, Result[T]]:
            @wraps(function)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> Result[T]:
                decision = self.check(gate, bound)
                if decision.blocked:
                    return Result(decision)
                return Result(decision, function(*args, **kwargs))

            return wrapper

        return decorator

    def async_guard(
        self, gate: Gate, policy: Policy | None = None
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """``guard`` for coroutine functions."""
        bound = self._bind(gate, policy)

        def decorator(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
            @wraps(function)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                decision = await self.async_check(gate, bound)
                if decision.blocked:
                    raise Blocked(decision)
                return await function(*args, **kwargs)

            return wrapper

        return decorator

    def async_guard_result(
        self, gate: Gate, policy: Policy | None = None
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[Result[T]]]]:
        """``guard_result`` for coroutine functions."""
        bound = self._bind(gate, policy)

        def decorator(
            function: Callable[P, Awaitable[T]],
        ) -> Callable[P, Awaitable[Result[T]]]:
            @wraps(function)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Result[T]:
                decision = await self.async_check(gate, bound)
                if decision.blocked:
                    return Result(decision)
                return Result(decision, await function(*args, **kwargs))

            return wrapper

        return decorator

    # Internals

    def _resolve(self, gate: Gate, policy: Policy | None) -> Policy:
        _gate(gate)
        if policy is None:
            return self._policies.get(gate, DEFAULT_POLICY)
        return _policy(policy)

    def _bind(self, gate: Gate, policy: Policy | None) -> Policy | None:
        _gate(gate)
        if policy is not None:
            self.register(gate, policy)
        return policy


def _split_timed(reply: object) -> tuple[tuple[object, ...], float]:
    """(count, allowed, age, now) from a store with its own clock: the reply, and its now."""
    if isinstance(reply, (tuple, list)) and len(reply) == 4 and type(reply[3]) is float:
        return tuple(reply[:3]), reply[3]
    raise StoreError(f"store returned {reply!r}, not (count, allowed, age, now)")


def _reads_its_own_clock(store: object) -> bool:
    return bool(getattr(store, "server_time", False)) and hasattr(store, "check_and_reserve_at")


def _gate(gate: Any) -> Gate:
    if not isinstance(gate, Gate):
        raise InvalidGate("gate", f"gate must be a Gate, got {gate!r}")
    return gate


def _policy(policy: Any) -> Policy:
    if not isinstance(policy, Policy):
        raise InvalidPolicy("policy", f"policy must be a Policy, got {policy!r}")
    return policy
