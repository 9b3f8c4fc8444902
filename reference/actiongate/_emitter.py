"""Emitter: hands each decision to listeners, which can never break a check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Emitter"]


class Emitter:
    """A list of listeners. A listener that raises is counted and skipped, never propagated.

    One emitter may be shared by several engines to collect all their decisions.
    """

    __slots__ = ("_errors", "_listeners")

    def __init__(self) -> None:
        self._listeners: list[Callable[[Any], object]] = []
        self._errors = 0

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def add(self, listener: Callable[[Any], object]) -> None:
        self._listeners.append(listener)

    def emit(self, event: Any) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                self._errors += 1

    @property
    def error_count(self) -> int:
        return self._errors
