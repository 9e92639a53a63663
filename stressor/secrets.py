"""Keeping keys out of sight: every place that shows a secret shows its mask."""

from __future__ import annotations


def mask_secret(secret: str | None) -> str:
    """``sk_live_1234...abcd`` -> ``sk_live_...abcd``: enough to tell keys apart, too little to use one."""
    if not secret:
        return "(none)"
    head = secret[:12]
    prefix = head[: head.rfind("_") + 1]
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{prefix}...{tail}"
