"""The fault layer: checks whose store fails on chosen steps, each case judged against ERR-1
(the decision) and ERR-2 (what later checks see).

ERR-2 is judged against the target itself: each case is run again with its failing checks left
out (the *control*), and a later check must answer as it does there. A target whose control
already disagrees with the spec has a logic bug with no fault injected, reported as a sequential
disagreement, not as a fault mishandled.

- ``cases``: the cases, as data, their gates and times, and what the spec expects of each check;
- ``report``: what each check gave, how each fault was handled, and the report of them all;
- ``store``: a Python store (``py:``, ``memory://``, ``redis://``), wrapped so that the one
  store call of a failing check raises;
- ``port``: a ``cmd:`` port that declares ``store_faults``, failed by ``store_fail`` before a
  failing check and ``store_recover`` after it; its clears under ``store_fail`` too (CLR-1).
"""

from __future__ import annotations

from .cases import FAULT_CASES, FaultCase
from .port import run_port_faults
from .report import FaultHandling, FaultReport, FaultStep
from .store import run_faults

__all__ = [
    "FAULT_CASES",
    "FaultCase",
    "FaultHandling",
    "FaultReport",
    "FaultStep",
    "run_faults",
    "run_port_faults",
]
