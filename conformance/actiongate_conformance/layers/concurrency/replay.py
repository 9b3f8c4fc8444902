"""The checks of a concurrent history run again one at a time, to tell a logic bug from a race.

A history no order explains is replayed through the protocol ``Connection`` every target has
(in-process stores and ``cmd:`` ports alike): a ``reset``, then the very checks (gate, policy,
``now``) in the order they were invoked, pipelined in batches, each answer judged by the oracle
(``OracleReplay``) until the first that disagrees. No two checks overlap, so a disagreement is
the target's logic, never a race; agreement on every check means the failure needs concurrency.
"""

from __future__ import annotations

from ...checkers.linearizability import History, OracleReplay, Replay, fields_from_record
from ...targets.protocol import Connection, HarnessError

__all__ = ["BATCH", "replay_sequentially"]

BATCH = 100  # checks per pipelined request: a disagreement early stops the run early


def replay_sequentially(target: Connection, history: History) -> Replay:
    """``history``'s checks run again on a reset ``target``, one at a time, in invocation
    order; the first answer the oracle disagrees with, if any.

    A STORE_ERROR, a protocol fault or an answer that is no decision ends the run inconclusive
    when it cannot be judged: the store failed on its own, and what it recorded is unknown.
    """
    order = sorted(range(len(history.operations)), key=lambda i: history.operations[i].invoke_ns)
    judge = OracleReplay()
    try:
        target.request({"op": "reset"})
        for first in range(0, len(order), BATCH):
            batch = order[first : first + BATCH]
            requests = [_request(history, i) for i in batch]
            for number, (i, response) in enumerate(
                zip(batch, target.request_many(requests), strict=True), first
            ):
                op = history.operations[i]
                if "decision" not in response:
                    answered = str(response.get("error", response))
                    return Replay(number + 1, judge.judge(i, op, None, answered))
                got = fields_from_record(response["decision"])
                if got is None:
                    why = f"check #{i} failed with STORE_ERROR with no fault injected"
                    return Replay(number + 1, inconclusive=why)
                disagreement = judge.judge(i, op, got)
                if disagreement is not None:
                    return Replay(number + 1, disagreement)
    except HarnessError as fault:
        return Replay(0, inconclusive=f"the target failed the replay: {fault.explain()}")
    return Replay(len(order))


def _request(history: History, index: int) -> dict[str, object]:
    op = history.operations[index]
    gate = dict(zip(("namespace", "action", "principal"), op.gate, strict=True))
    return {"op": "check", "gate": gate, "policy": dict(op.policy), "now": op.now}
