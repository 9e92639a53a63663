"""Durations and rates as users write them."""

from __future__ import annotations

import pytest

from stressor.units import format_duration, parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("250ms", 0.25),
        ("1h30m", 5400),
        ("1.5s", 1.5),
        (2, 2.0),
        ("0s", 0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 parsecs", "s", "1h-5m", True, None, "-3s", float("inf")])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "per_s"), [("30/min", 0.5), ("2/s", 2), ("120/h", 1 / 30), (3, 3.0), ("1.5/sec", 1.5)]
)
def test_rates(text: object, per_s: float) -> None:
    assert parse_rate(text) == pytest.approx(per_s)


@pytest.mark.parametrize("text", ["30", "30/week", "-1/s", False, "x/s"])
def test_bad_rates(text: object) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_format_duration_picks_readable_units() -> None:
    assert format_duration(0.000_85) == "850µs"
    assert format_duration(0.0123) == "12.3ms"
    assert format_duration(4.214) == "4.21s"
    assert format_duration(185) == "3m05.0s"
    assert format_duration(0.9996) == "1s"  # not "1e+03ms"
    assert format_duration(0.000_9996) == "1ms"


@pytest.mark.parametrize("text", ["-5s", "-1m30s", -5, -0.5])
def test_negative_durations_say_the_rule_they_break(text: object) -> None:
    with pytest.raises(ValueError, match=r"a duration must be a finite number of seconds >= 0, got "):
        parse_duration(text)
