"""Faults the simulator injects into API requests, for testing a rate-aware client: a server-side rate limit,
500/503 answers (at random and in periodic bursts), slow answers, stalls, connection resets, and creates whose
answer comes too late.

``FaultPlan`` decides, purely (seeded, time passed in); ``FaultLayer`` carries its decisions out as middleware
over the app's handler. Order, and which faults create runs first: docs/internals.md#simulator-faults.
"""

from __future__ import annotations

import math
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from email.utils import formatdate
from typing import Literal

import anyio

from stressor.sim.app import DropConnection, Handler, Request, Response, detail
from stressor.sim.config import SimConfig
from stressor.sim.model import SimModel

FaultKind = Literal["rate_limited", "error", "burst", "reset"]
Headers = tuple[tuple[str, str], ...]
Sleep = Callable[[float], Awaitable[None]]

HEALTH_ROUTE = "/v1/healthz"
CREATING_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/v1/test-calls"), ("POST", "/v1/test-call-batches")})
#: The counters of ``FaultLayer.snapshot``, always all present.
COUNTED: tuple[str, ...] = (
    "rate_limited",
    "error",
    "burst",
    "reset",
    "after_create",
    "stalled",
    "delayed",
    "slow_after_create",
)

SERVER_ERROR = "A server error occurred."
UNAVAILABLE = "Service temporarily unavailable, try again later."

_EPSILON = 1e-9  # float slack: requests spaced exactly one interval apart must not be refused by rounding
_MAX_POLICY_WINDOW_S = 3600


def is_api_request(request: Request) -> bool:
    """Whether faults apply: a path under ``/v1/`` other than the health check."""
    return request.path.startswith("/v1/") and request.route != HEALTH_ROUTE


def creates_runs(request: Request) -> bool:
    """Whether the request is one that creates runs (a single run or a batch)."""
    return (request.method, request.route) in CREATING_ROUTES


# -- the rate limit ------------------------------------------------------------------------------------------


