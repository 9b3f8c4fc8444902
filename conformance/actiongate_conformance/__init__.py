"""The ActionGate 1.0 conformance suite: vectors, models and checks for any implementation.

Run it with the ``actiongate-conformance`` command, from Python with ``run`` (``api.py``), or
inside pytest (``pytest_plugin.py``); see README.md.

This module holds the suite's and the spec's versions, which every package of the suite reads,
and re-exports the Python API lazily (PEP 562 ``__getattr__``): importing any part of the suite,
the pytest plugin included, imports nothing else, and ``run`` is loaded on its first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "1.0.0.dev0"
SPEC_VERSION = "1.0"

__all__ = [
    "SPEC_VERSION",
    "LayerFinished",
    "Observer",
    "RunResult",
    "Runner",
    "__version__",
    "run",
]

if TYPE_CHECKING:
    from .api import LayerFinished, Observer, Runner, RunResult, run

# The names of api.py re-exported here. No module of the suite imports them from here
# (tests/test_layout.py), so loading them never closes an import circle.
_API = frozenset({"LayerFinished", "Observer", "RunResult", "Runner", "run"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api  # noqa: PLC0415 - lazily: api imports every package below

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
