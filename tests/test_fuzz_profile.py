"""Fuzzing profiles: whatever a profile holds, reading it ends in a Profile or a ProfileError, never another
exception (the CLI turns a ProfileError into one sentence and exit code 2; anything else is a traceback).

The fuzzing found three crashes, since fixed in ``stressor/profile.py`` and ``stressor/units.py``: integers
past the range of a float (TOML allows them), a NUL in a corpus path, and TOML nested thousands deep.
``ONCE_CRASHED`` keeps their minimal inputs; the strategies reach them too.
"""

from __future__ import annotations

import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stressor.estimate import estimate
from stressor.profile import Profile, ProfileError, load_profile, parse_profile

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# every key the profile reader knows, so that random tables reach deep into it rather than stopping at the
# first unknown key
# fmt: off
KEYS = [
    "adaptive", "backoff_base", "backoff_cap", "base_url", "batch", "breaker_failure_ratio", "breaker_min_requests",
    "breaker_window", "budget_cents", "calls", "charge_multiplier", "concurrency", "delay", "consent_to_charge",
    "corpus", "cost", "transcripts",
    "cost_per_run_cents", "create_rate", "description", "direction", "duration", "enabled", "expected_outcome",
    "fallback", "fetch", "from", "grace", "grades", "interval", "kind", "limits", "listen", "max_batches_in_flight",
    "max_pause", "max_retries", "max_runs_in_flight", "max_start_delay", "mean_call_duration", "mode", "name",
    "pause", "poll_interval", "poll_interval_max", "poll_rate", "prompts", "public_url", "request",
    "request_timeout", "retry_ratio", "runs", "runs_rate", "in_flight", "rate", "scenario_prompt", "scenarios",
    "simulator", "stages", "stagger", "submit", "target", "target_id", "target_number", "target_type", "threshold",
    "thresholds", "to", "variants", "wait", "webhooks",
]
# values shaped like the ones profiles hold (durations, rates, URLs, choices) and some that only look like them
WORDS = st.sampled_from([
    "10s", "0s", "-1s", "1e309s", "nan", "inf", "1h30m", "250ms", "5m", "10/s", "0/s", "-3/min", "1e400/s",
    "300/min", "batch", "single", "test-calls", "agent", "obey", "stress", "auto", "off", "http://127.0.0.1:1",
    "https://x", "ftp://x", "127.0.0.1:8090", "[::1]:0", "host:99999", ":", "", " ", "\t", "a\u2028b",
    "queue_to_completion.p95 < 90s", "failure_rate < 0.1 abort", "grade.mean >= 0.8", "p99 <", "<", "../x",
    "/", ".", "/dev/null", "+14155550123", "outbound", "bot", "sip",
])
# fmt: on
# 64-bit integers as TOML's spec and JSON parsers have them, and far larger ones, which tomllib reads all the same
NUMBERS = (
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 20, 21, 60, 61, 100, 101, 2**63, 10**400, 0.5, 1.0, 1e-300, 1e308])
)
TEXT = st.text(max_size=20) | st.sampled_from(["\x00", "a\x00b"])
SCALARS = st.none() | st.booleans() | NUMBERS | WORDS | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    max_leaves=25,
)


@st.composite
def profile_like(draw: st.DrawFn) -> dict[str, Any]:
    """A table shaped like a profile: mostly known keys, tables where tables go, random values inside."""
    stage = st.dictionaries(
        st.sampled_from(["name", "duration", "rate", "runs_rate", "in_flight", "pause", "batch", "extra"]),
        VALUES | st.fixed_dictionaries({"from": VALUES, "to": VALUES}),
        max_size=4,
    )
    section = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)
    data: dict[str, Any] = draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
    for name in ("target", "batch", "limits", "webhooks", "grades", "cost", "scenarios", "simulator"):
        if draw(st.booleans()):
            data[name] = draw(section)
    if draw(st.booleans()):
        data["stages"] = draw(st.lists(stage, max_size=3))
    if draw(st.booleans()):
        data["variants"] = draw(st.lists(section, max_size=2))
    return data


def parsed_or_refused(data: Any) -> None:
    try:
        profile = parse_profile(data, "fuzz.toml", Path(tempfile.gettempdir()))
    except ProfileError as error:
        assert str(error)  # a sentence the CLI can show
        return
    assert isinstance(profile, Profile)
    # `stressor plan` and the cost guard estimate every profile that loads: that must not fail either.
    stages, total = estimate(profile)
    assert len(stages) == len(profile.stages)
    assert total.runs >= 0 and total.peak_in_flight >= 0


