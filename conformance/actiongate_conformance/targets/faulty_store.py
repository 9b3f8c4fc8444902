"""Fault injection for Python stores: a wrapper that fails on command.

While failing, every call raises before it reaches the wrapped store, so the store's state is
untouched: what a check then decides shows whether the engine follows ERR-1 and ERR-2.
"""

from __future__ import annotations

import inspect
from typing import Any

from actiongate import Gate, Policy, StoreError

__all__ = ["FaultyStore", "InjectedFault"]


class InjectedFault(StoreError):
    """The failure FaultyStore raises."""


class FaultyStore:
    """Wraps a sync or async store; ``failing = True`` makes every call raise InjectedFault."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.failing = False
        self.faults_injected = 0
        self.is_async = inspect.iscoroutinefunction(store.check_and_reserve)

    def _guard(self, operation: str) -> None:
        if self.failing:
            self.faults_injected += 1
            raise InjectedFault(f"injected fault in {operation}")

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        self._guard("check_and_reserve")
        return self.store.check_and_reserve(gate, now, policy)

    def clear(self, gate: Gate) -> Any:
        self._guard("clear")
        return self.store.clear(gate)

    def clear_all(self) -> Any:
        self._guard("clear_all")
        return self.store.clear_all()
