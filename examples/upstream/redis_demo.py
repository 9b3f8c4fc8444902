"""Upstream 0.3.0's RedisStore on three points the suite's reports do not show.

Run by upstream's venv, against a Redis database it may flush (see README.md here):

    /tmp/upv/bin/python examples/upstream/redis_demo.py redis://127.0.0.1:PORT/2

1. ERR-2: a valid policy whose key expiry Redis refuses (cooldown 1e300; any window or cooldown
   from about 6e15 s): the script adds the event, then fails on EXPIRE; the check is reported
   as a store failure although the event stays. The suite shows the STORE_ERROR (vectors
   cooldown-huge-finite-values-are-ordinary and retention-huge-window-spans-the-time-range
   fail at that step on Redis), but a vector is judged at its first wrong step, so no report
   shows that the event stays; here the next check counts it. The suite's fault wrapper fails
   before Redis, so its store-error vectors do not reach this either.
2. RET-3, RET-4: with a null window and a cooldown the key expires after 1.5 x cooldown real
   seconds, and the events with it. The suite's vectors run in milliseconds.
3. ERR-2, ERR-3: a client without ``decode_responses=True`` makes the store parse ``b"nil"``
   after its script recorded the event: a first check is a STORE_ERROR that was recorded.
"""

from __future__ import annotations

import sys
import time

import redis
from actiongate import Decision, Engine, Gate, Policy, RedisStore


def show(label: str, decision: Decision) -> None:
    reason = decision.reason.name if decision.reason else None
    print(
        f"  {label}: {decision.status.name} {reason} calls={decision.calls_in_window} "
        f"since={decision.time_since_last!r}"
    )


def main(url: str) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    now = [0.0]
    engine = Engine(store=RedisStore(client), clock=lambda: now[0])

    print("1. cooldown 1e300 (valid): the first check")
    gate = Gate("demo", "huge-cooldown", "p")
    show("t=0", engine.check(gate, Policy(max_calls=5, window=60, cooldown=1e300)))
    print("   events in Redis:", client.zcard("actiongate:demo:huge-cooldown:p"))
    now[0] = 1.0
    show("t=1, cooldown 0", engine.check(gate, Policy(max_calls=5, window=60, cooldown=0)))
    print("   spec: t=0 records nothing (ERR-2), so t=1 is ALLOW calls=1")

    print("2. window null, cooldown 1: the key's TTL is 2 s of real time")
    gate, policy = Gate("demo", "null-window", "p"), Policy(max_calls=2, window=None, cooldown=1)
    now[0] = 0.0
    show("t=0", engine.check(gate, policy))
    print("   TTL:", client.ttl("actiongate:demo:null-window:p"), "s; sleeping 2.5 s")
    time.sleep(2.5)
    now[0] = 10.0
    show("t=10", engine.check(gate, policy))
    now[0] = 20.0
    show("t=20", engine.check(gate, policy))
    print("   spec: the event at 0 never expires: t=10 ALLOW calls=2, t=20 BLOCK RATE_LIMIT")

    print("3. a client without decode_responses")
    raw = Engine(store=RedisStore(redis.Redis.from_url(url)), clock=lambda: now[0])
    gate, policy = Gate("demo", "bytes-client", "p"), Policy(max_calls=1, window=60)
    now[0] = 0.0
    show("t=0", raw.check(gate, policy))
    now[0] = 1.0
    show("t=1", raw.check(gate, policy))
    print("   spec: t=0 ALLOW calls=1, or a STORE_ERROR that recorded nothing")
    client.flushdb()


if __name__ == "__main__":
    main(sys.argv[1])
