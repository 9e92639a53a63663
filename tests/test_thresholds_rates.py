"""A share or a score written without ``%`` must be a fraction below 1: ``failure_rate < 1`` once read as "below
100 %" and passed a run with 14.5 % failures. Every rate-valued name of the grammar, and every way a threshold
comes in (a profile, ``run -t``, ``report -t``, ``capacity --slo``), refuses it in one sentence, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import stressor_here

from stressor.profile import ProfileError, parse_profile
from stressor.thresholds import Kind, ThresholdError, _all_simple_names, parse_path, parse_threshold

FIXTURE = Path(__file__).parent / "data" / "results-small.json"


def _rate_valued() -> list[str]:
    """Every share or score name the grammar knows, at the top and per variant and scenario."""
    names = [n for n in _all_simple_names(None) if parse_path(n).kind in (Kind.SHARE, Kind.SCORE)]
    for scope in ("variant", "scenario"):
        for name in _all_simple_names(scope):
            for slice_name in ("spark", "*"):
                path = f"{scope}[{slice_name}].{name}"
                if parse_path(path).kind in (Kind.SHARE, Kind.SCORE):
                    names.append(path)
    return names


RATE_VALUED = _rate_valued()


def test_the_grammar_has_shares_and_scores_at_every_level() -> None:
    assert {"failure_rate", "grade.mean", "grade.p10"} <= set(RATE_VALUED)
    assert {"variant[spark].failure_rate", "scenario[*].failure_rate", "scenario[*].grade.min"} <= set(RATE_VALUED)


@pytest.mark.parametrize("name", RATE_VALUED)
@pytest.mark.parametrize("bare", ["1", "1.0", "5", "80", "-0.1"])
def test_a_bare_number_of_one_or_more_is_refused_for_every_rate_valued_name(name: str, bare: str) -> None:
    text = f"{name} < {bare}"
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(text)
    message = str(caught.value)
    assert message.startswith(f"threshold {text!r}: {name} is a ")
    assert "a value without % must be a fraction below 1" in message
    assert message.endswith(".") and ". " not in message  # one sentence


@pytest.mark.parametrize("name", RATE_VALUED)
def test_a_percent_or_a_fraction_below_one_is_read_as_written(name: str) -> None:
    assert parse_threshold(f"{name} < 1%").limit == pytest.approx(0.01)
    assert parse_threshold(f"{name} < 0.01").limit == pytest.approx(0.01)
    assert parse_threshold(f"{name} >= 0.999").limit == pytest.approx(0.999)
    assert parse_threshold(f"{name} <= 100%").limit == 1
    assert parse_threshold(f"{name} == 0").limit == 0


def test_the_sentence_says_what_to_write_instead() -> None:
    with pytest.raises(ThresholdError, match=r"write 1% or 0\.01, or 100% for all runs\.$"):
        parse_threshold("failure_rate < 1")
    with pytest.raises(ThresholdError, match=r"write 1% or 0\.01, or 100% for a perfect score\.$"):
        parse_threshold("grade.min == 1")
    with pytest.raises(ThresholdError, match=r"write 5% or 0\.05\.$"):
        parse_threshold("scenario[refund].failure_rate < 5")


def test_counts_durations_and_rates_keep_their_bare_numbers() -> None:
    assert parse_threshold("failed < 1").limit == 1
    assert parse_threshold("grade.below_threshold <= 3").limit == 3
    assert parse_threshold("requests_per_ended_run < 40").limit == 40
    assert parse_threshold("achieved_runs_per_s > 2").limit == 2


def test_a_profile_threshold_is_refused_naming_the_file_and_the_entry() -> None:
    data = {"stages": [{"duration": "1s", "rate": 1}], "thresholds": ["failed == 0", "failure_rate < 1"]}
    with pytest.raises(ProfileError, match=r"^p\.toml: thresholds\[1\]: threshold 'failure_rate < 1': "):
        parse_profile(data, "p.toml", Path())


PROFILE = """grace = "2s"
thresholds = {thresholds}
[batch]
runs = 2
[[stages]]
duration = "1s"
rate = "2/s"
"""


def _refused_in_one_sentence(args: list[str], tmp_path: Path, thresholds: str = "[]") -> str:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE.format(thresholds=thresholds))
    done = stressor_here(*[str(profile) if arg == "PROFILE" else arg for arg in args])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stressor: ")
    assert "a value without % must be a fraction below 1" in lines[0]
    return lines[0]


def test_run_refuses_a_profile_threshold_before_it_starts(tmp_path: Path) -> None:
    line = _refused_in_one_sentence(["run", "PROFILE", "--out", str(tmp_path / "r.json")], tmp_path,
                                    '["failure_rate < 1"]')  # fmt: skip
    assert "p.toml: thresholds[0]: threshold 'failure_rate < 1'" in line
    assert not (tmp_path / "r.json").exists()


def test_run_refuses_a_threshold_flag(tmp_path: Path) -> None:
    line = _refused_in_one_sentence(["run", "PROFILE", "--out", str(tmp_path / "r.json"), "-t", "failure_rate < 1"],
                                    tmp_path)  # fmt: skip
    assert "threshold 'failure_rate < 1'" in line
    assert not (tmp_path / "r.json").exists()


def test_report_refuses_a_threshold_flag(tmp_path: Path) -> None:
    line = _refused_in_one_sentence(["report", str(FIXTURE), "-t", "variant[*].failure_rate <= 1"], tmp_path)
    assert "threshold 'variant[*].failure_rate <= 1'" in line


def test_capacity_refuses_an_slo(tmp_path: Path) -> None:
    line = _refused_in_one_sentence(["capacity", "PROFILE", "--slo", "failure_rate < 5"], tmp_path)
    assert "threshold 'failure_rate < 5'" in line and "write 5% or 0.05" in line