class RateLimiter:
    """GCRA admission control: ``rate`` requests per second, up to ``burst`` back to back after a quiet spell.

    One number of state (the theoretical arrival time, TAT): a request at ``now`` is admitted when
    ``max(TAT, now) - now <= (burst - 1) / rate``, which then books ``TAT = max(TAT, now) + 1 / rate``.
    Refused requests book nothing.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError(f"a rate limiter needs rate > 0 and burst >= 1, not {rate!r} and {burst!r}")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat = -math.inf

    def admit(self, now: float) -> float:
        """0.0 when a request at ``now`` is admitted (and booked), else the seconds until one would be."""
        tat = max(self._tat, now)
        wait = tat - self._tolerance - now
        if wait > _EPSILON:
            return wait
        self._tat = tat + self._interval
        return 0.0

    def remaining(self, now: float) -> int:
        """How many requests would be admitted at ``now``, back to back."""
        backlog = max(self._tat - now, 0.0)
        if backlog > self._tolerance + _EPSILON:
            return 0
        return min(self.burst, math.floor((self._tolerance - backlog) / self._interval + _EPSILON) + 1)

    def reset_after(self, now: float) -> float:
        """Seconds until the full burst is available again."""
        return max(self._tat - now, 0.0)


def quota_policy(rate: float) -> tuple[int, int]:
    """``(q, w)``: ``rate`` per second written as whole requests per whole seconds, as quota headers need.

    ``w`` is 1 for a rate of whole requests per second, else the smallest window (up to an hour) holding a
    whole number of them (0.5/s is 1 per 2 s); failing that, the rate rounded over a minute.
    """
    for window in range(1, _MAX_POLICY_WINDOW_S + 1):
        quota = rate * window
        if quota >= 1 - _EPSILON and abs(quota - round(quota)) < 1e-6:
            return round(quota), window
    return max(1, round(rate * 60)), 60


def retry_after(form: str, wait: float, wall_now: float) -> str | None:
    """The ``Retry-After`` value for a wait of ``wait`` seconds, or None (form ``none``).

    ``seconds``: the wait rounded up to whole seconds (at least 1). ``http-date``: the IMF-fixdate of
    now + wait rounded up to the second, and at least 1 s ahead: the format has one-second resolution, so a
    date less than a second ahead could read as "now" (or the past) to the client.
    """
    if form == "none":
        return None
    if form == "seconds":
        return str(max(1, math.ceil(wait)))
    return formatdate(math.ceil(wall_now + max(wait, 1.0)), usegmt=True)


def quota_headers(form: str, limiter: RateLimiter, now: float, wall_now: float = 0.0) -> Headers:
    """The quota headers of an answer at ``now`` (after this request was counted), in ``form``.

    ``x-ratelimit``: ``X-RateLimit-Limit`` (q), ``-Remaining``, ``-Reset`` (whole seconds until the full burst
    is back: a delay). ``x-ratelimit-epoch``: the same, but ``-Reset`` is the epoch second (``wall_now`` plus
    that delay, rounded up) at which the burst is back, as GitHub and others send it. ``ietf``:
    ``RateLimit-Policy: "default";q=Q;w=W`` and ``RateLimit: "default";r=R;t=T`` (the IETF httpapi draft).
    """
    if form == "none":
        return ()
    quota, window = quota_policy(limiter.rate)
    remaining = limiter.remaining(now)
    reset = math.ceil(limiter.reset_after(now))
    if form in ("x-ratelimit", "x-ratelimit-epoch"):
        if form == "x-ratelimit-epoch":
            reset = math.ceil(wall_now + limiter.reset_after(now))
        return (
            ("x-ratelimit-limit", str(quota)),
            ("x-ratelimit-remaining", str(remaining)),
            ("x-ratelimit-reset", str(reset)),
        )
    return (
        ("ratelimit-policy", f'"default";q={quota};w={window}'),
        ("ratelimit", f'"default";r={remaining};t={reset}'),
    )


# -- decisions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault to inject into one answer.

    ``status`` is the answer's status (None for ``reset``: no answer at all); ``headers`` go with it
    (``Retry-After``); ``after_create`` says the handler runs first (a run-creating POST creates its runs
    before the answer is replaced or the connection dropped).
    """

    kind: FaultKind
    status: int | None
    headers: Headers = ()
    after_create: bool = False
    wait: float = 0.0

    def response(self) -> Response:
        """The answer that replaces the handler's (not for ``reset``)."""
        if self.status is None:
            raise ValueError("a reset has no answer")
        if self.kind == "rate_limited":
            seconds = max(1, math.ceil(self.wait))
            unit = "second" if seconds == 1 else "seconds"
            return detail(self.status, f"Request was throttled. Expected available in {seconds} {unit}.", self.headers)
        return detail(self.status, SERVER_ERROR if self.status == 500 else UNAVAILABLE, self.headers)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do with one API request: the fault (None: answer normally), the seconds to wait before
    answering, the quota headers every answer counted by the rate limit carries, and the seconds a create that
    succeeds is held after creating its runs (``slow_after_create``)."""

    fault: Fault | None = None
    latency: float = 0.0
    headers: Headers = ()
    hold_after_create: float = 0.0


class FaultPlan:
    """The pure decisions of the configured faults (docs/internals.md#simulator-faults); ``started_at`` is the
    monotonic time windows count from (the simulator's start)."""

    def __init__(self, config: SimConfig, *, started_at: float, rng: random.Random) -> None:
        self.config = config
        self.started_at = started_at
        self._rng = rng
        self.limiter = (
            RateLimiter(config.rate_limit, config.effective_rate_limit_burst) if config.rate_limit is not None else None
        )

    @property
    def active(self) -> bool:
        """Whether any fault is configured."""
        return self.config.faults_enabled

    def stall_hold(self, now: float) -> float:
        """Seconds a request arriving at ``now`` is held by the stall (0: not held)."""
        stall = self.config.stall
        return stall.hold(now - self.started_at) if stall is not None else 0.0

    def decide(self, now: float, wall_now: float, *, creates: bool) -> FaultDecision:
        """The fate of one API request handled at ``now`` (``creates``: it is a run-creating POST)."""
        config = self.config
        quota: Headers = ()
        fault: Fault | None = None
        if self.limiter is not None and (config.rate_limit_scope == "all" or creates):
            wait = self.limiter.admit(now)
            quota = quota_headers(config.rate_limit_headers, self.limiter, now, wall_now)
            if wait > 0:
                fault = Fault(
                    "rate_limited",
                    config.rate_limit_status,
                    self._retry_after(wait, wall_now),
                    wait=wait,
                )
        if fault is None:
            fault = self._failure(now, wall_now, creates=creates)
        hold = 0.0
        # drawn only for creates not faulted otherwise, so other requests do not shift the stream
        if fault is None and creates and config.slow_after_create > 0 and self._rng.random() < config.slow_after_create:
            hold = config.slow_after_create_delay
        latency = config.latency.sample(self._rng) if config.latency is not None else 0.0
        return FaultDecision(fault=fault, latency=latency, headers=quota, hold_after_create=hold)

    def _failure(self, now: float, wall_now: float, *, creates: bool) -> Fault | None:
        config = self.config
        fault: Fault | None = None
        burst_left = config.error_burst.remaining(now - self.started_at) if config.error_burst is not None else None
        if burst_left is not None and config.error_burst is not None:
            status = self._status(config.error_burst.status)
            # a 503 in a burst says when the window closes, as a server in maintenance would
            headers = self._retry_after(burst_left, wall_now) if status == 503 else ()
            fault = Fault("burst", status, headers, wait=burst_left)
        elif config.reset_rate > 0 and self._rng.random() < config.reset_rate:
            fault = Fault("reset", None)
        elif config.error_rate > 0 and self._rng.random() < config.error_rate:
            fault = Fault("error", self._status(config.error_status))
        # drawn only for faulted run-creating POSTs, so other requests do not shift the stream; a 503 never
        # follows a create (the API's contract: 429 and 503 create nothing, clients may resend them)
        if (
            fault is not None
            and fault.status != 503
            and creates
            and config.fault_after_create > 0
            and self._rng.random() < config.fault_after_create
        ):
            fault = replace(fault, after_create=True)
        return fault

    def _status(self, choice: str) -> int:
        if choice == "mixed":
            return self._rng.choice((500, 503))
        return int(choice)

    def _retry_after(self, wait: float, wall_now: float) -> Headers:
        value = retry_after(self.config.retry_after, wait, wall_now)
        return () if value is None else (("retry-after", value),)


# -- carrying them out ---------------------------------------------------------------------------------------


class FaultLayer:
    """Middleware injecting the configured faults into API requests (``create_app(middleware=[layer])``).

    ``clock`` gives monotonic seconds (the model's clock), ``wall`` turns them into epoch seconds (for
    HTTP-dates); ``sleep`` waits real seconds (a test passes one that moves its fake clock). When no fault is
    configured, wrapping returns the handler itself: no cost at all.
    """

    def __init__(
        self,
        config: SimConfig,
        clock: Callable[[], float],
        wall: Callable[[float], float],
        *,
        rng: random.Random,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.plan = FaultPlan(config, started_at=clock(), rng=rng)
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self._counts: Counter[str] = Counter()

    @classmethod
    def for_model(cls, model: SimModel, clock: Callable[[], float], *, sleep: Sleep = anyio.sleep) -> FaultLayer:
        """The layer for ``model``'s config, its draws seeded from the model's seed (a stream of their own, so
        faults never shift the model's durations or failures)."""
        seed = model.seed if model.seed is not None else secrets.randbits(32)
        return cls(model.config, clock, model.wall, rng=random.Random(f"faults:{seed}"), sleep=sleep)

    def snapshot(self) -> dict[str, int]:
        """Faults injected so far, by kind: ``rate_limited``, ``error``, ``burst``, ``reset`` (connections
        dropped), ``after_create`` (faulted run-creating POSTs that had created their runs), ``stalled``
        (requests held by the stall), ``delayed`` (answers slowed by the latency), ``slow_after_create``
        (creates whose 201 was held after they created their runs)."""
        return {kind: self._counts[kind] for kind in COUNTED}

    def __call__(self, inner: Handler) -> Handler:
        if not self.plan.active:
            return inner

        async def handler(request: Request) -> Response:
            if not is_api_request(request):
                return await inner(request)
            now = self.clock()
            hold = self.plan.stall_hold(now)
            if hold > 0:
                self._counts["stalled"] += 1
                await self.sleep(hold)
                now = self.clock()
            decision = self.plan.decide(now, self.wall(now), creates=creates_runs(request))
            fault = decision.fault
            response: Response | None = None
            if fault is None or fault.after_create:
                response = await inner(request)
            if fault is not None:
                self._counts[fault.kind] += 1
                if fault.after_create and response is not None and 200 <= response.status < 300:
                    self._counts["after_create"] += 1
                response = None if fault.status is None else fault.response()
            elif decision.hold_after_create > 0 and response is not None and 200 <= response.status < 300:
                self._counts["slow_after_create"] += 1
                await self.sleep(decision.hold_after_create)
            if decision.latency > 0:
                self._counts["delayed"] += 1
                await self.sleep(decision.latency)
            if response is None:
                raise DropConnection
            if decision.headers:
                response = replace(response, headers=(*response.headers, *decision.headers))
            return response

        return handler
