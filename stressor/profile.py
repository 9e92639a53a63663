"""The profile: what to drive, with which load shape, within which limits. Loading and validation.

A profile is a TOML (or JSON) file, documented in docs/profiles.md. Every mistake in it ends in one
``ProfileError`` naming the file, the field path and what is allowed
(``profiles/x.toml: stages[1].batch.runs: must be an integer from 1 to 20, got 21``).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from stressor.scores import GRADE_SCALES, GradeScale
from stressor.thresholds import ThresholdError, parse_threshold
from stressor.units import parse_duration, parse_rate

MAX_RUNS_PER_BATCH = 20
MAX_IN_FLIGHT = 1_000_000
MAX_ID = 2**63 - 1  # ids the API takes as integers: a signed 64-bit one at most
MAX_NUMBER = 1e15  # costs and budgets: beyond any real figure, and still exact as a float
MAX_STAGGER_S = 60.0
MAX_STAGE_BATCHES = 1e12  # an open stage's integral: far past any real test, still exact as a float
POLL_GROWTH_BOUND = 10  # default poll_interval_max: this many poll intervals...
POLL_INTERVAL_MAX_CAP_S = 30.0  # ...but no more than this (never less than poll_interval itself)
TARGET_KINDS = ("test-calls",)
SUBMIT_MODES = ("batch", "single")
TARGET_TYPES = ("agent", "phone_number")
DIRECTIONS = ("outbound", "inbound")
CALL_MODES = ("bot", "sip")
DEFAULT_CALL_FETCHES = 8  # call logs fetched at once
MAX_CALL_FETCHES = 256
DEFAULT_CALLS_WAIT_S = 30.0  # after the last call is due, how long its fetch may take (when [calls] wait is not set)

T = TypeVar("T")


class ProfileError(ValueError):
    """A profile that cannot be run; the message is one sentence naming file, field and what is allowed."""

    def __init__(self, source: str, field_path: str, message: str) -> None:
        self.source = source
        self.field_path = field_path
        where = f"{source}: {field_path}" if field_path else source
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Ramp:
    """A quantity that goes linearly from ``start`` to ``end`` over a stage (equal ends: constant)."""

    start: float
    end: float

    def at(self, fraction: float) -> float:
        """The value at ``fraction`` (0..1) of the stage."""
        return self.start + (self.end - self.start) * fraction

    @property
    def peak(self) -> float:
        return max(self.start, self.end)

    @property
    def mean(self) -> float:
        return (self.start + self.end) / 2


@dataclass(frozen=True, slots=True)
class OpenLoad:
    """Open model: batches arrive at a rate (per second) whatever the server does."""

    batches_per_s: Ramp


@dataclass(frozen=True, slots=True)
class ClosedLoad:
    """Closed model: keep this many runs in flight, topping up with new batches as runs end."""

    runs_in_flight: Ramp


@dataclass(frozen=True, slots=True)
class Pause:
    """Nothing new starts; runs in flight go on."""


Load = OpenLoad | ClosedLoad | Pause


@dataclass(frozen=True, slots=True)
class BatchShape:
    """How one batch looks: runs per batch (1..20) and seconds between the launches of its runs (0..60)."""

    runs: int = 1
    stagger_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Stage:
    """One stretch of the profile: a duration, a load model and a batch shape."""

    name: str
    duration_s: float
    load: Load
    batch: BatchShape


@dataclass(frozen=True, slots=True)
class RunRequest:
    """The fields of the API's run request that say what to call (the prompt is dealt separately)."""

    target_type: str = "agent"
    target_id: int = 1
    direction: str = "outbound"
    mode: str = "bot"
    target_number: str | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of a comparison (an agent, a product tier): a name and the request it sends."""

    name: str
    request: RunRequest


# What a corpus entry may expect of each of its runs (docs/profiles.md [scenarios]): the grade's call_outcome of
# a run that completed, or only how the run ended.
EXPECTED_OUTCOMES = ("success", "failure", "no_conversation", "completed", "failed")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One prompt of the corpus; every run carries the name of the scenario it was dealt. ``expected_outcome``
    is checked against each run (one of ``EXPECTED_OUTCOMES``); ``goal`` is free text, shown, never checked."""

    name: str
    prompt: str
    expected_outcome: str | None = None
    goal: str | None = None


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Where runs go and how they are followed."""

    kind: str = "test-calls"
    base_url: str | None = None
    submit: Literal["batch", "single"] = "batch"
    poll_interval_s: float = 1.0
    poll_interval_max_s: float | None = None  # polls slow down as a batch ages, up to this (None: fixed)
    request_timeout_s: float = 10.0
    # True when the profile left poll_interval_max out: the bound then follows poll_interval (see
    # default_poll_interval_max), also when a flag replaces the interval.
    poll_interval_max_default: bool = False

    def __post_init__(self) -> None:
        if self.poll_interval_max_default:
            object.__setattr__(self, "poll_interval_max_s", default_poll_interval_max(self.poll_interval_s))


@dataclass(frozen=True, slots=True)
class Cost:
    """What runs cost and what the user allows: the cost guard reads this."""

    consent_to_charge: bool = False
    budget_cents: float | None = None
    cost_per_run_cents: float = 8.0
    charge_multiplier: float = 2.0

    @property
    def run_cost_cents(self) -> float:
        """Estimated cost of one run, the multiplier included."""
        return self.cost_per_run_cents * self.charge_multiplier


@dataclass(frozen=True, slots=True)
class Limits:
    """How stressor treats the server: client-side limits, backoff, and whether it obeys push-back at all.

    ``mode = "obey"`` (default) honours 429/503, Retry-After and rate-limit headers, backs off, adapts the
    runs in flight (AIMD) and stops submitting when the breaker trips. ``mode = "stress"`` keeps the offered
    load: 429/503 on a create end that batch as ``rejected``, and nothing pauses or shrinks.
    """

    mode: Literal["obey", "stress"] = "obey"
    create_rate: float = math.inf
    poll_rate: float = math.inf
    max_runs_in_flight: int | None = None
    max_batches_in_flight: int | None = None
    max_start_delay_s: float = 10.0
    adaptive: bool = True
    max_retries: int = 5
    retry_ratio: float = 0.1
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 30.0
    max_pause_s: float = 300.0
    breaker_window_s: float = 30.0
    breaker_failure_ratio: float = 0.5
    breaker_min_requests: int = 20


@dataclass(frozen=True, slots=True)
class Webhooks:
    """Completion by webhook: where to listen, the URL the API should call, when to fall back to polling."""

    enabled: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    public_url: str | None = None
    fallback: float | Literal["auto", "off"] = "auto"


@dataclass(frozen=True, slots=True)
class Grades:
    """Call grades: the threshold below which a run is a quality failure, and how grades are obtained."""

    threshold: float | None = None  # 0..1
    fetch: bool = False  # GET /v1/calls/{id}/grade for runs whose grade no webhook brought
    wait_s: float = 0.0  # after the last run ended, how long to wait for grades
    scale: GradeScale = "auto"  # how the server writes scores: "1" (0..1), "100" (0..100), "auto" (per value)


@dataclass(frozen=True, slots=True)
class Calls:
    """Call logs (and transcripts) of the runs that ended: whether to fetch them, how many at once, when.

    A call's log is fetched ``delay_s`` after its run was seen to end (grades and billing may be written after
    the call); once the last run ended, the calls still to fetch are given ``wait_s``.
    """

    fetch: bool = False
    transcripts: bool = False
    concurrency: int = DEFAULT_CALL_FETCHES
    delay_s: float = 0.0
    wait_s: float = DEFAULT_CALLS_WAIT_S


@dataclass(frozen=True, slots=True)
class Profile:
    """A whole, validated profile."""

    name: str
    source: str
    target: TargetSpec
    stages: tuple[Stage, ...]
    variants: tuple[Variant, ...]
    scenarios: tuple[Scenario, ...]
    cost: Cost = field(default_factory=Cost)
    limits: Limits = field(default_factory=Limits)
    webhooks: Webhooks = field(default_factory=Webhooks)
    grades: Grades = field(default_factory=Grades)
    calls: Calls = field(default_factory=Calls)
    simulator: Mapping[str, Any] = field(default_factory=dict)
    thresholds: tuple[str, ...] = ()  # expressions, checked at load (stressor.thresholds)
    description: str = ""
    grace_s: float = 30.0
    mean_call_duration_s: float = 45.0
    interval_s: float = 1.0

    @property
    def duration_s(self) -> float:
        """Length of all stages, the grace period not included."""
        return sum(stage.duration_s for stage in self.stages)

    def with_overrides(self, **target_changes: Any) -> Profile:
        """A copy whose target has some fields replaced (for CLI flags)."""
        changes = {key: value for key, value in target_changes.items() if value is not None}
        return replace(self, target=replace(self.target, **changes)) if changes else self


# ---------------------------------------------------------------------------------------------------- reading


class _Table:
    """A table of the file being read: hands out keys with their path, and refuses unknown ones."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ProfileError:
        return ProfileError(self.source, self.where(key), message)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, convert: Callable[[Any], T], default: T) -> T:
        """The key's value through ``convert`` (whose ValueError becomes a ProfileError), or the default."""
        self.used.add(key)
        if key not in self.data:
            return default
        try:
            return convert(self.data[key])
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def require(self, key: str, convert: Callable[[Any], T], what: str) -> T:
        if key not in self.data:
            raise self.error(key, f"is required ({what})")
        return self.get(key, convert, None)  # type: ignore[arg-type]

    def table(self, key: str) -> _Table:
        self.used.add(key)
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a table, got {_kind(value)}")
        return _Table(value, self.where(key), self.source)

    def tables(self, key: str) -> list[_Table]:
        self.used.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise self.error(key, f"must be a list of tables ([[{key}]] in TOML), got {_kind(value)}")
        return [_Table(item, f"{self.where(key)}[{i}]", self.source) for i, item in enumerate(value)]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            allowed = ", ".join(sorted(self.used))
            raise self.error(unknown[0], f"is not a known key (allowed here: {allowed})")


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_kind(value)}")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _choice(*allowed: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
        return str(value)

    return convert


