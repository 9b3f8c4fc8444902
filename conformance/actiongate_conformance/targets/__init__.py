"""Targets: what a target string names, as a protocol ``Connection``.

- ``memory://`` (the default), ``fakeredis://``, ``redis://...``: the reference Engine over
  the store ``actiongate.store_from_url`` makes of the string;
- ``py:package.module:callable``: the reference Engine over the Store or AsyncStore that the
  callable returns (called again at every reset), e.g. a vendor's store;
- ``cmd:COMMAND ARGS``: any program speaking the adapter protocol on stdin/stdout.

In-process targets answer through the same JSON lines as a subprocess, so there is one code path,
and a float that JSON cannot carry exactly could not slip through. This package is the
transport: the protocol client (``protocol``), its schema checks (``messages``), the reference
engine behind the protocol (``adapter``) and the store wrapper that injects faults
(``faulty_store``). It imports ``actiongate`` and ``data``, nothing above.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from actiongate import ConfigurationError, store_from_url
from actiongate.stores import SCHEMES

from .adapter import ReferenceAdapter
from .protocol import Connection, HarnessError, InProcessTransport, SubprocessTransport

__all__ = ["Target", "TargetError", "store_factory", "target_from_string"]

Target = Connection


class TargetError(Exception):
    """A target that cannot be run; the message says what and why in one line or a few."""


def target_from_string(spec: str, timeout: float = 10.0) -> Connection:
    """The running target ``spec`` names; raises TargetError when it cannot run."""
    factory = store_factory(spec)
    if factory is None:
        command = spec[4:].strip()
        open_transport: Callable[[], Any] = lambda: SubprocessTransport(command)  # noqa: E731
    else:
        name = spec if spec.startswith("py:") else f"actiongate reference ({spec})"
        open_transport = lambda: _in_process(ReferenceAdapter(factory, name=name))  # noqa: E731
    try:
        return Connection(open_transport, timeout=timeout)
    except HarnessError as error:
        raise TargetError(f"{spec}: {error.explain()}") from None


def store_factory(spec: str) -> Callable[[], Any] | None:
    """What makes a fresh store of an in-process target; None for a ``cmd:`` program.

    Raises TargetError when the target names nothing, or its store cannot be made or reached.
    """
    if spec.startswith("cmd:"):
        return None
    if spec.startswith("py:"):
        return _checked(_import_factory(spec[3:]), spec)
    try:
        store_from_url(spec).clear_all()
    except ConfigurationError as error:
        # A store the URL names but cannot make (a missing extra, a bad option) says so alone.
        known = spec.partition("://")[0] in SCHEMES
        other = "" if known else "; or use py:module:callable or cmd:PROGRAM"
        raise TargetError(f"{error}{other}") from None
    except Exception as error:
        raise TargetError(f"{spec}: the store is unreachable: {error}") from None
    return lambda: store_from_url(spec)


def _in_process(adapter: ReferenceAdapter) -> InProcessTransport:
    return InProcessTransport(adapter.handle, adapter.close)


def _import_factory(path: str) -> Callable[[], Any]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"py:{path} must be py:package.module:callable")
    # As `python -m` does, look in the current directory first: a vendor runs the suite from
    # their project and names their module (the console script alone would not find it).
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
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
