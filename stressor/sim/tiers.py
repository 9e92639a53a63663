"""The product tiers the simulator plays, and how each one differs: call length, time to first audio, grades.

Slower tiers reason more: their calls last a little longer, their first audio comes later, and they grade a
little higher; a ``-with-ack`` variant plays an acknowledgement at once (a short time to first audio) and its
calls last slightly longer. The table is documented in docs/profiles.md (``[simulator]``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tier:
    """How one product tier behaves in the simulator.

    ``duration_factor`` multiplies every call length drawn from ``call_duration``; ``ttfa_ms`` is the agent's
    typical time to first audio (API milliseconds, as transcripts write it); ``grade_shift`` is added to every
    score drawn from ``grade_score`` (0..1, the sum clamped to 0..1).
    """

    product: str
    duration_factor: float
    ttfa_ms: int
    grade_shift: float


#: Every tier, fastest first; spark is the default and changes nothing (factor 1, shift 0).
TIERS: dict[str, Tier] = {
    tier.product: tier
    for tier in (
        Tier("spark", 1.000, 450, 0.00),
        Tier("spark-with-ack", 1.005, 300, 0.01),
        Tier("bolt", 1.020, 700, 0.03),
        Tier("bolt-with-ack", 1.025, 350, 0.04),
        Tier("storm-base", 1.040, 1100, 0.06),
        Tier("storm-base-with-ack", 1.045, 400, 0.07),
        Tier("storm-extra", 1.070, 1600, 0.09),
        Tier("storm-extra-with-ack", 1.075, 450, 0.10),
    )
}

#: Product tiers of the platform; the simulator stamps one of them on every call log.
PRODUCTS: tuple[str, ...] = tuple(TIERS)


def with_ack(product: str) -> bool:
    """Whether the tier answers with an acknowledgement first (``...-with-ack``)."""
    return product.endswith("-with-ack")