def _int_between(low: int, high: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high}, got {value!r}")
        return value

    return convert


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _id(value: object) -> int:
    """An id the API takes as an integer: a positive signed 64-bit one (JSON encoders refuse larger ones)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValueError(f"must be a whole number from 1 to {MAX_ID} (a positive 64-bit id), got {_short(value)}")
    return value


def _non_negative_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_NUMBER:
        raise ValueError(f"must be a number from 0 to {MAX_NUMBER:g}, got {_short(value)}")
    return float(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _positive_duration(value: object) -> float:
    # One message for every way to miss, so it states the rule (a negative or zero one is as wrong as a typo).
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ValueError(f"must be a duration greater than zero like '30s', '5m' or '250ms', got {_short(value)}")
    return seconds


def _stagger(value: object) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = math.inf
    if seconds > MAX_STAGGER_S:
        raise ValueError(f"must be a duration from 0 to 60s (fractions allowed, like '1.5s'), got {_short(value)}")
    return seconds


def default_poll_interval_max(poll_interval_s: float) -> float:
    """How far polls may slow down when a profile does not say: ten intervals, at most 30 s, never below
    the interval itself. A 45 s call polled every second costs ~46 polls; growing with the batch's age
    (``stressor.polling.PollSchedule``) it costs ~26, and its end is seen within 4.5 s."""
    return max(poll_interval_s, min(POLL_GROWTH_BOUND * poll_interval_s, POLL_INTERVAL_MAX_CAP_S))


def _base_url(value: object) -> str:
    text = _string(value)
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _ramp(table: _Table, key: str, convert: Callable[[Any], float], example: str) -> Ramp:
    """A constant (``key = x``) or a ramp (``key = {from = x, to = y}``)."""
    value = table.data[key]
    table.used.add(key)
    if isinstance(value, Mapping):
        ramp = _Table(value, table.where(key), table.source)
        if not (ramp.has("from") and ramp.has("to")):
            missing = "to" if ramp.has("from") else "from"
            raise ramp.error(missing, f"is required: a ramp needs both ends, like {example}")
        start = ramp.get("from", convert, 0.0)
        end = ramp.get("to", convert, 0.0)
        ramp.finish()
        return Ramp(start, end)
    try:
        constant = convert(value)
    except ValueError as exc:
        raise table.error(key, str(exc)) from None
    return Ramp(constant, constant)


def _batch_shape(table: _Table, default: BatchShape) -> BatchShape:
    runs = table.get("runs", _int_between(1, MAX_RUNS_PER_BATCH), default.runs)
    stagger = table.get("stagger", _stagger, default.stagger_s)
    table.finish()
    return BatchShape(runs=runs, stagger_s=stagger)


_LOAD_KEYS = ("rate", "runs_rate", "in_flight", "pause")


def _load(table: _Table, batch: BatchShape) -> Load:
    present = [key for key in _LOAD_KEYS if table.has(key)]
    if len(present) != 1:
        got = f"got {', '.join(present)}" if present else "got none"
        raise ProfileError(
            table.source,
            table.path,
            "needs exactly one load model: rate (batches per time), runs_rate (runs per time), "
            f"in_flight (closed model) or pause = true; {got}",
        )
    key = present[0]
    if key == "pause":
        if not table.get("pause", _boolean, False):
            raise table.error("pause", "must be true (leave it out for a stage that starts runs)")
        return Pause()
    if key == "in_flight":
        return ClosedLoad(_ramp(table, key, _non_negative_count, "{from = 10, to = 40}"))
    rate = _ramp(table, key, parse_rate, '{from = "10/min", to = "60/min"}')
    if key == "runs_rate":
        rate = Ramp(rate.start / batch.runs, rate.end / batch.runs)
    return OpenLoad(rate)


def _non_negative_count(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_IN_FLIGHT:
        raise ValueError(f"must be a whole number of runs from 0 to {MAX_IN_FLIGHT}, got {_short(value)}")
    return float(value)


def _request(table: _Table, default: RunRequest) -> RunRequest:
    return RunRequest(
        target_type=table.get("target_type", _choice(*TARGET_TYPES), default.target_type),
        target_id=table.get("target_id", _id, default.target_id),
        direction=table.get("direction", _choice(*DIRECTIONS), default.direction),
        mode=table.get("mode", _choice(*CALL_MODES), default.mode),
        target_number=table.get("target_number", _string, default.target_number),
    )


def _scenarios(table: _Table, base_dir: Path) -> tuple[Scenario, ...]:
    if table.has("prompts") and table.has("corpus"):
        raise table.error("corpus", "cannot be given together with prompts (choose one)")
    if table.has("corpus"):
        name = table.get("corpus", _string, "")
        table.finish()
        return load_corpus(base_dir / name, table.source, table.where("corpus"))
    prompts = table.get("prompts", _prompt_list, ["Call the agent and ask about its opening hours."])
    table.finish()
    return tuple(Scenario(name=f"prompt-{i + 1}", prompt=p) for i, p in enumerate(prompts))


def _prompt_list(value: object) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(p, str) and p for p in value):
        raise ValueError("must be a non-empty list of non-empty strings")
    return value


def load_corpus(path: Path, source: str, field_path: str) -> tuple[Scenario, ...]:
    """Read a scenario corpus: a JSON array or JSONL lines of ``{name, scenario_prompt, expected_outcome, goal}``.

    Errors name the profile and its ``field_path`` (``scenarios.corpus``), then the corpus file with the line
    (JSONL) or item (JSON array) and the item's field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(source, field_path, f"cannot read corpus file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(
            source, field_path, f"corpus file {path} is not UTF-8 text (byte {exc.start} cannot be decoded)"
        ) from None
    except ValueError as exc:  # a NUL in the name
        raise ProfileError(source, field_path, f"cannot read corpus file {path}: {exc}") from None

    def refuse(where: str, message: str) -> ProfileError:
        return ProfileError(source, field_path, f"{path}: {where}: {message}")

    numbered: list[tuple[str, object]] = []
    if text.lstrip().startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise refuse(f"line {exc.lineno} column {exc.colno}", f"is not valid JSON ({exc.msg})") from None
        numbered = [(f"item {i + 1}", item) for i, item in enumerate(items)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((f"line {number}", orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                raise refuse(
                    f"line {number}",
                    f"is not valid JSON ({exc.msg} at column {exc.colno}); each line holds one "
                    "object {name, scenario_prompt, expected_outcome, goal}",
                ) from None
    scenarios = []
    names: set[str] = set()
    for label, item in numbered:
        if not isinstance(item, dict):
            shape = "{name, scenario_prompt, expected_outcome, goal}"
            raise refuse(label, f"must be an object {shape}, got {_kind(item)}")
        entry = _Table(item, label, f"{source}: {field_path}: {path}")
        scenario = Scenario(
            name=entry.require("name", _non_empty, "a unique scenario name"),
            prompt=entry.require("scenario_prompt", _non_empty, "the prompt sent with the run"),
            expected_outcome=entry.get("expected_outcome", _expected_outcome, None),
            goal=entry.get("goal", _string, None),
        )
        entry.finish()
        if scenario.name in names:
            raise refuse(f"{label}.name", f"duplicates the scenario name {scenario.name!r}")
        names.add(scenario.name)
        scenarios.append(scenario)
    if not scenarios:
        raise ProfileError(source, field_path, f"corpus file {path} holds no scenarios (expected at least one)")
    return tuple(scenarios)


def _expected_outcome(value: object) -> str:
    if value not in EXPECTED_OUTCOMES:
        allowed = ", ".join(repr(a) for a in EXPECTED_OUTCOMES)
        shown = _kind(value) if not isinstance(value, str) else repr(value if len(value) <= 40 else value[:37] + "...")
        raise ValueError(f"must be one of {allowed}, got {shown} (free text describing the goal goes in 'goal')")
    return str(value)


def _non_empty(value: object) -> str:
    text = _string(value)
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _positive_rate(value: object) -> float:
    rate = parse_rate(value)
    if rate <= 0:
        raise ValueError(f"must be a rate greater than zero like '20/s', got {value!r}")
    return rate


def _ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"must be a number from 0 to 1 (exclusive), got {value!r}")
    return float(value)


def _limits(table: _Table) -> Limits:
    default = Limits()
    limits = Limits(
        mode=table.get("mode", _choice("obey", "stress"), default.mode),  # type: ignore[arg-type]
        create_rate=table.get("create_rate", _positive_rate, default.create_rate),
        poll_rate=table.get("poll_rate", _positive_rate, default.poll_rate),
        max_runs_in_flight=table.get("max_runs_in_flight", _positive_int, None),
        max_batches_in_flight=table.get("max_batches_in_flight", _positive_int, None),
        max_start_delay_s=table.get("max_start_delay", parse_duration, default.max_start_delay_s),
        adaptive=table.get("adaptive", _boolean, default.adaptive),
        max_retries=table.get("max_retries", _int_between(0, 100), default.max_retries),
        retry_ratio=table.get("retry_ratio", _ratio, default.retry_ratio),
        backoff_base_s=table.get("backoff_base", _positive_duration, default.backoff_base_s),
        backoff_cap_s=table.get("backoff_cap", _positive_duration, default.backoff_cap_s),
        max_pause_s=table.get("max_pause", _positive_duration, default.max_pause_s),
        breaker_window_s=table.get("breaker_window", _positive_duration, default.breaker_window_s),
        breaker_failure_ratio=table.get("breaker_failure_ratio", _ratio, default.breaker_failure_ratio),
        breaker_min_requests=table.get("breaker_min_requests", _positive_int, default.breaker_min_requests),
    )
    table.finish()
    return limits


def _listen(value: object) -> tuple[str, int]:
    host, _, port = _string(value).rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"must be host:port like '127.0.0.1:8090' (port 0: any free one), got {value!r}")
    return host.strip("[]"), int(port)


def _fallback(value: object) -> float | str:
    if value in ("auto", "off"):
        return str(value)
    return _positive_duration(value)


def _score(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ValueError(f"must be a score from 0 to 1 (or 0 to 100), got {value!r}")
    return value / 100 if value > 1 else float(value)


def _webhooks(table: _Table) -> Webhooks:
    default = Webhooks()
    host, port = table.get("listen", _listen, (default.listen_host, default.listen_port))
    webhooks = Webhooks(
        enabled=table.get("enabled", _boolean, default.enabled),
        listen_host=host,
        listen_port=port,
        public_url=table.get("public_url", _base_url, None),
        fallback=table.get("fallback", _fallback, default.fallback),  # type: ignore[arg-type]
    )
    table.finish()
    return webhooks


def _grade_scale(value: object) -> GradeScale:
    # 1 and 100 may be written as numbers too; a bool is never a scale
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if text not in GRADE_SCALES:
        raise ValueError(f"must be one of {', '.join(repr(a) for a in GRADE_SCALES)}, got {value!r}")
    return text  # type: ignore[return-value]


def _grades(table: _Table) -> Grades:
    scale = table.get("scale", _grade_scale, "auto")

    def threshold(value: object) -> float:
        score = _score(value)
        if scale == "1" and score != value:
            raise ValueError(f"must be a score from 0 to 1 (grades.scale is '1'), got {value!r}")
        # a threshold is written on the scale the scores are: with "100", 1 means 1 %
        return value / 100 if scale == "100" else score  # type: ignore[operator]

    grades = Grades(
        threshold=table.get("threshold", threshold, None),
        fetch=table.get("fetch", _boolean, False),
        wait_s=table.get("wait", parse_duration, 0.0),
        scale=scale,
    )
    table.finish()
    return grades


def _calls(table: _Table, grades: Grades) -> Calls:
    transcripts = table.get("transcripts", _boolean, False)
    fetch = table.get("fetch", _boolean, transcripts)
    if transcripts and not fetch:
        raise table.error("transcripts", "needs fetch = true (transcripts are fetched with the call logs)")
    delay = table.get("delay", parse_duration, grades.wait_s)
    wait = table.get("wait", parse_duration, delay + DEFAULT_CALLS_WAIT_S)
    if wait < delay:
        source = "calls.delay" if table.has("delay") else "[grades] wait"
        raise table.error(
            "wait",
            f"must be at least the delay before a call log is fetched ({source}: {delay:g}s), or the last runs' "
            f"calls would never be fetched; got {wait:g}s",
        )
    calls = Calls(
        fetch=fetch,
        transcripts=transcripts,
        concurrency=table.get("concurrency", _int_between(1, MAX_CALL_FETCHES), DEFAULT_CALL_FETCHES),
        delay_s=delay,
        wait_s=wait,
    )
    table.finish()
    return calls


def _thresholds(root: _Table) -> tuple[str, ...]:
    texts = root.get("thresholds", _string_list, [])
    for i, text in enumerate(texts):
        try:
            parse_threshold(text)
        except ThresholdError as exc:
            raise ProfileError(root.source, f"thresholds[{i}]", str(exc)) from None
    return tuple(texts)


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of strings")
    return value


def _simulator(table: _Table) -> Mapping[str, Any]:
    """Settings of the embedded simulator (faults, slots...), as written: the simulator's own config checks them
    (``stressor.sim.config.check_simulator_table``, when a command loads the profile)."""
    return dict(table.data)


def parse_profile(data: Mapping[str, Any], source: str, base_dir: Path | None = None) -> Profile:
    """Validate a profile already parsed from TOML or JSON; ``source`` names it in error messages."""
    base_dir = base_dir if base_dir is not None else Path()
    root = _Table(data, "", source)

    target_table = root.table("target")
    kind = target_table.get("kind", _choice(*TARGET_KINDS), "test-calls")
    target = TargetSpec(
        kind=kind,
        base_url=target_table.get("base_url", _base_url, None),
        submit=target_table.get("submit", _choice(*SUBMIT_MODES), "batch"),  # type: ignore[arg-type]
        poll_interval_s=target_table.get("poll_interval", _positive_duration, 1.0),
        poll_interval_max_s=target_table.get("poll_interval_max", _positive_duration, None),
        request_timeout_s=target_table.get("request_timeout", _positive_duration, 10.0),
    )
    if target.poll_interval_max_s is None:
        target = replace(target, poll_interval_max_default=True)
    if target.poll_interval_max_s is not None and target.poll_interval_max_s < target.poll_interval_s:
        raise target_table.error("poll_interval_max", "must be at least poll_interval")
    request_table = target_table.table("request")
    request = _request(request_table, RunRequest())
    request_table.finish()
    target_table.finish()

    default_batch = _batch_shape(root.table("batch"), BatchShape())
    if target.submit == "single" and default_batch.runs != 1:
        raise root.error("batch.runs", 'must be 1 when target.submit = "single" (one POST per run)')

    stages = []
    for i, stage_table in enumerate(root.tables("stages")):
        batch = _batch_shape(stage_table.table("batch"), default_batch)
        stage = Stage(
            name=stage_table.get("name", _string, f"stage-{i + 1}"),
            duration_s=stage_table.require("duration", _positive_duration, 'a duration like "30s" or "5m"'),
            load=_load(stage_table, batch),
            batch=batch,
        )
        stage_table.finish()
        if isinstance(stage.load, OpenLoad) and stage.load.batches_per_s.mean * stage.duration_s > MAX_STAGE_BATCHES:
            raise ProfileError(
                source,
                stage_table.path,
                f"would start {stage.load.batches_per_s.mean * stage.duration_s:.3g} batches, "
                f"more than the {MAX_STAGE_BATCHES:g} a stage may start (lower its rate or its duration)",
            )
        stages.append(stage)
    if not stages:
        raise root.error("stages", "needs at least one stage ([[stages]] with a duration and a load model)")

    variants = []
    for variant_table in root.tables("variants"):
        variant = Variant(
            name=variant_table.require("name", _non_empty, "a name for the variant"),
            request=_request(variant_table, request),
        )
        variant_table.finish()
        if any(v.name == variant.name for v in variants):
            raise variant_table.error("name", f"duplicates the variant name {variant.name!r}")
        variants.append(variant)
    if not variants:
        variants.append(Variant(name="default", request=request))

    cost_table = root.table("cost")
    cost = Cost(
        consent_to_charge=cost_table.get("consent_to_charge", _boolean, False),
        budget_cents=cost_table.get("budget_cents", _non_negative_number, None),
        cost_per_run_cents=cost_table.get("cost_per_run_cents", _non_negative_number, 8.0),
        charge_multiplier=cost_table.get("charge_multiplier", _non_negative_number, 2.0),
    )
    cost_table.finish()

    grades = _grades(root.table("grades"))
    profile = Profile(
        limits=_limits(root.table("limits")),
        webhooks=_webhooks(root.table("webhooks")),
        grades=grades,
        calls=_calls(root.table("calls"), grades),
        thresholds=_thresholds(root),
        simulator=_simulator(root.table("simulator")),
        name=root.get("name", _non_empty, Path(source).stem),
        description=root.get("description", _string, ""),
        source=source,
        target=target,
        stages=tuple(stages),
        variants=tuple(variants),
        scenarios=_scenarios(root.table("scenarios"), base_dir),
        cost=cost,
        grace_s=root.get("grace", parse_duration, 30.0),
        mean_call_duration_s=root.get("mean_call_duration", _positive_duration, 45.0),
        interval_s=root.get("interval", _positive_duration, 1.0),
    )
    root.finish()
    return profile


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file: its extension says its format, ``.toml`` or ``.json``."""
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        raise ProfileError(source, "", "YAML is not supported: write the profile in TOML (.toml) or JSON (.json)")
    if suffix not in (".toml", ".json"):
        found = f"not {path.suffix}" if path.suffix else "without an extension"
        raise ProfileError(source, "", f"a profile is a .toml or a .json file, {found}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(source, "", f"cannot read the profile ({exc.strerror})") from None
    try:
        data = orjson.loads(raw) if suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ProfileError(source, "", "is nested too deeply to be a profile") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(source, "", f"is not valid {suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(source, "", "must hold a table of settings at its top level")
    return parse_profile(data, source, path.parent)


# ---------------------------------------------------------------------------------------------------- scaling


@dataclass(frozen=True, slots=True)
class RateScale:
    """``--rate``: a factor on the whole load (``2x``), or the highest open rate wanted, in batches per second
    (``30/s``: the open stages scaled to it, their shape kept)."""

    text: str  # as written
    factor: float | None = None
    peak_batches_per_s: float | None = None


def parse_rate_scale(text: str) -> RateScale:
    """``2x`` / ``0.5x`` (a factor) or ``30/s`` / ``300/min`` (batches per time); a bare number is refused, as it
    could be either. Raises ValueError with what is wrong."""
    written = text.strip()
    if written.lower().endswith("x"):
        try:
            factor = float(written[:-1])
        except ValueError:
            raise ValueError(f"expected a factor like 2x or 0.5x, got {text!r}") from None
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"a factor must be greater than 0, got {text!r}")
        return RateScale(written, factor=factor)
    if "/" not in written:
        raise ValueError(f"write {written}x for a factor or {written}/s for batches per second, not {written!r} alone")
    per_second = parse_rate(written)
    if per_second <= 0:
        raise ValueError(f"a rate must be greater than 0, got {text!r}")
    return RateScale(written, peak_batches_per_s=per_second)


def _scaled_in_flight(ramp: Ramp, factor: float) -> Ramp:
    # whole runs, as a profile writes them; a stage that kept runs in flight keeps at least one
    def scaled(value: float) -> float:
        return 0.0 if value == 0 else float(max(1, math.floor(value * factor + 0.5)))

    return Ramp(scaled(ramp.start), scaled(ramp.end))


def scale_rate(profile: Profile, rate: RateScale) -> Profile:
    """The profile with its load scaled as ``--rate`` says (docs/profiles.md#scaling-a-profile-from-the-command-line).
    Raises ValueError when there is nothing it applies to, or the result is beyond what a profile may hold."""
    opens = [s.load.batches_per_s.peak for s in profile.stages if isinstance(s.load, OpenLoad)]
    if rate.factor is not None:
        factor, closed_too = rate.factor, True
        if not opens and not any(isinstance(s.load, ClosedLoad) for s in profile.stages):
            raise ValueError("the profile has no stage that starts runs (only pauses)")
    else:
        if not opens:
            raise ValueError("the profile has no open stage (rate or runs_rate) whose rate it could set")
        if max(opens) == 0:
            raise ValueError("every open stage's rate is 0: there is no rate to scale")
        assert rate.peak_batches_per_s is not None
        factor, closed_too = rate.peak_batches_per_s / max(opens), False
    stages = []
    for stage in profile.stages:
        load = stage.load
        if isinstance(load, OpenLoad):
            ramp = load.batches_per_s
            load = OpenLoad(Ramp(ramp.start * factor, ramp.end * factor))
        elif isinstance(load, ClosedLoad) and closed_too:
            load = ClosedLoad(_scaled_in_flight(load.runs_in_flight, factor))
        stages.append(replace(stage, load=load))
    return _checked(replace(profile, stages=tuple(stages)))


def scale_duration(profile: Profile, duration_s: float) -> Profile:
    """The profile with every stage stretched or shrunk in proportion so that the stages last ``duration_s`` in
    all (rates and targets kept; the grace period too). Raises ValueError for a result beyond what a profile may
    hold."""
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"the stages must last more than 0 s, not {duration_s:g}")
    factor = duration_s / profile.duration_s
    stages = tuple(replace(stage, duration_s=stage.duration_s * factor) for stage in profile.stages)
    return _checked(replace(profile, stages=stages))


def _checked(profile: Profile) -> Profile:
    """A scaled profile within the bounds a profile file may state."""
    for i, stage in enumerate(profile.stages):
        load = stage.load
        if isinstance(load, OpenLoad) and load.batches_per_s.mean * stage.duration_s > MAX_STAGE_BATCHES:
            raise ValueError(
                f"stages[{i}] would start {load.batches_per_s.mean * stage.duration_s:.3g} batches, more than the "
                f"{MAX_STAGE_BATCHES:g} a stage may start"
            )
        if isinstance(load, ClosedLoad) and load.runs_in_flight.peak > MAX_IN_FLIGHT:
            raise ValueError(
                f"stages[{i}] would keep {load.runs_in_flight.peak:.3g} runs in flight, more than {MAX_IN_FLIGHT}"
            )
    return profile
