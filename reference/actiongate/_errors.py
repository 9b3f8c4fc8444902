"""The exceptions of actiongate: one base class, one subclass per thing that can go wrong.

Blocked, which carries a Decision, lives with the Engine that raises it (``_engine.py``): this
module imports nothing of actiongate, since ``_types.py`` raises its errors.
"""

from __future__ import annotations

__all__ = [
    "ActionGateError",
    "ConfigurationError",
    "InvalidGate",
    "InvalidInput",
    "InvalidPolicy",
    "InvalidTime",
    "StoreError",
]


class ActionGateError(Exception):
    """Base class of every exception actiongate raises on purpose."""


class InvalidInput(ActionGateError, ValueError, TypeError):
    """A gate, policy or time that SEMANTICS.md rejects (ID-3, POL-1..4, TIME-3).

    It is both a ValueError and a TypeError, so callers may catch either. ``kind`` is the
    error name the spec and the adapter protocol use; ``field`` names the offending field.
    """

    kind = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidGate(InvalidInput):
    kind = "invalid_gate"


class InvalidPolicy(InvalidInput):
    kind = "invalid_policy"


class InvalidTime(InvalidInput):
    kind = "invalid_time"


class StoreError(ActionGateError):
    """A store could not carry out an operation; a check turns it into a STORE_ERROR decision."""


class ConfigurationError(ActionGateError):
    """A store URL or option that names nothing usable."""
