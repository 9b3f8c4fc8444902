"""What the model draws from: the gate pool, policies, start times, invalid input and the
steps' kinds; and the flags and clauses a step names."""

from __future__ import annotations

from hypothesis import strategies as st

# The gate pool: the first is the plainest, which shrinking prefers. ID-2's lookalikes.
GATES: tuple[tuple[str, str, str], ...] = (
    ("ns", "act", "p"),
    ("a:b", "c", "p"),
    ("a", "b:c", "p"),
    ("", "", ""),
    ("\u00e9", "e\u0301", "{x}"),
    ("e\u0301", "\u00e9", "{x}"),
    ("a", "b", ""),
    ("a", "", "b"),
    ("ns", "act", "P"),
    ("ns", "act", "p "),
    ("ns\x00", "act", "p"),
    ("*", "[a]", "@/|"),
)
# A third of the checks go to four hot gates, so that a gate sees deep sequences. Strategies
# are single sampled_from draws where they can be: hypothesis' cost is per choice, and each
# shrinks to its first element, the plainest.
GATE = st.sampled_from(GATES[:4] * 3 + GATES)
HOME = {gate: index % 3 for index, gate in enumerate(GATES)}
POLICY_FIELDS = ("max_calls", "window", "cooldown", "mode", "on_store_error")
POLICY = st.fixed_dictionaries(
    {
        "max_calls": st.sampled_from([2, 1, 0, 3, 7]),
        "window": st.sampled_from([10.0, None, 1.0, 0.1, 0.3, 60.0]),
        "cooldown": st.sampled_from([0.0, 0.5, 2.0, 30.0, -0.0]),  # 30 outlasts most windows
        "mode": st.sampled_from(["HARD", "SOFT"]),
        "on_store_error": st.sampled_from(["FAIL_CLOSED", "FAIL_OPEN"]),
    }
)
# Which of the example's three policies a check uses: the gate's own, mostly (POL-6).
VARIANT = st.sampled_from([0, 0, 0, 0, 0, 0, 0, 0, 1, 2])
# Where an example's clock starts: at zero, or at an epoch-sized time with a fraction, where
# binary64 differences are inexact. A jump there within an example would make every earlier
# event one that housekeeping may drop (RET-4), and leave little to check exactly after it.
START = st.sampled_from([0.0, 1.7e9 + 0.1, 1.7e9 + 0.3])
# Invalid input: (where, field, value); a check of it expects the oracle's error (POL-5).
# Field "*" replaces the whole record (ID-4, POL-7); a field no record has is an unknown member.
# (A missing member is not drawn: an emitted vector's policy gets the defaults back.)
INVALID = (
    ("policy", "*", None),
    ("gate", "*", ["ns", "act", "p"]),
    ("policy", "limit", 5),
    ("policy", "window", {"$float": "NaN"}),
    ("policy", "max_calls", True),
    ("now", "now", {"$float": "NaN"}),
    ("gate", "principal", "\ud800"),
    ("policy", "cooldown", -1.0),
    ("policy", "mode", "hard"),
    ("gate", "action", None),
    ("now", "now", 2.0**54),
    ("policy", "window", 0.0),
    ("policy", "max_calls", 2.5),
)
# A bulk: that many ALLOWs of one gate inside one window (max_calls lifted, no cooldown), each
# judged, at the start of some examples: before the steps, so that it takes no step's place,
# and at most one, since a bulk is hundreds of checks that each shrinking attempt replays.
# Sizes past the small caps a store author picks (32, 64, 100, 256), so that a store keeping a
# gate's newest N events, or a count and its newest time, shows in combination with the
# steps; vectors/capacity.json pins 33 to 10,001 on every seed. Never on a hot gate: a gate
# full of events blocks for a window, and the hot gates carry the deep sequences.
BULK = st.sampled_from([0, 0, 40, 130, 260])
BULK_GATE = st.sampled_from(GATES[4:])
BULK_MAX_CALLS = 2**20
# What a step does (see Model.step); the list's shares are the steps' frequencies. A check at a
# time relative to the last check's: zero, exactly the window or cooldown from the gate's last
# check (or one binary64 either side), at or just before the gate's last check, one binary64
# on or back, backwards; exactly the window after the gate's oldest retained event (or one
# binary64 later, when it leaves), so that a bulk's events age out one by one. Then bursts at
# one instant, clears, a store failure, invalid input.
ACTION = st.sampled_from(
    [
        ("add", 1.0),
        ("same", 0.0),
        *(("add", by) for by in (0.5, 0.1, 2.5, 10.0, 30.0, 61.0)),
        *((kind, ulps) for kind in ("window", "cooldown") for ulps in (0.0, -1.0, 1.0)),
        ("gate", 0.0),
        ("gate", -0.5),
        ("ulp", 1.0),
        ("ulp", -1.0),
        *(("back", by) for by in (0.5, 5.0)),
        *(("burst", count) for count in (3.0, 6.0, 8.0)),
        *(("oldest", ulps) for ulps in (0.0, 1.0)),
        ("clear", 0.0),
        ("clear_all", 0.0),
        ("fault", 0.0),
        ("invalid", 0.0),
        ("invalid", 5.0),
    ]
)
STEP_FLAGS = {"window": "boundary", "cooldown": "boundary", "ulp": "binary64"}
STEP_FLAGS |= {"back": "clock-backwards", "oldest": "boundary"}
CLAUSE_FLAGS = {
    "RET-1": "retention",
    "RET-2": "pruning",
    "RET-3": "null-window",
    "RET-4": "housekeeping",
    "CLK-1": "clock-backwards",
    "CD-1": "cooldown",
    "CD-2": "cooldown-interaction",
    "ORD-1": "reason-priority",
    "RATE-1": "rate-limit",
    "RES-1": "reservation",
    "RES-2": "equal-timestamps",
    "POL-6": "policy-change",
    "POL-5": "validation",
    "ERR-1": "store-error",
    "CLR-1": "clear",
    "CLR-2": "clear",
    "ID-2": "identity",
}
# The decision clause of each compared field, cited when that field was wrong.
FIELD_CLAUSES = {"status": "DEC-1", "reason": "DEC-1", "calls_in_window": "DEC-2"}
FIELD_CLAUSES |= {"time_since_last": "DEC-3", "gate": "DEC-4", "policy": "DEC-4", "now": "DEC-4"}
