"""Targets: what a target string names, behind one ``request(message) -> message`` interface.

- ``memory://``: the reference Engine over MemoryStore (the default);
- ``py:package.module:callable``: the reference Engine over the Store or AsyncStore that the
  callable returns, e.g. a vendor's store; it is called again at every reset.

In-process targets pass every message through JSON both ways, so they see exactly the bytes a
subprocess adapter would, and a float that JSON cannot carry exactly could not slip through.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any, Protocol

from actiongate import ConfigurationError, store_from_url

from .adapter import ReferenceAdapter

__all__ = ["InProcessTarget", "Target", "TargetError", "target_from_string"]


class TargetError(Exception):
    """A target string that names nothing runnable; the message says what and why."""


class Target(Protocol):
    capabilities: frozenset[str]

    def describe(self) -> dict[str, Any]: ...

    def request(self, message: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


class InProcessTarget:
    """A ReferenceAdapter in this process, reached through JSON text."""

    def __init__(self, adapter: ReferenceAdapter, name: str) -> None:
        self._adapter = adapter
        self.name = name
        self.capabilities = frozenset(adapter.capabilities())

    def describe(self) -> dict[str, Any]:
        return self._adapter.describe()

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        answer = self._adapter.handle(json.loads(json.dumps(message, allow_nan=False)))
        decoded: dict[str, Any] = json.loads(json.dumps(answer, allow_nan=False))
        return decoded

    def close(self) -> None:
        self._adapter.close()


def target_from_string(spec: str) -> Target:
    """The target ``spec`` names; raises TargetError with a one-line reason."""
    if spec.startswith("py:"):
        factory = _import_factory(spec[3:])
        return InProcessTarget(ReferenceAdapter(_checked(factory, spec), name=spec), spec)
    try:
        store_from_url(spec)
    except ConfigurationError as error:
        raise TargetError(f"{error}; or use py:module:callable") from None
    return InProcessTarget(
        ReferenceAdapter(lambda: store_from_url(spec), name=f"actiongate reference ({spec})"),
        spec,
    )


def _import_factory(path: str) -> Callable[[], Any]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"py:{path} must be py:package.module:callable")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise TargetError(f"cannot import {module_name!r}: {error}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise TargetError(f"{module_name} has no callable {attribute!r}")
    return factory  # type: ignore[no-any-return]


def _checked(factory: Callable[[], Any], spec: str) -> Callable[[], Any]:
    def make() -> Any:
        try:
            store = factory()
        except Exception as error:
            raise TargetError(
                f"{spec}: the factory raised {type(error).__name__}: {error}"
            ) from None
        missing = [
            name
            for name in ("check_and_reserve", "clear", "clear_all")
            if not callable(getattr(store, name, None))
        ]
        if missing:
            raise TargetError(
                f"{spec}: the factory returned {type(store).__name__}, not a store "
                f"(missing {', '.join(missing)})"
            )
        return store

    make()  # fail now, before any verdict, if the factory is broken
    return make
