"""Settings of the test-calls simulator, and the distributions it draws from.

Every default makes a useful local simulator (20 slots, calls of about 45 API seconds lasting 45 ms, no
failures, faults or webhooks). Bad values raise ``SimConfigError``, one sentence naming the setting.
``SimConfig.from_mapping`` takes the ``stressor sim`` flags' names and values as a profile writes them.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal
from urllib.parse import urlsplit

from stressor.profile import Profile, ProfileError
from stressor.sim.tiers import PRODUCTS, TIERS, Tier
from stressor.sim.windows import ERROR_STATUSES, ErrorBurst, ErrorStatus, Stall
from stressor.units import parse_duration, parse_rate

DistributionKind = Literal["fixed", "uniform", "lognormal", "exponential"]

_ARITY: dict[str, int] = {"fixed": 1, "uniform": 2, "lognormal": 2, "exponential": 1}
_SYNTAX = "expected fixed(x), uniform(a,b), lognormal(median,sigma) or exponential(mean)"
_CALL_RE = re.compile(r"^\s*([A-Za-z]+)\s*\((.*)\)\s*$")
_BARE_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_STANDARD_NORMAL = NormalDist()


def check_simulator_table(profile: Profile) -> None:
    """A profile's ``[simulator]`` table may hold only the simulator's settings, but the API key (stressor gives
    the embedded simulator its own). Raises ProfileError naming the first unknown key and the allowed ones."""
    allowed = sorted(name for name in SimConfig.__dataclass_fields__ if name != "api_key")
    unknown = sorted(set(profile.simulator) - set(allowed))
    if unknown:
        listed = ", ".join(allowed)
        raise ProfileError(profile.source, f"simulator.{unknown[0]}", f"is not a known key (allowed here: {listed})")


class SimConfigError(ValueError):
    """A simulator setting has a bad value; ``setting`` names it (e.g. ``"failure_rate"``)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class Distribution:
    """A distribution of non-negative numbers: ``fixed(x)``, ``uniform(a,b)``, ``lognormal(median,sigma)`` or
    ``exponential(mean)``. Build one with the class methods or ``Distribution.parse(text)``. The unit is the
    setting's: API seconds for call durations, real seconds for delays, a 0..1 score for grades."""

    kind: DistributionKind
    a: float
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _ARITY:
            raise ValueError(f"unknown distribution {self.kind!r}: {_SYNTAX}")
        if not (math.isfinite(self.a) and math.isfinite(self.b)):
            raise ValueError(f"distribution {self} has a parameter that is not a finite number")
        problem = self._problem()
        if problem:
            raise ValueError(f"distribution {self} is invalid: {problem}")

    def _problem(self) -> str:
        if self.kind == "fixed" and self.a < 0:
            return "the duration must be at least 0"
        if self.kind == "uniform" and not 0 <= self.a <= self.b:
            return "it needs 0 <= a <= b"
        if self.kind == "lognormal" and (self.a <= 0 or self.b < 0):
            return "the median must be above 0 and sigma at least 0"
        if self.kind == "exponential" and self.a <= 0:
            return "the mean must be above 0"
        return ""

    @classmethod
    def fixed(cls, seconds: float) -> Distribution:
        """Always ``seconds``."""
        return cls("fixed", float(seconds))

    @classmethod
    def uniform(cls, low: float, high: float) -> Distribution:
        """Uniform between ``low`` and ``high``."""
        return cls("uniform", float(low), float(high))

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> Distribution:
        """Log-normal with this median and sigma (of the underlying normal): call lengths look like this."""
        return cls("lognormal", float(median), float(sigma))

    @classmethod
    def exponential(cls, mean: float) -> Distribution:
        """Exponential with the given mean."""
        return cls("exponential", float(mean))

    @classmethod
    def parse(cls, text: str) -> Distribution:
        """Parse ``"lognormal(45,0.3)"``, ``"fixed(30)"``, ... (a bare number means ``fixed``).

        Raises ValueError with a sentence quoting the text when it is not a distribution.
        """
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not a distribution: {_SYNTAX}")
        try:
            return cls.fixed(float(text))
        except ValueError:
            pass  # not a bare number: try the function syntax below
        match = _CALL_RE.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a distribution: {_SYNTAX}")
        name = match.group(1).lower()
        if name not in _ARITY:
            raise ValueError(f"{text!r} names an unknown distribution {name!r}: {_SYNTAX}")
        parts = [part.strip() for part in match.group(2).split(",")] if match.group(2).strip() else []
        if len(parts) != _ARITY[name]:
            raise ValueError(f"{text!r} needs {_ARITY[name]} number(s): {_SYNTAX}")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            raise ValueError(f"{text!r} has a parameter that is not a number: {_SYNTAX}") from None
        return cls(name, *numbers)  # type: ignore[arg-type]  # name was checked against _ARITY

    @property
    def mean(self) -> float:
        """The mean of the distribution."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "lognormal":
            return self.a * math.exp(self.b * self.b / 2)
        return self.a

    def quantile(self, u: float) -> float:
        """The value a share ``u`` (strictly between 0 and 1) of draws stay below: a draw, when ``u`` is one."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return self.a + (self.b - self.a) * u
        if self.kind == "lognormal":
            return math.exp(math.log(self.a) + self.b * _STANDARD_NORMAL.inv_cdf(u))
        return -self.a * math.log1p(-u)

    def sample(self, rng: random.Random) -> float:
        """Draw one value (never negative) from ``rng``."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            return math.exp(math.log(self.a) + self.b * rng.gauss(0.0, 1.0))
        return rng.expovariate(1.0 / self.a)

    def __str__(self) -> str:
        if _ARITY[self.kind] == 1:
            return f"{self.kind}({_number_text(self.a)})"
        return f"{self.kind}({_number_text(self.a)},{_number_text(self.b)})"


def _number_text(value: float) -> str:
    # whole numbers without ".0" (fixed(30)), others as repr, which parses back to the same float
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


DEFAULT_CALL_DURATION = Distribution.lognormal(45.0, 0.3)
#: Grade scores on 0..1 (draws above 1 are clamped): a median of 0.85, most calls between 0.7 and 1.
DEFAULT_GRADE_SCORE = Distribution.lognormal(0.85, 0.1)

RateLimitScope = Literal["all", "create"]
RetryAfterForm = Literal["seconds", "http-date", "none"]
RateLimitHeaders = Literal["none", "x-ratelimit", "x-ratelimit-epoch", "ietf"]
RATE_LIMIT_SCOPES: tuple[str, ...] = ("all", "create")
RETRY_AFTER_FORMS: tuple[str, ...] = ("seconds", "http-date", "none")
RATE_LIMIT_HEADER_FORMS: tuple[str, ...] = ("none", "x-ratelimit", "x-ratelimit-epoch", "ietf")
RATE_LIMIT_STATUSES: tuple[int, ...] = (429, 503)
GRADE_SCALES: tuple[int, ...] = (100, 1)
WEBHOOK_SECRET_PREFIX = "whsec_"
# The simulator process takes its API key and webhook secret from these (never from its command line).
API_KEY_ENV = "STRESSOR_SIM_API_KEY"
WEBHOOK_SECRET_ENV = "STRESSOR_SIM_WEBHOOK_SECRET"
REORDER_WINDOW_S = 0.1  # webhook_reorder holds each event a random moment up to this long
WebhookPayload = Literal["nested", "flat"]
WEBHOOK_PAYLOADS: tuple[str, ...] = ("nested", "flat")

# Where a real server may differ from the simulator (the docs leave these open): one switch each.
ListOrder = Literal["newest", "oldest"]
ListOffset = Literal["honoured", "ignored"]
BatchNameForm = Literal["whole", "absent", "truncated"]
IdForm = Literal["int", "string"]
LIST_ORDERS: tuple[str, ...] = ("newest", "oldest")
LIST_OFFSETS: tuple[str, ...] = ("honoured", "ignored")
BATCH_NAME_FORMS: tuple[str, ...] = ("whole", "absent", "truncated")
ID_FORMS: tuple[str, ...] = ("int", "string")
MAX_CLOCK_OFFSET_S = 86_400.0  # a day: beyond any skew worth simulating, and stamps stay in range


def _is_int(value: object) -> bool:
    # bool is an int subclass; a setting that wants a count must not take True for 1
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_probability(config: SimConfig, name: str) -> None:
    value = getattr(config, name)
    if not _is_number(value) or not 0 <= value <= 1:
        raise SimConfigError(name, f"{name} must be a number between 0 and 1, not {value!r}.")


def _check_choice(config: SimConfig, name: str, choices: tuple[object, ...]) -> None:
    value = getattr(config, name)
    # bool == 1 would pass for a grade scale of 1: a choice is never a bool
    if isinstance(value, bool) or value not in choices:
        listed = ", ".join(str(choice) for choice in choices)
        raise SimConfigError(name, f"{name} must be one of {listed}, not {value!r}.")


def _check_optional_distribution(config: SimConfig, name: str) -> None:
    value = getattr(config, name)
    if value is not None and not isinstance(value, Distribution):
        raise SimConfigError(name, f"{name} must be a Distribution or None, not {value!r}.")


def _webhook_url_problem(url: object) -> str:
    if not isinstance(url, str) or not url or any(ch.isspace() for ch in url):
        return "must be an http:// or https:// URL without spaces"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if port == 0:
        return "must name a port other than 0"
    return ""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Every setting of the simulator.

    Durations of calls are in *API seconds* and are scaled to real time by ``time_scale`` (real seconds per
    API second). Only call durations are scaled: a batch's ``stagger_seconds`` is honoured as real seconds
    because the client computes due times from it, and every fault and webhook timing is in real seconds.

    Faults apply to API requests only (paths under ``/v1/`` except ``/v1/healthz``): readiness checks and the
    simulator's own ``/_sim/`` endpoints are never faulted. Whether a faulted run-creating POST created its runs
    first is stated per fault: see ``stressor.sim.faults``.
    """

    slots: int = 20
    """Org-wide concurrent call slots: at most this many runs are ``in_progress`` at any instant."""
    call_duration: Distribution = DEFAULT_CALL_DURATION
    """Distribution of call lengths in API seconds."""
    time_scale: float = 0.001
    """Real seconds per API second of call (0.001: a 45 s call lasts 45 ms)."""
    failure_rate: float = 0.0
    """Probability (0..1) that a run ends ``failed`` instead of ``completed``."""
    estimated_cost_cents: int = 16
    """Pre-call estimate per run, shown on runs and (times run_count) on batches."""
    charge_multiplier: int = 2
    """Test calls cost this many times the normal rate."""
    api_key: str | None = None
    """None: any non-empty Bearer token is accepted; else the token must match exactly."""
    seed: int | None = None
    """Seed of the random draws (durations, failures, grades, ids, faults, webhooks); None picks one at random."""
    product: str = "spark"
    """Product tier of agents ``agents`` does not name (and of phone-number targets): see ``stressor.sim.tiers``."""
    agents: tuple[tuple[int, str], ...] = ()
    """Which product tier each agent runs on, as (agent id, product) pairs sorted by id (a mapping such as
    ``{"201": "spark", "202": "bolt"}`` is taken and turned into them); agents not named run on ``product``."""
    agent_versions: tuple[tuple[int, int], ...] = ()
    """The behaviour version of each agent, as (agent id, version) pairs sorted by id (a mapping is taken too);
    agents not named are version 1. A version above 1 stands for a prompt change: see ``stressor.sim.agents``."""

    # -- where a real server may differ (the docs leave these open) --------------------------------------

    list_order: ListOrder = "newest"
    """Order of ``GET /v1/test-calls`` and ``GET /v1/test-call-batches``: ``newest`` first, or ``oldest``."""
    list_offset: ListOffset = "honoured"
    """Whether lists honour ``offset`` (``honoured``), or start every page at the list's start (``ignored``)."""
    page_cap: int | None = None
    """Most items a list page holds whatever ``limit`` asks (a short page is then not the end); None: no cap
    below the API's own (200)."""
    batch_name: BatchNameForm = "whole"
    """How batches show their ``name``: ``whole`` (as sent), ``absent`` (no ``name`` key at all) or
    ``truncated`` (cut to ``batch_name_length`` characters); in the create answer, lists and details alike."""
    batch_name_length: int = 16
    """Characters of a batch name kept with ``batch_name = "truncated"``."""
    clock_offset: float = 0.0
    """Seconds the server's clock is ahead of the true time (negative: behind): added to every stamp the
    server writes (runs, batches, grades, call logs, webhook signatures, ``Date``, HTTP-date ``Retry-After``).
    Ground truth keeps true times."""
    ids: IdForm = "int"
    """Ids of runs, batches and calls: ``int`` (JSON integers, as the docs show) or ``string`` (``tc_...``,
    ``tcb_...``, ``call_...``). Paths take their text form either way."""

    # -- faults --------------------------------------------------------------------------------------------

    rate_limit: float | None = None
    """Requests per second the API admits (GCRA over ``rate_limit_scope``); None: no limit."""
    rate_limit_burst: int | None = None
    """Requests admitted back to back after a quiet spell; None: one second's worth (ceil of rate_limit)."""
    rate_limit_scope: RateLimitScope = "all"
    """What the rate limit counts: ``all`` API requests, or only run-creating POSTs (``create``)."""
    rate_limit_status: int = 429
    """The status of a refused request: 429, or 503 as some gateways answer. A refused request creates nothing."""
    retry_after: RetryAfterForm = "seconds"
    """``Retry-After`` on refused requests (and 503 bursts): ``seconds``, ``http-date`` or ``none``."""
    rate_limit_headers: RateLimitHeaders = "none"
    """Quota headers on every answer the limit counts: ``none``, ``x-ratelimit`` or ``ietf``."""
    error_rate: float = 0.0
    """Probability (0..1) that an API request is answered 500/503 (``error_status``) instead."""
    error_status: ErrorStatus = "mixed"
    """The status of ``error_rate`` faults: ``500``, ``503`` or ``mixed`` (either, at random)."""
    error_burst: ErrorBurst | None = None
    """Periodic windows during which every API request fails (``every=5s,length=1s,status=503``); None: none."""
    fault_after_create: float = 0.0
    """Probability (0..1) that a run-creating POST answered 500 or reset created its runs first (a 503 and a
    rate-limit refusal never create anything)."""
    slow_after_create: float = 0.0
    """Probability (0..1) that a run-creating POST that created its runs is answered only
    ``slow_after_create_delay`` later: a client with a shorter timeout sees a timeout though its runs exist."""
    slow_after_create_delay: float = 15.0
    """Real seconds such a create's answer is held (longer than stressor's default request timeout, 10 s)."""
    latency: Distribution | None = None
    """Extra real seconds before every API answer (not scaled by time_scale); None: none."""
    reset_rate: float = 0.0
    """Probability (0..1) that the connection of an API request is dropped without an answer."""
    stall: Stall | None = None
    """A window (``at=2s,for=2s``, seconds since start) in which requests are held until it ends; None: none."""

    # -- webhooks ------------------------------------------------------------------------------------------

    webhook_url: str | None = None
    """Where ``test-call.completed`` and ``call.graded`` events are POSTed; None: no webhooks."""
    webhook_secret: str | None = field(default=None, repr=False)
    """The ``whsec_...`` signing secret (required with webhook_url; never shown)."""
    webhook_duplicate_rate: float = 0.0
    """Probability (0..1) that a delivered event is delivered a second time."""
    webhook_delay: Distribution | None = None
    """Extra real seconds before an event's first delivery attempt; None: none."""
    webhook_reorder: bool = False
    """Hold each event a random moment (up to ``stressor.sim.webhooks.REORDER_WINDOW_S``) so events arrive
    out of order."""
    webhook_drop_rate: float = 0.0
    """Probability (0..1) that an event is never sent (lost)."""
    webhook_max_attempts: int = 8
    """Attempts per delivery before giving up (retries follow any non-2xx answer or transport error)."""
    webhook_retry_base: float = 0.05
    """Real seconds before the first retry; each later retry waits twice as long, up to webhook_retry_cap."""
    webhook_retry_cap: float = 2.0
    """Longest wait between two attempts, in real seconds."""
    webhook_payload: WebhookPayload = "nested"
    """Where ``test-call.completed`` puts the run: ``nested`` under ``data.test_call_run`` (as the API docs' CI
    handler reads it) or ``flat``, directly under ``data``."""

    # -- grades --------------------------------------------------------------------------------------------

    grade_score: Distribution = DEFAULT_GRADE_SCORE
    """Distribution of grade scores on 0..1 (draws above 1 count as 1)."""
    grade_scale: int = 100
    """How scores are written: 100 (integers 0..100, as the SDK) or 1 (0..1, as the docs)."""
    grade_delay: float = 0.0
    """Real seconds from a completed call's end to its grade (and its ``call.graded`` event)."""
    grade_twice: bool = False
    """Grade each completed call twice: a ``fast`` grade after grade_delay, the full one after twice that (and
    always at least 10 ms after the fast one, so its ``graded_at`` is the later)."""

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> SimConfig:
        """Build a config from ``{"setting": value}``, the names being those of the ``stressor sim`` flags in
        snake_case (a profile's ``[simulator]`` table, say). Missing settings keep their defaults.

        Values may be given as text where a flag takes text: distributions (``"fixed(0.2)"``, or a bare number
        for ``fixed``), windows (``"every=5s,length=1s"``), the rate limit (``10`` or ``"600/min"``), seconds
        (``0.05`` or ``"50ms"``), statuses and scales (``503`` or ``"503"``). Raises SimConfigError naming the
        key for an unknown key or a bad value.
        """
        if not isinstance(settings, Mapping):
            raise SimConfigError("settings", f"simulator settings must be a table of name = value, not {settings!r}.")
        converted: dict[str, Any] = {}
        for key, value in settings.items():
            if not isinstance(key, str) or key not in cls.__dataclass_fields__:
                raise SimConfigError(str(key), f"{key} is not a simulator setting.")
            convert = _CONVERTERS.get(key)
            if convert is None:
                converted[key] = value
                continue
            try:
                converted[key] = convert(value)
            except ValueError as bad:
                raise SimConfigError(key, f"{key}: {str(bad).rstrip('.')}.") from None
        return cls(**converted)

    @classmethod
    def from_text(cls, *, call_duration: str | Distribution = DEFAULT_CALL_DURATION, **settings: Any) -> SimConfig:
        """Build a config with the call duration given as text (``"lognormal(45,0.3)"``); the other settings
        are keyword arguments as in ``from_mapping``. Raises SimConfigError naming the bad setting."""
        return cls.from_mapping({"call_duration": call_duration, **settings})

    @property
    def effective_rate_limit_burst(self) -> int:
        """``rate_limit_burst``, or its default: one second's worth of requests, at least 1 (1 with no limit)."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit)) if self.rate_limit is not None else 1

    @property
    def faults_enabled(self) -> bool:
        """Whether any fault is configured (else the fault layer stays out of the way entirely)."""
        return (
            self.rate_limit is not None
            or self.error_rate > 0
            or self.error_burst is not None
            or self.latency is not None
            or self.reset_rate > 0
            or self.stall is not None
            or self.slow_after_create > 0
        )

    def __post_init__(self) -> None:
        self._check_core()
        self._check_differences()
        self._check_faults()
        self._check_webhooks()
        self._check_grades()

    def _check_core(self) -> None:
        if not _is_int(self.slots) or self.slots < 1:
            raise SimConfigError("slots", f"slots must be a whole number of at least 1, not {self.slots!r}.")
        if not isinstance(self.call_duration, Distribution):
            raise SimConfigError("call_duration", f"call_duration must be a Distribution, not {self.call_duration!r}.")
        if not _is_number(self.time_scale) or self.time_scale <= 0:
            raise SimConfigError(
                "time_scale",
                f"time_scale must be a number above 0 (real seconds per API second), not {self.time_scale!r}.",
            )
        _check_probability(self, "failure_rate")
        if not _is_int(self.estimated_cost_cents) or self.estimated_cost_cents < 0:
            raise SimConfigError(
                "estimated_cost_cents",
                f"estimated_cost_cents must be a whole number of at least 0, not {self.estimated_cost_cents!r}.",
            )
        if not _is_int(self.charge_multiplier) or self.charge_multiplier < 1:
            raise SimConfigError(
                "charge_multiplier",
                f"charge_multiplier must be a whole number of at least 1, not {self.charge_multiplier!r}.",
            )
        if self.api_key is not None and (
            not isinstance(self.api_key, str) or not self.api_key or any(ch.isspace() for ch in self.api_key)
        ):
            raise SimConfigError("api_key", "api_key must be a non-empty string without spaces, or None.")
        if self.seed is not None and not _is_int(self.seed):
            raise SimConfigError("seed", f"seed must be a whole number or None, not {self.seed!r}.")
        if self.product not in PRODUCTS:
            raise SimConfigError("product", f"product must be one of {', '.join(PRODUCTS)}, not {self.product!r}.")
        self._check_agents()

    def _check_agents(self) -> None:
        # a mapping (a TOML table, a dict) is accepted and kept as sorted pairs, so the config stays hashable
        for name in ("agents", "agent_versions"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                try:
                    pairs = _agent_pairs(value, _product if name == "agents" else _version)
                except ValueError as bad:
                    raise SimConfigError(name, f"{name}: {str(bad).rstrip('.')}.") from None
                object.__setattr__(self, name, pairs)
        for agent_id, product in self._pairs("agents"):
            if product not in PRODUCTS:
                raise SimConfigError(
                    "agents", f"agents: agent {agent_id} names {product!r}, which is not one of {', '.join(PRODUCTS)}."
                )
        for agent_id, version in self._pairs("agent_versions"):
            if not _is_int(version) or version < 1:
                raise SimConfigError(
                    "agent_versions",
                    f"agent_versions: agent {agent_id} has version {version!r}, not a whole number of at least 1.",
                )

    def _pairs(self, name: str) -> tuple[tuple[int, object], ...]:
        value = getattr(self, name)
        if not isinstance(value, tuple) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and _is_int(pair[0]) and pair[0] >= 1 for pair in value
        ):
            raise SimConfigError(
                name, f"{name} must map agent ids (whole numbers of at least 1) to values, not {value!r}."
            )
        return value

    def tier_of(self, target_type: str, target_id: int) -> Tier:
        """The product tier a target runs on: its entry in ``agents``, else ``product``."""
        if target_type == "agent":
            for agent_id, product in self.agents:
                if agent_id == target_id:
                    return TIERS[product]
        return TIERS[self.product]

    def version_of(self, target_type: str, target_id: int) -> int:
        """The behaviour version of a target: its entry in ``agent_versions``, else 1."""
        if target_type == "agent":
            for agent_id, version in self.agent_versions:
                if agent_id == target_id:
                    return version
        return 1

    def _check_differences(self) -> None:
        _check_choice(self, "list_order", LIST_ORDERS)
        _check_choice(self, "list_offset", LIST_OFFSETS)
        if self.page_cap is not None and (not _is_int(self.page_cap) or self.page_cap < 1):
            raise SimConfigError(
                "page_cap", f"page_cap must be a whole number of at least 1, or None, not {self.page_cap!r}."
            )
        _check_choice(self, "batch_name", BATCH_NAME_FORMS)
        if not _is_int(self.batch_name_length) or self.batch_name_length < 0:
            raise SimConfigError(
                "batch_name_length",
                f"batch_name_length must be a whole number of at least 0, not {self.batch_name_length!r}.",
            )
        if not _is_number(self.clock_offset) or abs(self.clock_offset) > MAX_CLOCK_OFFSET_S:
            raise SimConfigError(
                "clock_offset",
                f"clock_offset must be a number of seconds between -{MAX_CLOCK_OFFSET_S:g} and "
                f"{MAX_CLOCK_OFFSET_S:g}, not {self.clock_offset!r}.",
            )
        _check_choice(self, "ids", ID_FORMS)

    def _check_faults(self) -> None:
        if self.rate_limit is not None and (not _is_number(self.rate_limit) or self.rate_limit <= 0):
            raise SimConfigError(
                "rate_limit",
                f"rate_limit must be a number of requests per second above 0, or None, not {self.rate_limit!r}.",
            )
        if self.rate_limit_burst is not None and (not _is_int(self.rate_limit_burst) or self.rate_limit_burst < 1):
            raise SimConfigError(
                "rate_limit_burst",
                f"rate_limit_burst must be a whole number of at least 1, or None, not {self.rate_limit_burst!r}.",
            )
        _check_choice(self, "rate_limit_scope", RATE_LIMIT_SCOPES)
        _check_choice(self, "rate_limit_status", RATE_LIMIT_STATUSES)
        _check_choice(self, "retry_after", RETRY_AFTER_FORMS)
        _check_choice(self, "rate_limit_headers", RATE_LIMIT_HEADER_FORMS)
        _check_probability(self, "error_rate")
        _check_choice(self, "error_status", ERROR_STATUSES)
        if self.error_burst is not None and not isinstance(self.error_burst, ErrorBurst):
            raise SimConfigError("error_burst", f"error_burst must be an ErrorBurst or None, not {self.error_burst!r}.")
        _check_probability(self, "fault_after_create")
        _check_probability(self, "slow_after_create")
        if not _is_number(self.slow_after_create_delay) or self.slow_after_create_delay <= 0:
            raise SimConfigError(
                "slow_after_create_delay",
                f"slow_after_create_delay must be a number of seconds above 0, not {self.slow_after_create_delay!r}.",
            )
        _check_optional_distribution(self, "latency")
        _check_probability(self, "reset_rate")
        if self.stall is not None and not isinstance(self.stall, Stall):
            raise SimConfigError("stall", f"stall must be a Stall or None, not {self.stall!r}.")

    def _check_webhooks(self) -> None:
        if self.webhook_url is not None:
            problem = _webhook_url_problem(self.webhook_url)
            if problem:
                raise SimConfigError("webhook_url", f"webhook_url {problem}, not {self.webhook_url!r}.")
        secret = self.webhook_secret
        if secret is not None and (
            not isinstance(secret, str)
            or not secret.startswith(WEBHOOK_SECRET_PREFIX)
            or len(secret) == len(WEBHOOK_SECRET_PREFIX)
            or any(ch.isspace() for ch in secret)
        ):
            # the value is never quoted: it is a secret, even when malformed
            raise SimConfigError(
                "webhook_secret", "webhook_secret must be whsec_ followed by at least one character, without spaces."
            )
        if self.webhook_url is not None and secret is None:
            raise SimConfigError(
                "webhook_secret", "webhook_secret must be set when webhook_url is, since every webhook is signed."
            )
        _check_probability(self, "webhook_duplicate_rate")
        _check_optional_distribution(self, "webhook_delay")
        if not isinstance(self.webhook_reorder, bool):
            raise SimConfigError(
                "webhook_reorder", f"webhook_reorder must be true or false, not {self.webhook_reorder!r}."
            )
        _check_probability(self, "webhook_drop_rate")
        if not _is_int(self.webhook_max_attempts) or self.webhook_max_attempts < 1:
            raise SimConfigError(
                "webhook_max_attempts",
                f"webhook_max_attempts must be a whole number of at least 1, not {self.webhook_max_attempts!r}.",
            )
        if not _is_number(self.webhook_retry_base) or self.webhook_retry_base <= 0:
            raise SimConfigError(
                "webhook_retry_base",
                f"webhook_retry_base must be a number of seconds above 0, not {self.webhook_retry_base!r}.",
            )
        if not _is_number(self.webhook_retry_cap) or self.webhook_retry_cap < self.webhook_retry_base:
            raise SimConfigError(
                "webhook_retry_cap",
                f"webhook_retry_cap must be a number of seconds of at least webhook_retry_base "
                f"({self.webhook_retry_base!r}), not {self.webhook_retry_cap!r}.",
            )
        _check_choice(self, "webhook_payload", WEBHOOK_PAYLOADS)

    def _check_grades(self) -> None:
        if not isinstance(self.grade_score, Distribution):
            raise SimConfigError("grade_score", f"grade_score must be a Distribution, not {self.grade_score!r}.")
        _check_choice(self, "grade_scale", GRADE_SCALES)
        if not _is_number(self.grade_delay) or self.grade_delay < 0:
            raise SimConfigError(
                "grade_delay", f"grade_delay must be a number of seconds of at least 0, not {self.grade_delay!r}."
            )
        if not isinstance(self.grade_twice, bool):
            raise SimConfigError("grade_twice", f"grade_twice must be true or false, not {self.grade_twice!r}.")


# -- reading values written as text (profiles, flags) -------------------------------------------------------


def _distribution(value: object) -> object:
    if isinstance(value, str):
        return Distribution.parse(value)
    if _is_number(value):
        return Distribution.fixed(float(value))  # type: ignore[arg-type]  # _is_number checked the type
    return value


def _optional(convert: Callable[[object], object]) -> Callable[[object], object]:
    return lambda value: None if value is None else convert(value)


def _parsed(parse: Callable[[str], object]) -> Callable[[object], object]:
    return lambda value: parse(value) if isinstance(value, str) else value


def _int_choice(value: object) -> object:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _rate(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        return parse_rate(value)  # "600/min", "10/s"


def _error_status(value: object) -> object:
    if _is_int(value):
        return str(value)
    return value.strip().lower() if isinstance(value, str) else value


def _word(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _signed_seconds(value: object) -> object:
    """Seconds that may be negative: ``"6s"``, ``"-6s"``, ``"-1.5"``, ``"+250ms"`` (parse_duration refuses a
    sign, since a negative duration is a mistake everywhere else)."""
    if not isinstance(value, str):
        return value
    text = value.strip().replace(" ", "")
    sign = -1.0 if text.startswith("-") else 1.0
    magnitude = text[1:] if text.startswith(("+", "-")) else text
    try:
        if _BARE_NUMBER.fullmatch(magnitude):
            return sign * float(magnitude)
        return sign * parse_duration(magnitude)
    except ValueError:
        raise ValueError(f"expected seconds like 6s, -6s, -1.5 or 250ms, not {value!r}") from None


def _agent_id(key: object) -> int:
    text = str(key).strip() if _is_int(key) or isinstance(key, str) else ""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"{key!r} is not an agent id (a whole number of at least 1)")
    return int(text)


def _product(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a product tier (one of {', '.join(PRODUCTS)})")
    return value.strip().lower()


def _version(value: object) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if not _is_int(value):
        raise ValueError(f"{value!r} is not a version (a whole number of at least 1)")
    return value  # type: ignore[return-value]  # _is_int checked the type


def _agent_pairs(table: Mapping[object, object], convert: Callable[[object], Any]) -> tuple[tuple[int, Any], ...]:
    pairs = {_agent_id(key): convert(value) for key, value in table.items()}
    return tuple(sorted(pairs.items()))


def _agent_table(example: str) -> Callable[[object], object]:
    """``"201=spark, 202=bolt"`` (as a flag writes it) as a mapping; a mapping is left as it is."""

    def convert(text: object) -> object:
        if not isinstance(text, str):
            return text
        table: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ValueError(f"{item!r} is not agent=value (e.g. {example})")
            table[key.strip()] = value.strip()
        return table

    return convert


_CONVERTERS: dict[str, Callable[[object], object]] = {
    "agents": _agent_table("201=spark,202=bolt"),
    "agent_versions": _agent_table("201=2,202=1"),
    # where a real server may differ
    "list_order": _word,
    "list_offset": _word,
    "page_cap": _optional(_int_choice),
    "batch_name": _word,
    "batch_name_length": _int_choice,
    "clock_offset": _signed_seconds,
    "ids": _word,
    "slow_after_create_delay": _parsed(parse_duration),
    # the rest
    "call_duration": _distribution,
    "latency": _optional(_distribution),
    "webhook_delay": _optional(_distribution),
    "grade_score": _distribution,
    "error_burst": _optional(_parsed(ErrorBurst.parse)),
    "stall": _optional(_parsed(Stall.parse)),
    "rate_limit": _optional(_rate),
    "grade_delay": _parsed(parse_duration),
    "webhook_retry_base": _parsed(parse_duration),
    "webhook_retry_cap": _parsed(parse_duration),
    "webhook_payload": _word,
    "rate_limit_status": _int_choice,
    "grade_scale": _int_choice,
    "error_status": _error_status,
    "rate_limit_scope": _word,
    "retry_after": _word,
    "rate_limit_headers": _word,
}
