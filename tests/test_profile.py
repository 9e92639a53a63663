"""Profile loading and validation: every mistake names the file, the field and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from stressor.profile import ClosedLoad, OpenLoad, Pause, ProfileError, Ramp, load_profile, parse_profile

BASE = {"stages": [{"duration": "10s", "rate": "30/min"}]}


def parse(data: dict) -> object:
    return parse_profile(data, "p.toml", Path())


def error_of(data: dict) -> str:
    with pytest.raises(ProfileError) as info:
        parse(data)
    return str(info.value)


def test_shipped_smoke_profile_loads() -> None:
    profile = load_profile(Path(__file__).parent.parent / "profiles" / "smoke.toml")
    assert profile.name == "smoke"
    assert profile.stages[0].batch.runs == 5
    assert isinstance(profile.stages[0].load, OpenLoad)
    assert profile.stages[0].load.batches_per_s == Ramp(4.0, 4.0)


def test_defaults_and_units() -> None:
    profile = parse({**BASE, "batch": {"runs": 20, "stagger": "1.5s"}, "target": {"poll_interval": "250ms"}})
    assert profile.stages[0].load == OpenLoad(Ramp(0.5, 0.5))
    assert profile.stages[0].batch.runs == 20
    assert profile.stages[0].batch.stagger_s == 1.5
    assert profile.target.poll_interval_s == 0.25
    assert [v.name for v in profile.variants] == ["default"]


def test_stage_models() -> None:
    profile = parse(
        {
            "batch": {"runs": 4},
            "stages": [
                {"duration": "1m", "rate": {"from": "10/min", "to": "1/s"}},
                {"duration": "30s", "runs_rate": "2/s"},
                {"duration": "5m", "in_flight": {"from": 10, "to": 40}},
                {"duration": "1h30m", "pause": True},
            ],
        }
    )
    loads = [stage.load for stage in profile.stages]
    assert loads[0] == OpenLoad(Ramp(10 / 60, 1.0))
    assert loads[1] == OpenLoad(Ramp(0.5, 0.5))  # 2 runs/s in batches of 4
    assert loads[2] == ClosedLoad(Ramp(10, 40))
    assert loads[3] == Pause()
    assert profile.stages[3].duration_s == 5400


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({**BASE, "colour": "red"}, "p.toml: colour: is not a known key"),
        ({**BASE, "batch": {"runs": 21}}, "p.toml: batch.runs: must be an integer from 1 to 20, got 21"),
        ({**BASE, "batch": {"stagger": 61}}, "p.toml: batch.stagger: must be a duration from 0 to 60s"),
        ({**BASE, "batch": {"stagger": "-1s"}}, "p.toml: batch.stagger: expected a duration"),
        (
            {"stages": [{"duration": "0s", "rate": 1}]},
            "p.toml: stages[0].duration: must be a duration greater",
        ),
        ({"stages": [{"duration": -5, "rate": 1}]}, "p.toml: stages[0].duration: a duration must be"),
        ({"stages": [{"rate": 1}]}, "p.toml: stages[0].duration: is required"),
        ({"stages": [{"duration": "1m", "rate": {"from": 1}}]}, "p.toml: stages[0].rate.to: is required"),
        ({"stages": [{"duration": "1m"}]}, "p.toml: stages[0]: needs exactly one load model"),
        ({"stages": [{"duration": "1m", "rate": 1, "in_flight": 3}]}, "got rate, in_flight"),
        ({"stages": [{"duration": "1m", "rate": "fast"}]}, "p.toml: stages[0].rate: expected a rate like"),
        ({"stages": [{"duration": "1m", "rate": 1, "batch": {"runs": 0}}]}, "stages[0].batch.runs: must be"),
        (
            {**BASE, "target": {"kind": "grpc"}},
            "p.toml: target.kind: must be one of 'test-calls', got 'grpc'",
        ),
        (
            {**BASE, "target": {"request": {"target_id": True}}},
            "target.request.target_id: must be a positive",
        ),
        ({**BASE, "target": {"base_url": "ftp://x"}}, "target.base_url: must be an http:// or https:// URL"),
        ({"stages": []}, "p.toml: stages: needs at least one stage"),
        ({"stages": {"duration": "1s"}}, "p.toml: stages: must be a list of tables"),
        (
            {**BASE, "variants": [{"name": "a"}, {"name": "a"}]},
            "variants[1].name: duplicates the variant name",
        ),
        ({**BASE, "scenarios": {"prompts": []}}, "scenarios.prompts: must be a non-empty list"),
        ({**BASE, "target": {"submit": "single"}, "batch": {"runs": 3}}, "batch.runs: must be 1 when"),
    ],
)
def test_invalid_profiles_name_file_field_and_rule(data: dict, expected: str) -> None:
    assert expected in error_of(data)


def test_unknown_key_lists_what_is_allowed() -> None:
    message = error_of({**BASE, "batch": {"runz": 3}})
    assert "batch.runz: is not a known key (allowed here: runs, stagger)" in message


def test_corpus_jsonl_and_json(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text(
        '{"name": "hours", "scenario_prompt": "Ask the hours", "expected_outcome": "success"}\n\n'
        '{"name": "refund", "scenario_prompt": "Ask for a refund"}\n'
    )
    (tmp_path / "c.json").write_text('[{"name": "only", "scenario_prompt": "Hi"}]')
    profile = parse_profile({**BASE, "scenarios": {"corpus": "c.jsonl"}}, "p.toml", tmp_path)
    assert [(s.name, s.expected_outcome) for s in profile.scenarios] == [
        ("hours", "success"),
        ("refund", None),
    ]
    profile = parse_profile({**BASE, "scenarios": {"corpus": "c.json"}}, "p.toml", tmp_path)
    assert [s.prompt for s in profile.scenarios] == ["Hi"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "p.toml: scenarios.corpus: cannot read corpus file"),
        ("{not json", "is not valid JSON or JSONL"),
        ('{"name": "a"}', "line 1.scenario_prompt: is required"),
        ('{"name": "a", "scenario_prompt": "x", "mood": 1}', "line 1.mood: is not a known key"),
        ("[1]", "item 1: must be an object"),
        ("", "holds no scenarios"),
    ],
)
def test_bad_corpus(tmp_path: Path, content: str | None, expected: str) -> None:
    if content is not None:
        (tmp_path / "c.jsonl").write_text(content)
    with pytest.raises(ProfileError, match=None) as info:
        parse_profile({**BASE, "scenarios": {"corpus": "c.jsonl"}}, "p.toml", tmp_path)
    assert expected in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read the profile"):
        load_profile(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("stages = [")
    with pytest.raises(ProfileError, match=r"bad.toml: is not valid TOML"):
        load_profile(bad)
    as_json = tmp_path / "p.json"
    as_json.write_text('{"stages": [{"duration": "1s", "rate": 1}]}')
    assert load_profile(as_json).duration_s == 1.0
