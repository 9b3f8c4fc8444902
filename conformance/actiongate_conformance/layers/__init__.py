"""The layers of ``run``: vectors, the stateful model, atomicity and injected store faults.

Each layer drives a target and returns a result of its own. May import ``data``, ``checkers``
and ``targets``; never ``reports`` or ``cli``, which sit above.
"""
