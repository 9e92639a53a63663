"""Keeping keys out of sight: every place that shows a secret shows its mask."""

from __future__ import annotations

import re

# A key's kind, shown in its mask: one or two short alphabetic words joined and ended by underscores
# (``sk_live_``, ``sk_test_``, ``whsec_``). Digits are never part of it: they would be part of the secret.
_PREFIX = re.compile(r"[A-Za-z]{1,8}_(?:[A-Za-z]{1,8}_)?")
# The last four characters are shown only when what follows the prefix is at least this long: a short secret
# would give away too large a share of itself (four of eight characters leaves 16 bits to guess).
MIN_SECRET_FOR_TAIL = 16
TAIL = 4


def mask_secret(secret: str | None) -> str:
    """``sk_live_1234...abcd`` -> ``sk_live_...abcd``: enough to tell keys apart, too little to use one.

    The kind prefix is kept when the key starts with one (letters and underscores only); the last four
    characters only when at least 16 follow the prefix. ``None`` or an empty key gives ``(none)``.
    """
    if not secret:
        return "(none)"
    found = _PREFIX.match(secret)
    prefix = found.group() if found else ""
    rest = secret[len(prefix) :]
    tail = rest[-TAIL:] if len(rest) >= MIN_SECRET_FOR_TAIL else ""
    return f"{prefix}...{tail}"


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each secret replaced by its mask (a server may echo what it got)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask_secret(secret))
    return text
