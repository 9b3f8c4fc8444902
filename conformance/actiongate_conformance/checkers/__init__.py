"""The suite's independent judges: the oracle and the linearizability checker.

Each is SEMANTICS.md read afresh: nothing here imports ``actiongate`` or any other part of the
suite, so a bug in the reference engine cannot hide in its own judge.
"""
