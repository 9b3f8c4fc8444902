"""Drivers that record concurrent histories of checks, for the linearizability checker.

- ``record_threads``: N threads in this process, released together by a barrier, each issuing
  checks on a few gates through the reference Engine over a Python store (or through engines a
  factory builds);
- ``record_processes``: M processes of N threads against a store that processes share, named by
  URL (``redis://...``); every process makes its own store with ``actiongate.store_from_url``;
- ``replay_sequentially``: a recorded history's checks run again one at a time through the
  target's protocol connection, judged by the oracle, so that a logic bug is not called a race;

Every check takes its ``now`` from one shared clock at invocation: the k-th reading is
``start + k * step``, so the values are deterministic and increase with invocation order, while
``time.monotonic_ns()`` stamps the invocation and the return. CLOCK_MONOTONIC is system-wide on
Linux, so stamps from different processes compare. The recorded History goes to
``linearizability.check_history``.
"""

from __future__ import annotations

from .processes import record_processes
from .replay import replay_sequentially
from .threads import SharedClock, decision_fields, record_threads

__all__ = [
    "SharedClock",
    "decision_fields",
    "record_processes",
    "record_threads",
    "replay_sequentially",
]
