"""Targets: what a target string names, as a protocol ``Connection``.

- ``memory://`` (the default), ``fakeredis://``, ``redis://...``: the reference Engine over
  the store ``actiongate.store_from_url`` makes of the string;
- ``py:package.module:callable``: the reference Engine over the Store or AsyncStore that the
  callable returns (called again at every reset), e.g. a vendor's store;
- the callable itself, or a store, as a ``FactoryTarget`` (``as_target``): the same, for a
  factory no module names (a pytest fixture's, over a server it started);
- ``cmd:COMMAND ARGS``: any program speaking the adapter protocol on stdin/stdout.

In-process targets answer through the same JSON lines as a subprocess, so there is one code path,
and a float that JSON cannot carry exactly could not slip through. This package is the
transport: the protocol client (``protocol``), its schema checks (``messages``), the reference
engine behind the protocol (``adapter``) and the store wrapper that injects faults
(``faulty_store``). It imports ``actiongate`` and ``data``, nothing above.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from actiongate import ConfigurationError, store_from_url
from actiongate.stores import SCHEMES

from .adapter import ReferenceAdapter
from .protocol import Connection, HarnessError, InProcessTransport, SubprocessTransport

__all__ = [
    "FactoryTarget",
    "StoreFactory",
    "Target",
    "TargetError",
    "as_target",
    "store_factory",
    "target_from_string",
]

Target = Connection
StoreFactory = Callable[[], Any]  # no argument; returns a fresh Store or AsyncStore
STORE_METHODS = ("check_and_reserve", "clear", "clear_all")


class TargetError(Exception):
    """A target that cannot be run; the message says what and why in one line or a few."""


class FactoryTarget(str):
    """A target given as a Python object, not named by a string: a store factory, or a store
    (reused at every reset, which empties it by ``clear_all``).

    As a string it is its label, for reports: ``py:module:qualname`` of the callable,
    ``py:module:qualname partial`` of the function a ``functools.partial`` calls, or
    ``py:module:qualname instance`` of the store's class. ``runnable`` says whether the label
    is a ``py:`` target naming this very callable, so that the command's rerun hints work.
    ``store_factory`` makes its stores through ``factory``, checked as a ``py:`` target's.
    A str, so that what takes a target string (the layers, their rerun hints, the reports)
    takes this one unchanged.
    """

    factory: StoreFactory
    runnable: bool
    _value: object  # what it was made of

    def __new__(cls, value: object) -> FactoryTarget:
        store = _is_store(value)
        if store:
            factory: StoreFactory = lambda: value  # noqa: E731
        elif callable(value):
            factory = value
        else:
            raise ValueError(f"a FactoryTarget needs a store factory or a store, got {value!r}")
        named = type(value) if store else value
        suffix = " instance" if store else ""
        while isinstance(named, functools.partial):  # named by what it calls, not by partial
            named, suffix = named.func, " partial"
        module = getattr(named, "__module__", None)
        qualname = getattr(named, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str):  # a callable object
            module, qualname = type(named).__module__, type(named).__qualname__
        self = super().__new__(cls, f"py:{module}:{qualname}{suffix}")
        self.factory = factory
        self.runnable = not store and getattr(sys.modules.get(module), qualname, None) is value
        self._value = value
        return self

    # Immutable, as a str: a copy is itself (its factory's store is no copy's to make). Pickled,
    # it is made anew of what it was made of, not of its label.
    def __copy__(self) -> FactoryTarget:
        return self

    def __deepcopy__(self, memo: object) -> FactoryTarget:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (FactoryTarget, (self._value,))


def as_target(value: object) -> str:
    """``value`` as a target: a target string as it is; a store factory (a callable taking no
    argument that returns a fresh store) or a store as a ``FactoryTarget``.

    Raises ValueError for anything else, or an empty string. Whether a factory's result is a
    store is known only when it is called, by ``store_factory``: a TargetError then.
    """
    if isinstance(value, str) and value:
        return value
    if not isinstance(value, str) and (callable(value) or _is_store(value)):
        return FactoryTarget(value)
    raise ValueError(
        "target must be a target string (e.g. memory://), a store factory (a callable taking "
        f"no argument that returns a fresh store) or a store, got {value!r}"
    )


def _is_store(value: object) -> bool:
    """An object with the Store methods; a class is a factory, though it has them too."""
    methods = (getattr(value, name, None) for name in STORE_METHODS)
    return not isinstance(value, type) and all(callable(method) for method in methods)


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
    if isinstance(spec, FactoryTarget):
        return _checked(spec.factory, spec)
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
        missing = [name for name in STORE_METHODS if not callable(getattr(store, name, None))]
        if missing:
            raise TargetError(
                f"{spec}: the factory returned {type(store).__name__}, not a store "
                f"(missing {', '.join(missing)})"
            )
        return store

    make()  # fail now, before any verdict, if the factory is broken
    return make
