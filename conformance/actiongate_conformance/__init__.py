"""The ActionGate 1.0 conformance suite: vectors, models and checks for any implementation.

Run it with the ``actiongate-conformance`` command; see README.md.
"""

from __future__ import annotations

__version__ = "1.0.0.dev0"
SPEC_VERSION = "1.0"
