"""A mutation zoo: faulty implementations, each a plausible real bug, that the suite must catch.

``MUTANTS`` is the one list: name -> ``Mutant(target, bug)``. Store mutants
(``tests/mutants/stores.py``) run as ``py:`` targets, the reference engine over the faulty store;
engine mutants (``tests/mutants/engine.py``) as ``cmd:`` targets, the reference with one patch
served over the adapter protocol by ``tests/mutants/serve.py``. A bug is the first line of its
class's or patch's docstring. The mutants of ``tests/mutants/unseen.py`` (stores) and
``tests/mutants/unseen_engine.py`` (engine) were written after the suite, from SEMANTICS.md
alone, to measure it on bugs its tests were not designed for: ``UNSEEN`` names them, and their
``Mutant.unseen`` is true. ``python3 -m tests.mutants`` runs the suite on each and prints which
layers caught it; ``tests/test_mutation_zoo.py`` holds the committed table, CAUGHT.md, to it.
"""

from __future__ import annotations

from typing import NamedTuple

from .engine import PATCHES
from .stores import STORES
from .unseen import UNSEEN_STORES
from .unseen_engine import UNSEEN_PATCHES

__all__ = ["MUTANTS", "UNSEEN", "Mutant"]


class Mutant(NamedTuple):
    target: str  # the suite's --target
    bug: str  # one line
    unseen: bool = False  # written after the suite's strategies, without reading them

    @property
    def kind(self) -> str:
        return "store" if self.target.startswith("py:") else "engine"


def _first_line(thing: object) -> str:
    return (thing.__doc__ or "").strip().splitlines()[0]


MUTANTS: dict[str, Mutant] = {
    **{
        store.__name__: Mutant(f"py:tests.mutants.stores:{store.__name__}", _first_line(store))
        for store in STORES
    },
    **{
        name: Mutant(f"cmd:python3 -m tests.mutants.serve {name}", _first_line(patch))
        for name, patch in PATCHES.items()
    },
    **{
        store.__name__: Mutant(
            f"py:tests.mutants.unseen:{store.__name__}", _first_line(store), unseen=True
        )
        for store in UNSEEN_STORES
    },
    **{
        name: Mutant(f"cmd:python3 -m tests.mutants.serve {name}", _first_line(patch), unseen=True)
        for name, patch in UNSEEN_PATCHES.items()
    },
}
UNSEEN: frozenset[str] = frozenset(name for name, mutant in MUTANTS.items() if mutant.unseen)
