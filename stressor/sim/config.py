"""Settings of the test-calls simulator, and the call-duration distribution it draws from.

Every setting has a default that makes a useful local simulator: 20 org slots, calls of about 45 API seconds
that last 45 ms of real time (``time_scale`` 0.001), no failures. Bad values raise ``SimConfigError`` (a
ValueError) whose message is one sentence naming the setting, so the CLI can show it as is.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any, Literal

DistributionKind = Literal["fixed", "uniform", "lognormal", "exponential"]

_ARITY: dict[str, int] = {"fixed": 1, "uniform": 2, "lognormal": 2, "exponential": 1}
_SYNTAX = "expected fixed(x), uniform(a,b), lognormal(median,sigma) or exponential(mean), in seconds"
_CALL_RE = re.compile(r"^\s*([A-Za-z]+)\s*\((.*)\)\s*$")

#: Product tiers of the platform; the simulator stamps one of them on every call log.
PRODUCTS: tuple[str, ...] = (
    "spark",
    "spark-with-ack",
    "bolt",
    "bolt-with-ack",
    "storm-base",
    "storm-base-with-ack",
    "storm-extra",
    "storm-extra-with-ack",
)


class SimConfigError(ValueError):
    """A simulator setting has a bad value; ``setting`` names it (e.g. ``"failure_rate"``)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class Distribution:
    """A distribution of durations in API seconds: ``fixed(x)``, ``uniform(a,b)``, ``lognormal(median,sigma)``
    or ``exponential(mean)``. Build one with the class methods or ``Distribution.parse(text)``."""

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
        """The mean duration in API seconds."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "lognormal":
            return self.a * math.exp(self.b * self.b / 2)
        return self.a

    def sample(self, rng: random.Random) -> float:
        """Draw one duration in API seconds (never negative) from ``rng``."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            return math.exp(math.log(self.a) + self.b * rng.gauss(0.0, 1.0))
        return rng.expovariate(1.0 / self.a)

    def __str__(self) -> str:
        if _ARITY[self.kind] == 1:
            return f"{self.kind}({self.a:g})"
        return f"{self.kind}({self.a:g},{self.b:g})"


DEFAULT_CALL_DURATION = Distribution.lognormal(45.0, 0.3)


def _is_int(value: object) -> bool:
    # bool is an int subclass; a setting that wants a count must not take True for 1
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Every setting of the simulator.

    Durations of calls are in *API seconds* and are scaled to real time by ``time_scale`` (real seconds per
    API second). Only call durations are scaled: a batch's ``stagger_seconds`` is honoured as real seconds
    because the client computes due times from it.
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
    """Seed of the random draws (durations, failures, grades, ids); None picks one at random."""
    product: str = "spark"
    """Product tier written on call logs."""

    @classmethod
    def from_text(cls, *, call_duration: str | Distribution = DEFAULT_CALL_DURATION, **settings: Any) -> SimConfig:
        """Build a config with the call duration given as text (``"lognormal(45,0.3)"``); the other settings
        are keyword arguments as in the constructor. Raises SimConfigError naming the bad setting."""
        if isinstance(call_duration, str):
            try:
                call_duration = Distribution.parse(call_duration)
            except ValueError as bad:
                raise SimConfigError("call_duration", f"call_duration: {bad}.") from None
        unknown = sorted(set(settings) - set(cls.__dataclass_fields__))
        if unknown:
            raise SimConfigError(unknown[0], f"{unknown[0]} is not a simulator setting.")
        return cls(call_duration=call_duration, **settings)

    def __post_init__(self) -> None:
        if not _is_int(self.slots) or self.slots < 1:
            raise SimConfigError("slots", f"slots must be a whole number of at least 1, not {self.slots!r}.")
        if not isinstance(self.call_duration, Distribution):
            raise SimConfigError("call_duration", f"call_duration must be a Distribution, not {self.call_duration!r}.")
        if not _is_number(self.time_scale) or self.time_scale <= 0:
            raise SimConfigError(
                "time_scale",
                f"time_scale must be a number above 0 (real seconds per API second), not {self.time_scale!r}.",
            )
        if not _is_number(self.failure_rate) or not 0 <= self.failure_rate <= 1:
            raise SimConfigError(
                "failure_rate", f"failure_rate must be a number between 0 and 1, not {self.failure_rate!r}."
            )
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
