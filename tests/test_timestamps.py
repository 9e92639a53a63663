"""API timestamps: the instant to the microsecond (an epoch float's own resolution is ~0.24 µs), truncated to
the millisecond."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stressor.timestamps import format_iso, parse_iso

FLOAT_NOISE_S = 1e-6  # what taking the instant to the microsecond may add


def test_a_stamp_is_truncated_to_the_millisecond_after_float_noise_is_rounded_off() -> None:
    assert format_iso(1_800_000_000.3) == "2027-01-15T08:00:00.300Z"  # stored as ...0.2999999523
    assert format_iso(1_800_000_000.2994) == "2027-01-15T08:00:00.299Z"
    assert format_iso(0.0) == "1970-01-01T00:00:00.000Z"


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_a_stamp_is_never_later_than_its_instant_beyond_float_noise(epoch_s: float) -> None:
    written = parse_iso(format_iso(epoch_s))
    assert -FLOAT_NOISE_S <= epoch_s - written < 0.001 + FLOAT_NOISE_S