def loaded_or_refused(raw: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"fuzz{suffix}"
        path.write_bytes(raw)
        try:
            profile = load_profile(path)
        except ProfileError as error:
            assert str(error)
            return
        assert isinstance(profile, Profile)


@FUZZ
@given(data=profile_like())
@example(data={"stages": [{"duration": "1s", "in_flight": 2**64 - 1, "batch": {"runs": 2**63}}]})
@example(data={"stages": [{"duration": "1e308s", "rate": "1e308/s"}], "cost": {"budget_cents": 1e308}})
@example(data={"stages": [{"duration": "1s", "rate": "1/s"}], "scenarios": {"corpus": "/"}})
@example(data={"stages": [{"duration": 1e300, "in_flight": 10}, {"duration": 1e300, "rate": 0}]})
@example(data={"stages": [{"duration": 1e300, "pause": True}, {"duration": "1s", "rate": {"from": 0, "to": 5}}]})
@example(data={"stages": [{"duration": "24h", "rate": "1e6/s"}]})
def test_a_random_table_is_a_profile_or_a_profile_error(data: dict[str, Any]) -> None:
    parsed_or_refused(data)


@FUZZ
@given(data=st.dictionaries(TEXT, VALUES, max_size=8))
def test_a_table_of_any_keys_is_a_profile_or_a_profile_error(data: dict[str, Any]) -> None:
    parsed_or_refused(data)


TOML_LINE = st.one_of(
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KEYS), st.sampled_from(['"10s"', "1", "true", "[]", "{}"])),
    st.sampled_from(["[target]", "[[stages]]", "[batch]", "[limits]", "[cost]", "[[variants]]", "[scenarios]"]),
    st.builds(lambda n: "a = " + "[" * n + "]" * n, st.integers(1, 3000)),  # nesting, up to thousands deep
    st.builds(lambda k, n: f"{k} = " + "9" * n, st.sampled_from(KEYS), st.integers(1, 500)),  # far past 64 bits
    st.builds(lambda k: f'{k} = "a\\u0000b"', st.sampled_from(["corpus", "name", "duration"])),  # a NUL
    st.text(alphabet=string.printable, max_size=40),
)


@FUZZ
@given(lines=st.lists(TOML_LINE, max_size=12))
@example(lines=["[[stages]]", 'duration = "1s"', "in_flight = 9223372036854775807"])
@example(lines=["[scenarios]", 'corpus = "/dev/null"', "[[stages]]", 'duration = "1s"', 'rate = "1/s"'])
def test_a_random_toml_file_is_a_profile_or_a_profile_error(lines: list[str]) -> None:
    loaded_or_refused("\n".join(lines).encode(), ".toml")


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".toml", ".json", ""]))
def test_random_bytes_are_a_profile_or_a_profile_error(raw: bytes, suffix: str) -> None:
    loaded_or_refused(raw, suffix)


ONCE_CRASHED = [
    # profile.py _non_negative_count: float(10**400) raises OverflowError, which _ramp does not turn into a
    # ProfileError (TOML reads `in_flight = 999...` of 400 digits as that integer)
    {"stages": [{"duration": "1s", "in_flight": 10**400}]},
    # profile.py _non_negative_number: math.isfinite(10**400) raises OverflowError
    {"stages": [{"duration": "1s", "rate": "1/s"}], "cost": {"budget_cents": 10**400}},
    # units.py parse_duration and parse_rate: float(10**400) raises OverflowError
    {"stages": [{"duration": 10**400, "rate": "1/s"}]},
    {"stages": [{"duration": "1s", "rate": 10**400}]},
    # profile.py load_corpus: Path.read_text raises ValueError("embedded null byte"), not an OSError
    {"stages": [{"duration": "1s", "rate": "1/s"}], "scenarios": {"corpus": "a\x00b"}},
]


@pytest.mark.parametrize("data", ONCE_CRASHED)
def test_inputs_that_once_crashed_the_profile_reader_are_refused(data: dict[str, Any]) -> None:
    parsed_or_refused(data)


def test_toml_nested_too_deeply_is_refused() -> None:
    loaded_or_refused(b"a = " + b"[" * 2000 + b"]" * 2000, ".toml")
