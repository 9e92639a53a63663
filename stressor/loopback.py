"""Whether an address is loopback: the simulator and the webhook receiver listen only there unless told
otherwise. A module of its own so that a run checks it without importing the ASGI server (uvicorn)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface (``localhost`` or a loopback IP literal)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
