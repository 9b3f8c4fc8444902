"""``python3 -m tests.mutants.serve NAME``: the reference with engine mutant NAME, as a ``cmd:``
adapter.

It applies the one patch ``PATCHES[NAME]`` of ``tests.mutants.engine`` or
``tests.mutants.unseen_engine`` in this process, then answers
protocol requests with ``ReferenceAdapter`` over a MemoryStore, a JSON line in, a JSON line out,
as the suite's in-process transport does (``json.dumps(response, allow_nan=False)``: every float
written as its shortest round-trip text, so nothing is rounded). A response JSON cannot carry (a
decision whose ``now`` is NaN) has no protocol encoding, so it is written as Python writes it,
``NaN``, and the suite reports the line as not JSON, showing what the mutant answered, where the
in-process transport would report the adapter as crashed. The store is sync, so the adapter
keeps the ``burst`` capability and the atomicity layer runs on the mutant too. Also runs as a
script, ``python3 tests/mutants/serve.py NAME``; NAME ``unpatched`` serves the reference itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: import tests.* from the repository, not from here
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from actiongate import MemoryStore
from actiongate_conformance.targets.adapter import ReferenceAdapter

from tests.mutants.engine import PATCHES as SEEN_PATCHES
from tests.mutants.unseen_engine import UNSEEN_PATCHES

PATCHES = {**SEEN_PATCHES, **UNSEEN_PATCHES}  # engine.py's, and unseen_engine.py's

UNPATCHED = "unpatched"  # the reference itself: the control of the harness


def main(arguments: list[str]) -> int:
    names = [*PATCHES, UNPATCHED]
    if len(arguments) != 1 or arguments[0] not in names:
        print(f"usage: python3 -m tests.mutants.serve {{{','.join(names)}}}", file=sys.stderr)
        return 2
    name = arguments[0]
    if name != UNPATCHED:
        PATCHES[name]()
    adapter = ReferenceAdapter(MemoryStore, name=f"actiongate reference, engine mutant {name}")
    try:
        for line in sys.stdin:
            request = json.loads(line)
            response = adapter.handle(request)
            sys.stdout.write(_encoded(response) + "\n")
            sys.stdout.flush()
            if request.get("op") == "bye":
                break
    finally:
        adapter.close()
    return 0


def _encoded(response: dict[str, Any]) -> str:
    try:
        return json.dumps(response, allow_nan=False)
    except ValueError as error:
        print(f"{error}: writing it anyway, as NaN or Infinity", file=sys.stderr, flush=True)
        return json.dumps(response)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
