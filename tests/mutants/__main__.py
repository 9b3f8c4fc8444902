"""``python3 -m tests.mutants [--write] [NAME ...]``: run the zoo, print the score and the table.

With ``--write``, also write the table to tests/mutants/CAUGHT.md, which
tests/test_mutation_zoo.py holds to a fresh run, and into README.md. With names, run only
those (and write nothing). Timings go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from . import MUTANTS
from .zoo import CAUGHT_FILE, README, readme_with, run_mutants, table


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.mutants", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {CAUGHT_FILE.name}")
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these mutants")
    options = parser.parse_args(arguments)
    unknown = [name for name in options.names if name not in MUTANTS]
    if unknown:
        parser.error(f"no mutant {', '.join(unknown)}; known: {', '.join(MUTANTS)}")
    names = options.names or list(MUTANTS)
    with tempfile.TemporaryDirectory(prefix="mutation-zoo-") as scratch:
        results = list(run_mutants(names, Path(scratch)).values())
    for result in results:
        print(f"{result.name}: exit {result.exit_code}, {result.seconds:.1f} s", file=sys.stderr)
    text = table(results)
    print(text, end="")
    print(f"total {sum(r.seconds for r in results):.1f} s", file=sys.stderr)
    if options.write and not options.names:
        CAUGHT_FILE.write_text(text, encoding="utf-8")
        README.write_text(readme_with(text), encoding="utf-8")
    return 0 if all(result.caught for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
