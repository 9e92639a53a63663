"""The rate-aware scheduler's pure core: limiter, server signals, backoff, adaptive limits, breaker, decisions.

Nothing here does I/O or reads a clock: every call takes the time (`now`, monotonic seconds) from the caller,
and randomness comes from an injected `random.Random`.
"""

from stressor.limits.aimd import AimdLimit
from stressor.limits.backoff import Backoff, RetryBudget
from stressor.limits.breaker import Breaker, BreakerTrip
from stressor.limits.decisions import (
    TRANSPORT_FAILURES,
    Action,
    AttemptKind,
    Decision,
    HttpOutcome,
    Outcome,
    TransportFailure,
    classify_attempt,
    plan_retry,
)
from stressor.limits.gcra import Gcra
from stressor.limits.pace import AimdRate, HeldTime
from stressor.limits.signals import DEFAULT_MAX_PAUSE, ServerSignal, parse_retry_after, read_signal
from stressor.limits.window import SlidingCounts

__all__ = [
    "DEFAULT_MAX_PAUSE",
    "TRANSPORT_FAILURES",
    "Action",
    "AimdLimit",
    "AimdRate",
    "AttemptKind",
    "Backoff",
    "Breaker",
    "BreakerTrip",
    "Decision",
    "Gcra",
    "HeldTime",
    "HttpOutcome",
    "Outcome",
    "RetryBudget",
    "ServerSignal",
    "SlidingCounts",
    "TransportFailure",
    "classify_attempt",
    "parse_retry_after",
    "plan_retry",
    "read_signal",
]
