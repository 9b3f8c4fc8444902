"""The stateful model: hypothesis drives a target and the oracle side by side, step by step.

Theory of operation
-------------------
``machine.Model`` is one ``RuleBasedStateMachine``. Each example resets the target and a fresh
``Oracle``, starts its clock at 0 or at an epoch-sized time, and runs up to ``steps`` steps:
checks of gates from a fixed pool (separators, empty fields, NFC and NFD, U+0000) at times a
step away from the last (zero, exactly the window or cooldown after the gate's last check or
one binary64 either side, the next or previous binary64, backwards, back to the gate's last
check, exactly the window after the gate's oldest retained event or one binary64 later); bursts
at one instant; invalid input; clear; clear_all; and store failures when the target declares
``store_faults``. Each gate has a home policy among three drawn per example (max_calls 0 and 1,
null windows, cooldowns longer than the window among them) and sometimes uses another (POL-6).
Some examples open with a bulk: 40, 130 or 260 ALLOWs of a gate inside one window, sent
pipelined and each judged, so that a store keeping a bounded number of events shows, and the
oldest-event steps then age them out one by one. After every step the target's response is
compared with the oracle's by ``runner.compare``: the same fields, binary64 equality, and the
echoes of gate, policy and now.

Batching (``Run.batched``). The oracle works out each expected answer without the target's,
except for a check that RET-4 leaves open, whose result it takes from the target's answer. So
an example's steps are queued (``Queued``) and sent in one pipelined batch: at its end
(``teardown``), with a bulk, or with a check whose answer the model needs before its next step.
The answers are judged in order; the first wrong one is the failure, and the steps after it
are dropped. Store faults and clears are protocol requests too, carried out in their order.
Hypothesis shrinks by the step where a failure is raised, so a batched search that finds one
stops (``Found``) and the search runs again with the same seed, a step at a time, as it always
did: the examples before the failing one, known to pass, are only drawn, not sent. So the
counterexample, its shrinking and its vector do not depend on the batching.

Gates, policies and times recur through sampled pools and relative steps rather than
``Bundle``s: a bundle is drawn from by index, and deleting an earlier step shifts every index
after it, which defeats hypothesis' shrinking of long runs.

Housekeeping (RET-4). Where a store may already have dropped an event a check retains (after a
backwards step or a wider window), the oracle accepts every answer the store could give and
follows the one the target gave; everywhere else it is exact. A vector must hold for every
conforming store, so only a failure with no such step before it is a ``Counterexample`` for
hypothesis to shrink and emit as a vector. A target whose answer is none of those permitted is
wrong too, but its run ends quietly as a pass for hypothesis (which then keeps looking for a
plain failure, and never shrinks into one of these) and is kept aside: it is reported, unshrunk
and without a vector, only if the search finds no plain failure.

A counterexample carries the steps its run sent, with the oracle's expected values (a bulk's
ALLOWs as one ``bulk`` step, the failing check apart) and the clauses its last step breaks:
hypothesis replays the shrunk run last, so the exception it raises is the minimal one. Then
``minimize`` deletes the steps the failure does not need, which hypothesis cannot always do:
its times are relative, the counterexample's absolute. Clears are sent while the store fails
too, and must answer ``store_error`` and clear nothing (CLR-1).
"""

from __future__ import annotations

from .emit import vector_document
from .search import StatefulResult, run_stateful
from .trace import Counterexample

__all__ = ["Counterexample", "StatefulResult", "run_stateful", "vector_document"]
