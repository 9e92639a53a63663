"""What to do after one attempt of a request: done, retry, reconcile, or fail.

The API has no idempotency key and every run is a billed call, so a create is retried only when it provably
never reached the application (no connection made, or a 429 / 503, which create nothing); when it may have
(a timeout or reset after sending, another 5xx), the answer is ``reconcile``. Polls retry any transient failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

from stressor.limits.backoff import Backoff, RetryBudget
from stressor.limits.signals import DEFAULT_MAX_PAUSE, read_signal

AttemptKind = Literal["create", "poll"]
Action = Literal["done", "retry", "reconcile", "fail"]
TransportFailure = Literal[
    "connect_refused",
    "connect_error",
    "connect_timeout",
    "read_timeout",
    "write_error",
    "reset",
    "remote_protocol",
]
TRANSPORT_FAILURES: frozenset[str] = frozenset(get_args(TransportFailure))

CAUSE_OK = "ok"
CAUSE_RETRY_BUDGET = "retry_budget"

# Transport failures whose request never left the client: nothing can exist on the server.
_NOT_SENT = frozenset({"connect_refused", "connect_error", "connect_timeout"})
TRANSPORT_CAUSES: Mapping[str, str] = MappingProxyType(
    {
        "connect_refused": "connect",
        "connect_error": "connect",
        "connect_timeout": "timeout",
        "read_timeout": "timeout",
        "write_error": "write",
        "reset": "reset",
        "remote_protocol": "protocol",
    }
)
# 501 and 505 say the server will never handle this request; retrying cannot help.
_PERMANENT_5XX = frozenset({501, 505})


@dataclass(frozen=True, slots=True)
class HttpOutcome:
    """The attempt got an HTTP response."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


Outcome = HttpOutcome | int | TransportFailure
"""An HTTP response (`HttpOutcome`, or a bare status when headers do not matter) or a transport failure."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do next, and why.

    - `action`: `done` (success), `retry` (send again), `reconcile` (a create may or may not exist: list runs
      to find out before anything else), `fail` (give up on this request).
    - `delay`: seconds to wait before acting when the server said so (Retry-After or an exhausted quota's
      reset), or once `plan_retry` has settled it; None means "no server-given delay: use your backoff".
    - `cause`: a stable label for metrics: `ok`, `http_429`, `http_503`, `http_5xx`, `http_<4xx code>`,
      `http_<other code>`, `connect`, `timeout`, `write`, `reset`, `protocol`, `retry_budget`.
    """

    action: Action
    delay: float | None
    cause: str


def classify_attempt(
    kind: AttemptKind,
    outcome: Outcome,
    *,
    now_wall: float,
    max_pause: float = DEFAULT_MAX_PAUSE,
) -> Decision:
    """Decide what follows one attempt of a `create` (POST, not idempotent) or a `poll` (GET, idempotent).

    `now_wall` (epoch seconds at the response) turns an HTTP-date Retry-After or an epoch reset into a delay.

    | outcome                                           | create    | poll  |
    |---------------------------------------------------|-----------|-------|
    | 2xx                                               | done      | done  |
    | 429, 503                                          | retry     | retry |
    | other 5xx (500, 502, 504, ...)                    | reconcile | retry |
    | 501, 505                                          | fail      | fail  |
    | 4xx other than 429, 1xx, 3xx                      | fail      | fail  |
    | connect_refused, connect_error, connect_timeout   | retry     | retry |
    | read_timeout, write_error, reset, remote_protocol | reconcile | retry |

    A connect timeout counts as "never sent": no connection existed, so no request bytes left the client.
    """
    if kind not in ("create", "poll"):
        raise ValueError(f"kind must be 'create' or 'poll', got {kind!r}")
    if isinstance(outcome, str):
        return _classify_transport(kind, outcome)
    if isinstance(outcome, int) and not isinstance(outcome, bool):
        outcome = HttpOutcome(status=outcome)
    if not isinstance(outcome, HttpOutcome):
        raise TypeError(f"outcome must be an HttpOutcome, a status or a transport failure, got {outcome!r}")
    return _classify_http(kind, outcome, now_wall, max_pause)


def plan_retry(
    decision: Decision,
    *,
    attempt: int,
    now: float,
    backoff: Backoff,
    budget: RetryBudget | None = None,
    max_retries: int = 5,
) -> Decision:
    """Settle a `retry` decision against the retry limits; any other decision is returned unchanged.

    `attempt` is the number of retries already made for this request. The result is `fail` with the original
    cause once `max_retries` retries were made, `fail` with cause `retry_budget` when the budget refuses, else
    `retry` with a concrete delay: the server's when it gave one (the shared limiter spreads the requests that
    were all told the same instant), otherwise full-jitter backoff. Nothing is recorded in the budget: call
    `budget.record_retry(now)` when the retry is actually made.
    """
    if decision.action != "retry":
        return decision
    if attempt >= max_retries:
        return Decision("fail", None, decision.cause)
    if budget is not None and not budget.can_retry(now):
        return Decision("fail", None, CAUSE_RETRY_BUDGET)
    delay = decision.delay if decision.delay is not None else backoff.delay(attempt)
    return Decision("retry", delay, decision.cause)


def _classify_transport(kind: AttemptKind, failure: str) -> Decision:
    if failure not in TRANSPORT_FAILURES:
        known = ", ".join(sorted(TRANSPORT_FAILURES))
        raise ValueError(f"unknown transport failure {failure!r}; expected one of {known}")
    cause = TRANSPORT_CAUSES[failure]
    if kind == "poll" or failure in _NOT_SENT:
        return Decision("retry", None, cause)
    return Decision("reconcile", None, cause)


def _classify_http(kind: AttemptKind, outcome: HttpOutcome, now_wall: float, max_pause: float) -> Decision:
    status = outcome.status
    if 200 <= status < 300:
        return Decision("done", None, CAUSE_OK)
    if status in (429, 503):
        return Decision("retry", _server_delay(outcome, now_wall, max_pause), f"http_{status}")
    if 500 <= status < 600:
        if status in _PERMANENT_5XX:
            return Decision("fail", None, "http_5xx")
        return Decision("retry" if kind == "poll" else "reconcile", None, "http_5xx")
    if 100 <= status < 600:
        return Decision("fail", None, f"http_{status}")
    return Decision("fail", None, "http_invalid")


def _server_delay(outcome: HttpOutcome, now_wall: float, max_pause: float) -> float | None:
    # With now_mono = 0 the signal's retry_at is the delay itself.
    signal = read_signal(outcome.status, outcome.headers, 0.0, now_wall, max_pause)
    return None if signal is None else signal.retry_at
