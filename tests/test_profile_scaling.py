"""``--duration`` and ``--rate``: a profile's stages scaled from the command line (like k6's ``--duration`` and
``--vus``). The pure part (profile.scale_duration, scale_rate, parse_rate_scale), then ``stressor run`` and
``stressor plan`` with them, on virtual time."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from support.cli import stressor_here

from stressor.profile import (
    ClosedLoad,
    OpenLoad,
    Pause,
    Ramp,
    RateScale,
    parse_profile,
    parse_rate_scale,
    scale_duration,
    scale_rate,
)

MIXED = {
    "batch": {"runs": 2},
    "stages": [
        {"name": "warm", "duration": "10s", "rate": {"from": "1/s", "to": "4/s"}},
        {"name": "rest", "duration": "5s", "pause": True},
        {"name": "hold", "duration": "15s", "in_flight": {"from": 3, "to": 10}},
        {"name": "peak", "duration": "10s", "runs_rate": "20/s"},
    ],
}


def mixed() -> object:
    return parse_profile(MIXED, "p.toml", Path())


def test_duration_stretches_every_stage_in_proportion() -> None:
    profile = mixed()
    longer = scale_duration(profile, 80)  # the stages last 40 s: twice as long
    assert [s.duration_s for s in longer.stages] == [20, 10, 30, 20]
    assert [s.load for s in longer.stages] == [s.load for s in profile.stages]  # rates and targets kept
    assert longer.grace_s == profile.grace_s
    shorter = scale_duration(profile, 10)
    assert [s.duration_s for s in shorter.stages] == [2.5, 1.25, 3.75, 2.5]
    assert shorter.duration_s == 10


def test_a_factor_scales_open_rates_and_closed_targets() -> None:
    doubled = scale_rate(mixed(), parse_rate_scale("2x"))
    assert [s.load for s in doubled.stages] == [
        OpenLoad(Ramp(2, 8)),
        Pause(),
        ClosedLoad(Ramp(6, 20)),
        OpenLoad(Ramp(20, 20)),  # runs_rate 20/s of 2-run batches: 10 batches/s, doubled
    ]
    assert [s.duration_s for s in doubled.stages] == [10, 5, 15, 10]


def test_a_smaller_factor_rounds_runs_in_flight_to_whole_runs_never_below_one() -> None:
    third = scale_rate(mixed(), parse_rate_scale("0.1x"))
    assert third.stages[2].load == ClosedLoad(Ramp(1, 1))  # 0.3 and 1.0: one run in flight, not none
    assert scale_rate(mixed(), parse_rate_scale("0.5x")).stages[2].load == ClosedLoad(Ramp(2, 5))  # 1.5 -> 2


def test_a_rate_sets_the_highest_open_rate_and_keeps_the_shape() -> None:
    profile = mixed()
    scaled = scale_rate(profile, parse_rate_scale("30/s"))  # highest open rate: 10 batches/s (peak), to 30
    assert scaled.stages[0].load == OpenLoad(Ramp(3, 12))
    assert scaled.stages[3].load == OpenLoad(Ramp(30, 30))
    assert scaled.stages[2].load == profile.stages[2].load  # closed stages are not rates
    assert scale_rate(profile, parse_rate_scale("300/min")) == scale_rate(profile, RateScale("5/s", None, 5.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "write 30x for a factor or 30/s for batches per second, not '30' alone"),
        ("0x", "a factor must be greater than 0"),
        ("-2x", "a factor must be greater than 0"),
        ("twox", "expected a factor like 2x or 0.5x"),
        ("infx", "a factor must be greater than 0"),
        ("0/s", "a rate must be greater than 0"),
        ("5/fortnight", "expected a rate like"),
    ],
)
def test_a_rate_scale_that_is_not_one_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate_scale(text)


def test_what_cannot_be_scaled_is_refused() -> None:
    closed_only = parse_profile({"stages": [{"duration": "1s", "in_flight": 4}]}, "p.toml", Path())
    with pytest.raises(ValueError, match="no open stage"):
        scale_rate(closed_only, parse_rate_scale("30/s"))
    paused = parse_profile({"stages": [{"duration": "1s", "pause": True}]}, "p.toml", Path())
    with pytest.raises(ValueError, match="no stage that starts runs"):
        scale_rate(paused, parse_rate_scale("2x"))
    with pytest.raises(ValueError, match=r"stages\[0\] would start 1e\+13 batches"):
        scale_rate(parse_profile({"stages": [{"duration": "1s", "rate": 10}]}, "p.toml", Path()),
                   parse_rate_scale("1e12x"))  # fmt: skip
    with pytest.raises(ValueError, match=r"stages\[0\] would keep 4e\+06 runs in flight"):
        scale_rate(closed_only, parse_rate_scale("1e6x"))


QUICK = """grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
[[stages]]
name = "up"
duration = "2s"
rate = "2/s"
[[stages]]
name = "held"
duration = "2s"
in_flight = 4
"""


def test_run_with_duration_and_rate_runs_the_scaled_stages(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK)
    out = tmp_path / "r.json"
    done = stressor_here("run", str(profile), "--out", str(out), "--progress", "0", "--duration", "2s",
                         "--rate", "2x")  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = orjson.loads(out.read_bytes())
    stages = results["stages"]
    assert [(s["start_s"], s["end_s"]) for s in stages] == [(0, 1), (1, 2)]  # 4 s of stages shrunk to 2 s
    assert stages[0]["target"] == {"start": 4.0, "end": 4.0, "unit": "batches/s"}  # 2/s doubled
    assert stages[1]["target"] == {"start": 8.0, "end": 8.0, "unit": "runs in flight"}  # 4 doubled
    assert results["elapsed_s"] < 4


def test_plan_shows_what_run_would_do_with_the_same_flags(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK)
    plain = orjson.loads(stressor_here("plan", str(profile), "--json").stdout)
    scaled = orjson.loads(stressor_here("plan", str(profile), "--json", "--duration", "8s", "--rate", "3/s").stdout)
    assert [s["duration_s"] for s in scaled["stages"]] == [4.0, 4.0]
    assert (plain["stages"][0]["batches"], scaled["stages"][0]["batches"]) == (4, 12)  # 3/s over 4 s


@pytest.mark.parametrize(
    ("flags", "sentence"),
    [
        (["--rate", "30"], "stressor: --rate: write 30x for a factor or 30/s for batches per second, not '30' alone"),
        (["--duration", "0s"], "stressor: --duration: must be greater than zero"),
        (["--rate", "1e12x"], "stressor: --rate 1e12x: stages[0] would start 4e+12 batches"),
    ],
)
def test_bad_scaling_flags_are_one_sentence_exit_2(tmp_path: Path, flags: list[str], sentence: str) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK)
    for command in ("run", "plan"):
        done = stressor_here(command, str(profile), *flags)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(sentence) and len(done.stderr.splitlines()) == 1, done.stderr


def test_rate_on_a_profile_without_open_stages_says_so(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('[[stages]]\nduration = "1s"\nin_flight = 4\n')
    done = stressor_here("run", str(profile), "--rate", "30/s", "--out", str(tmp_path / "r.json"))
    assert done.returncode == 2
    assert done.stderr == (
        "stressor: --rate 30/s: the profile has no open stage (rate or runs_rate) whose rate it could set\n"
    )
    assert not (tmp_path / "r.json").exists()
