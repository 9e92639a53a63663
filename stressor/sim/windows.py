"""Time windows of the simulator's faults, written as short ``key=value`` lists: ``ErrorBurst``
(``"every=5s,length=1s,status=503"``) and ``Stall`` (``"at=2s,for=2s"``).

Times are real seconds since the simulator started (never scaled by ``time_scale``). Both parse back what
``str()`` writes, so a setting survives the trip through ``simulator_command`` unchanged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from stressor.units import parse_duration

ErrorStatus = Literal["500", "503", "mixed"]
ERROR_STATUSES: tuple[str, ...] = ("500", "503", "mixed")

_BURST_SYNTAX = "expected every=<duration>,length=<duration>[,status=500|503|mixed][,start=<duration>]"
_STALL_SYNTAX = "expected at=<duration>,for=<duration>"
_BARE_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def seconds_text(seconds: float) -> str:
    """``5s``, ``0.25s``: a duration ``parse_duration`` reads back exactly (no exponent notation)."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    text = repr(float(seconds))
    if "e" in text:
        # repr picks exponent notation below 1e-4; 17 decimals hold every float of that size exactly enough
        text = f"{seconds:.17f}".rstrip("0")
    return f"{text}s"


def _pairs(text: object, syntax: str, allowed: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} is not a window: {syntax}")
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"{text!r} has {item.strip()!r}, which is not key=value: {syntax}")
        if key not in allowed:
            raise ValueError(f"{text!r} has an unknown key {key!r}: {syntax}")
        if key in pairs:
            raise ValueError(f"{text!r} gives {key!r} twice: {syntax}")
        pairs[key] = value
    return pairs


def _duration(text: str, key: str, value: str, syntax: str) -> float:
    try:
        # a bare number is seconds (parse_duration takes numbers, but wants a unit in text)
        return parse_duration(float(value) if _BARE_NUMBER.fullmatch(value) else value)
    except ValueError:
        raise ValueError(f"{text!r} has {key}={value}, which is not a duration like 5s or 250ms: {syntax}") from None


@dataclass(frozen=True, slots=True)
class ErrorBurst:
    """Windows ``[start + k * every, start + k * every + length)`` (k = 0, 1, ...) of failing API requests.

    ``status`` is the answer in the window: ``"500"``, ``"503"`` or ``"mixed"`` (either, at random per request).
    """

    every: float
    length: float
    status: ErrorStatus = "503"
    start: float | None = None

    def __post_init__(self) -> None:
        for name in ("every", "length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"error burst {name} must be a finite number of seconds, not {value!r}")
        if self.every <= 0:
            raise ValueError("an error burst needs every above 0")
        if not 0 < self.length <= self.every:
            raise ValueError("an error burst needs 0 < length <= every")
        if self.status not in ERROR_STATUSES:
            raise ValueError(f"error burst status must be 500, 503 or mixed, not {self.status!r}")
        if self.start is not None and (
            isinstance(self.start, bool)
            or not isinstance(self.start, int | float)
            or not math.isfinite(self.start)
            or self.start < 0
        ):
            raise ValueError(f"error burst start must be a number of seconds of at least 0, not {self.start!r}")

    @property
    def first(self) -> float:
        """When the first window opens (seconds since start): ``start``, or one period in by default, so a
        simulator starts healthy."""
        return self.every if self.start is None else self.start

    @classmethod
    def parse(cls, text: str) -> ErrorBurst:
        """``"every=5s,length=1s,status=503"``; raises ValueError with a sentence quoting the text."""
        pairs = _pairs(text, _BURST_SYNTAX, ("every", "length", "status", "start"))
        missing = [key for key in ("every", "length") if key not in pairs]
        if missing:
            raise ValueError(f"{text!r} lacks {missing[0]}=: {_BURST_SYNTAX}")
        status = pairs.get("status", "503").lower()
        if status not in ERROR_STATUSES:
            raise ValueError(f"{text!r} has status={status}, which is not 500, 503 or mixed: {_BURST_SYNTAX}")
        start = pairs.get("start")
        try:
            return cls(
                every=_duration(text, "every", pairs["every"], _BURST_SYNTAX),
                length=_duration(text, "length", pairs["length"], _BURST_SYNTAX),
                status=status,  # type: ignore[arg-type]  # checked against ERROR_STATUSES above
                start=None if start is None else _duration(text, "start", start, _BURST_SYNTAX),
            )
        except ValueError as bad:
            message = str(bad)
            if message.startswith(repr(text)):
                raise
            raise ValueError(f"{text!r} is not a valid error burst: {message}") from None

    def remaining(self, elapsed: float) -> float | None:
        """Seconds left in the window holding ``elapsed`` (seconds since start), or None outside every window."""
        if elapsed < self.first:
            return None
        into = (elapsed - self.first) % self.every
        return self.length - into if into < self.length else None

    def __str__(self) -> str:
        text = f"every={seconds_text(self.every)},length={seconds_text(self.length)},status={self.status}"
        return text if self.start is None else f"{text},start={seconds_text(self.start)}"


@dataclass(frozen=True, slots=True)
class Stall:
    """One window ``[at, at + duration)`` (seconds since start) during which requests are held until it ends."""

    at: float
    duration: float

    def __post_init__(self) -> None:
        for name in ("at", "duration"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"stall {name} must be a finite number of seconds, not {value!r}")
        if self.at < 0 or self.duration <= 0:
            raise ValueError("a stall needs at >= 0 and for above 0")

    @classmethod
    def parse(cls, text: str) -> Stall:
        """``"at=2s,for=2s"``; raises ValueError with a sentence quoting the text."""
        pairs = _pairs(text, _STALL_SYNTAX, ("at", "for"))
        missing = [key for key in ("at", "for") if key not in pairs]
        if missing:
            raise ValueError(f"{text!r} lacks {missing[0]}=: {_STALL_SYNTAX}")
        at = _duration(text, "at", pairs["at"], _STALL_SYNTAX)
        duration = _duration(text, "for", pairs["for"], _STALL_SYNTAX)
        if duration <= 0:
            raise ValueError(f"{text!r} has for={pairs['for']}, but a stall must last more than 0 s")
        return cls(at=at, duration=duration)

    @property
    def end(self) -> float:
        """When the stall ends (seconds since start)."""
        return self.at + self.duration

    def hold(self, elapsed: float) -> float:
        """Seconds a request arriving at ``elapsed`` is held: until the end of the window, 0 outside it."""
        return self.end - elapsed if self.at <= elapsed < self.end else 0.0

    def __str__(self) -> str:
        return f"at={seconds_text(self.at)},for={seconds_text(self.duration)}"
