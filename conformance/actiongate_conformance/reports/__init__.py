"""What a run says: terminal text, JSON, JUnit, and the compatibility matrix of several runs.

Reads the layers' results; imports ``data``, ``checkers`` and ``layers``, never ``cli``.
"""
