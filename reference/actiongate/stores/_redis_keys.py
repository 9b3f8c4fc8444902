"""Where the Redis stores keep each gate: the key layout of SEMANTICS.md Appendix B (ID-2).

One gate, one key: ``<prefix>:<n>:<namespace>:<m>:<action>:<principal>``. Ports in other
languages that share a Redis with this one make the same bytes.
"""

from __future__ import annotations

import re

from .._errors import ConfigurationError
from .._types import Gate

__all__ = ["DEFAULT_PREFIX", "checked_prefix", "encode_gate", "gate_key", "scan_pattern"]

DEFAULT_PREFIX = "actiongate"


def checked_prefix(prefix: object) -> bytes:
    """The prefix as UTF-8, or a ConfigurationError naming why it cannot be one."""
    # ':' followed by a digit is where a gate's encoding begins; a prefix holding one could
    # name another prefix's keys ("a" + ":1:x:..." vs "a:1:x" + ":..."), so it is refused.
    if not isinstance(prefix, str) or not prefix:
        raise ConfigurationError(f"prefix must be a non-empty string, got {prefix!r}")
    if re.search(r":[0-9]", prefix):
        raise ConfigurationError(f"prefix must not hold ':' before a digit, got {prefix!r}")
    try:
        return prefix.encode()
    except UnicodeEncodeError:
        raise ConfigurationError(f"prefix must be valid Unicode, got {prefix!r}") from None


def gate_key(prefix: str, gate: Gate) -> bytes:
    """The gate's key: ``<prefix>:<n>:<namespace>:<m>:<action>:<principal>``, UTF-8.

    ``n`` and ``m`` are the UTF-8 byte lengths of namespace and action, in decimal. The
    encoding is injective (ID-2): strip ``<prefix>:``, read digits up to ':' as ``n``, take ``n``
    bytes as the namespace, skip ':', read ``m`` likewise, take ``m`` bytes as the action, skip
    ':', and the rest is the principal. Every key thus decodes to exactly one gate, so two gates
    with one key are one gate, whatever bytes their fields hold. Across prefixes: a key of
    prefix ``P`` is ``P`` + ':' + a digit, and no prefix holds ':' before a digit, so a key with
    two prefixes ``P`` shorter than ``Q`` would put ':' and a digit inside ``Q``.
    """
    return encode_gate(checked_prefix(prefix), gate)


def encode_gate(prefix: bytes, gate: Gate) -> bytes:
    """``gate_key`` for a prefix ``checked_prefix`` has already passed."""
    namespace, action = gate.namespace.encode(), gate.action.encode()
    return b"%s:%d:%s:%d:%s:%s" % (
        prefix,
        len(namespace),
        namespace,
        len(action),
        action,
        gate.principal.encode(),
    )


def scan_pattern(prefix: bytes) -> bytes:
    """The SCAN MATCH glob of every key under ``prefix`` and of no other prefix (CLR-2)."""
    # A glob: escape its special characters, then ':' and the length's digit.
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", prefix) + b":[0-9]*"
