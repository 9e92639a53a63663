"""Parsing and printing of the units users write: durations ("250ms", "1m30s") and rates ("30/min")."""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|s|m|h)")
_UNIT_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*/\s*(ms|s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_SECONDS = {
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


def _as_float(value: float) -> float:
    # An integer too large for a float (TOML reads 400 digits as one) is infinite here, refused below.
    try:
        return float(value)
    except OverflowError:
        return math.inf


def parse_duration(value: object) -> float:
    """Seconds from ``"30s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or a plain number of seconds.

    Raises ValueError saying what is allowed; negative and non-finite values are refused here,
    whether zero is allowed is the caller's business.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s', '5m' or '250ms', got {value!r}")
    if isinstance(value, int | float):
        seconds = _as_float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        negative = text.startswith("-")  # "-5s" is a duration, just not an allowed one: say which rule it breaks
        text = text.removeprefix("-")
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"expected a duration like '30s', '5m', '1h30m' or '250ms', got {value!r}")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
        if negative and seconds > 0:
            seconds = -seconds
    else:
        raise ValueError(f"expected a duration like '30s', '5m' or '250ms', got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def parse_rate(value: object) -> float:
    """Events per second from ``"30/min"``, ``"2/s"``, ``"120/h"`` or a plain number (per second)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a rate like '30/min' or '2/s', got {value!r}")
    if isinstance(value, int | float):
        per_second = _as_float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if match is None:
            raise ValueError(f"expected a rate like '30/min', '2/s' or '120/h', got {value!r}")
        per_second = float(match.group(1)) / _RATE_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a rate like '30/min' or '2/s', got {value!r}")
    if not math.isfinite(per_second) or per_second < 0:
        raise ValueError(f"a rate must be finite and >= 0, got {value!r}")
    return per_second


def format_duration(seconds: float) -> str:
    """Human units for a latency: ``850µs``, ``12.3ms``, ``4.21s``, ``3m05s``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 0.9995e-3:  # below it, 3 figures of ms or µs round up to 1000 (printed "1e+03ms")
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 0.9995:
        return f"{seconds * 1e3:.3g}ms"
    if seconds < 60.0:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60.0)
    if minutes < 60:
        return f"{int(minutes)}m{rest:04.1f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m"


def format_rate(per_second: float) -> str:
    """A rate in the unit that reads best: ``2.5/s`` or ``30/min``."""
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.3g}/s"
    return f"{per_second * 60:.3g}/min"
