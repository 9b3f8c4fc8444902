"""The check script as the Redis stores send it: its text and SHA, its ARGV, its reply read back.

``check_and_reserve.lua`` (package data, read with importlib.resources) opens with the units,
KEYS, ARGV and reply it takes and gives; this module is its Python side, and does no I/O.
Numbers cross as text that reads back as the same binary64 value (TIME-2).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math

from .._errors import StoreError
from .._types import Policy

__all__ = ["SCRIPT", "SCRIPT_SHA", "TimedReply", "parse_reply", "script_args"]

SCRIPT = (
    importlib.resources.files("actiongate.stores").joinpath("check_and_reserve.lua").read_text()
)
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()  # what EVALSHA names it by

# (calls_in_window, allowed, time_since_last, now): the store reply plus the T it used.
TimedReply = tuple[int, bool, "float | None", float]


def script_args(now: float | None, policy: Policy, margin: float) -> list[str]:
    """ARGV of the script, as text that reads back exactly (TIME-2): T, window + margin and
    T - window, each computed here in binary64, so that the script adds and formats none."""
    window = policy.window
    if window is None:
        span = cutoff = ""
    else:
        span = repr(window + margin)
        cutoff = repr(window) if now is None else f"{now - window:.17g}"
    return [
        "" if now is None else f"{now:.17g}",
        span,
        cutoff,
        repr(policy.cooldown),
        str(policy.max_calls),
    ]


def _number(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {text!r}")
    return number


def parse_reply(reply: object, now: float | None) -> TimedReply:
    """The script's reply, ``b"<count> <allowed> <last or -> <now or ->"``, as Python values.

    ``now`` is the T the caller sent, None when the script took the server's. Either
    ``decode_responses`` setting: the reply is bytes or str.
    """
    try:
        text = reply.decode("ascii") if isinstance(reply, bytes) else reply
        if not isinstance(text, str):
            raise TypeError("not text")
        count, allowed, last, server_now = text.split(" ")
        if not (count.isascii() and count.isdigit()) or allowed not in ("0", "1"):
            raise ValueError("count or allowed out of range")
        if (now is None) == (server_now == "-"):
            raise ValueError("the script's T is there iff it took the server's")
        used = _number(server_now) if now is None else now
        # DEC-3: T - last in binary64, the subtraction the script would have made.
        age = None if last == "-" else used - _number(last)
        return int(count), allowed == "1", age, used
    except (TypeError, ValueError, UnicodeDecodeError) as error:
        # ERR-3: Redis ran the script, so the outcome is unknown; never a crash.
        raise StoreError(f"unreadable reply from the check script: {reply!r}") from error
