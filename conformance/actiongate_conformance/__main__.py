"""``python -m actiongate_conformance``: the same as the actiongate-conformance command."""

from .cli import main

main()
