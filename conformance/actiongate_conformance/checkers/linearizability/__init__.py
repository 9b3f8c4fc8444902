"""Linearizability of check histories: does some sequential order explain every decision?

Theory of operation
-------------------
RES-1 says a check reads a gate's state and reserves against it atomically. A store that reads,
then writes, passes every sequential vector yet lets two concurrent checks both claim the last
slot. So we record a concurrent history (each check's invoke and return instants, its gate,
policy, ``now`` and decision fields) and ask whether some total order of the checks (1) respects
real time (a check that returned before another was invoked comes first) and (2) gives, replayed
through the sequential model, exactly the recorded decisions. That is Herlihy and Wing's
linearizability; a history is linearizable iff each gate's sub-history is (ID-2: gates never
share state), so each gate is checked on its own, as Porcupine does.

The search is Wing and Gong's, with Lowe's memoisation, over a doubly linked list of call and
return entries sorted by time:

- scan the list from its head; a call entry met before any return entry belongs to an operation
  that may be linearized next (no unplaced operation returned before it was invoked). Step the
  model; if the output equals the recorded result and the pair (state, set of linearized
  operations) was never seen, linearize it: push it, unlink its two entries, rescan from the head;
- reaching a return entry means its operation had to be placed by now: try the indeterminate
  operations invoked before that instant (below); failing those, backtrack: pop the last placed
  operation, relink it and continue the scan after it;
- it is linearizable when every determinate operation is placed; it is not when backtracking
  finds the stack empty.

Each (state, linearized set) pair is explored at most once, so the work is bounded by the number
of such pairs reachable: with operations overlapping at most ``c`` at a time, ``O(n * 2^c)``
pairs in the worst case; on a correct history the search mostly runs straight through, about
``n * c`` model steps (the linearized set is a Python int used as a bitset). Proving a history
*not* linearizable visits every pair reachable before the conflict, far more. ``budget`` caps
the steps per gate; a gate that runs out is reported undecided, never as a verdict.

Indeterminate operations (result None: a STORE_ERROR decision or a timeout, whose write may or
may not have landed, ERR-3) are Knossos's ``:info`` operations: they have no return entry (a
write may land after the caller gave up), may take effect at any point after their invocation
with any output, or never. "Never" is not placing them. They are tried only where the search is
stuck, and a depth-first search that tries them there can spend its time on their combinations
before it backtracks the choice that was wrong; so each gate is searched first with none of them
placed, then with at most 1, 3, 7, ..., and with no limit last, stopping at a pass that succeeds
or that fails without having left one out. Two further cuts keep them cheap and lose nothing: a
placement that leaves the state as it was is skipped (not placing it leaves more options), and
so is a set of them that no remaining operation outside the set can see (the model's ``floor``
and ``inert``, when it has them).

The sequential model is anything with ``init()`` and ``step(state, op) -> (state, output)``
(states hashable; outputs compared with ``==`` to ``op.result``). ``RateLimitModel`` is
SEMANTICS.md section 5 transcribed, with RET-4: a store may drop an event between checks once it
is older than ``T' - window``, ``T'`` the time of any check the store already carried out. Those
checks may be of other gates, which a partition cannot see, so each operation carries a
``horizon``: the greatest ``now`` of any check (of any gate) invoked before it returned (for an
indeterminate one, before the instant it is placed at), an upper bound of ``T'`` at its
linearization point. Events older than ``horizon - window`` become *droppable* for good; a check
that retains some may see any subset of them, and the model takes the one that explains the
recorded result (as the oracle's ``choose`` does). This errs towards accepting: the reference
MemoryStore's housekeeping is observable under concurrency, and a model without RET-4 flags
many of its correct histories.

A counterexample is local: from the furthest point the search reached, the operation it could
not place, the unplaced operations invoked before that one returned, and the placed ones that
overlap them, after the state the earlier operations led to. If those alone admit no order
(else later operations are added), each is dropped in turn while the rest still admit none,
both without it and with it present but indeterminate (so that an operation whose event explains
another's result stays).

Before a counterexample is called a race, ``sequential`` asks whether the target is already
wrong with no concurrency: whether some check's answer is one no state of recorded events gives
(a logic bug whatever the interleaving), and, where a driver can run the target again one check
at a time, whether the oracle agrees with it there. ``HistoryVerdict.failure`` names the kind:
``"sequential"`` (a logic bug) or ``"race"``.

Nothing here imports ``actiongate``: the model is an independent reading of the spec.
"""

from __future__ import annotations

from .counterexample import Counterexample
from .history import DecisionFields, History, Operation, fields_from_record, show
from .model import Model, RateLimitModel, decide, prune, step
from .replay import OracleReplay
from .sequential import RACE, SEQUENTIAL, Disagreement, Replay, broken_clauses, first_impossible
from .verdict import HistoryVerdict, check_history

__all__ = [
    "RACE",
    "SEQUENTIAL",
    "Counterexample",
    "DecisionFields",
    "Disagreement",
    "History",
    "HistoryVerdict",
    "Model",
    "Operation",
    "OracleReplay",
    "RateLimitModel",
    "Replay",
    "broken_clauses",
    "check_history",
    "decide",
    "fields_from_record",
    "first_impossible",
    "prune",
    "show",
    "step",
]
