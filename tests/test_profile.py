"""Profile loading and validation: every mistake names the file, the field and what is allowed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.cli import stressor_here

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
        ({**BASE, "batch": {"stagger": "-1s"}}, "p.toml: batch.stagger: must be a duration from 0 to 60s"),
        (
            {"stages": [{"duration": "0s", "rate": 1}]},
            "p.toml: stages[0].duration: must be a duration greater",
        ),
        (
            {"stages": [{"duration": -5, "rate": 1}]},
            "p.toml: stages[0].duration: must be a duration greater than zero like '30s', '5m' or '250ms', got -5",
        ),
        (
            {"stages": [{"duration": "-5s", "rate": 1}]},
            "p.toml: stages[0].duration: must be a duration greater than zero like '30s', '5m' or '250ms', got '-5s'",
        ),
        ({"stages": [{"duration": "1m", "rate": {"to": 1}}]}, "p.toml: stages[0].rate.from: is required"),
        ({**BASE, "grace": "-5s"}, "p.toml: grace: a duration must be a finite number of seconds >= 0, got '-5s'"),
        (
            {"stages": [{"duration": "24h", "rate": "1000000000/s"}]},
            "p.toml: stages[0]: would start 8.64e+13 batches, more than the 1e+12 a stage may start",
        ),
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
            "target.request.target_id: must be a whole number from 1 to 9223372036854775807 (a positive 64-bit id)",
        ),
        (
            {**BASE, "target": {"request": {"target_id": 2**63}}},
            "p.toml: target.request.target_id: must be a whole number from 1 to 9223372036854775807",
        ),
        (
            {**BASE, "variants": [{"name": "a", "target_id": 2**64}]},
            "p.toml: variants[0].target_id: must be a whole number from 1 to 9223372036854775807",
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
        ({**BASE, "calls": {"fetch": "yes"}}, "p.toml: calls.fetch: must be true or false, got 'yes'"),
        ({**BASE, "calls": {"concurrency": 0}}, "p.toml: calls.concurrency: must be an integer from 1 to 256, got 0"),
        ({**BASE, "calls": {"delay": "soon"}}, "p.toml: calls.delay: expected a duration like"),
        (
            {**BASE, "calls": {"fetch": False, "transcripts": True}},
            "p.toml: calls.transcripts: needs fetch = true (transcripts are fetched with the call logs)",
        ),
        (
            {**BASE, "calls": {"delay": "1m", "wait": "10s"}},
            "p.toml: calls.wait: must be at least the delay before a call log is fetched (calls.delay: 60s), or the "
            "last runs' calls would never be fetched; got 10s",
        ),
        (
            {**BASE, "grades": {"wait": "2m"}, "calls": {"wait": "1m"}},
            "p.toml: calls.wait: must be at least the delay before a call log is fetched ([grades] wait: 120s)",
        ),
        ({**BASE, "calls": {"fetsh": True}}, "p.toml: calls.fetsh: is not a known key (allowed here: concurrency"),
    ],
)
def test_invalid_profiles_name_file_field_and_rule(data: dict, expected: str) -> None:
    assert expected in error_of(data)


def test_call_logs_are_off_by_default_fetched_after_the_grades_wait_and_transcripts_imply_them() -> None:
    default = parse(BASE).calls  # type: ignore[attr-defined]
    assert (default.fetch, default.transcripts, default.concurrency, default.delay_s, default.wait_s) == (
        False,
        False,
        8,
        0.0,
        30.0,
    )
    graded = parse({**BASE, "grades": {"wait": "20s"}, "calls": {"transcripts": True}}).calls  # type: ignore[attr-defined]
    assert (graded.fetch, graded.transcripts, graded.delay_s, graded.wait_s) == (True, True, 20.0, 50.0)
    given = parse({**BASE, "calls": {"fetch": True, "delay": "5s", "wait": "5s", "concurrency": 2}}).calls  # type: ignore[attr-defined]
    assert (given.delay_s, given.wait_s, given.concurrency) == (5.0, 5.0, 2)


def test_unknown_key_lists_what_is_allowed() -> None:
    message = error_of({**BASE, "batch": {"runz": 3}})
    assert "batch.runz: is not a known key (allowed here: runs, stagger)" in message


def test_corpus_jsonl_and_json(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text(
        '{"name": "hours", "scenario_prompt": "Ask the hours", "expected_outcome": "success"}\n\n'
        '{"name": "refund", "scenario_prompt": "Ask for a refund", "goal": "A refund is started."}\n'
    )
    (tmp_path / "c.json").write_text('[{"name": "only", "scenario_prompt": "Hi"}]')
    profile = parse_profile({**BASE, "scenarios": {"corpus": "c.jsonl"}}, "p.toml", tmp_path)
    assert [(s.name, s.expected_outcome, s.goal) for s in profile.scenarios] == [
        ("hours", "success", None),
        ("refund", None, "A refund is started."),
    ]
    profile = parse_profile({**BASE, "scenarios": {"corpus": "c.json"}}, "p.toml", tmp_path)
    assert [s.prompt for s in profile.scenarios] == ["Hi"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "p.toml: scenarios.corpus: cannot read corpus file"),
        ("{not json", "p.toml: scenarios.corpus: {dir}/c.jsonl: line 1: is not valid JSON ("),
        (
            '{"name": "a", "scenario_prompt": "x"}\n\n{"name": "b", "scenario_prompt": "y"}\n{"name": "c", oops}\n',
            "p.toml: scenarios.corpus: {dir}/c.jsonl: line 4: is not valid JSON (",
        ),
        ('[{"name": "a",\n "scenario_prompt": }]', "p.toml: scenarios.corpus: {dir}/c.jsonl: line 2 column 21:"),
        (
            '{"name": "a"}',
            "p.toml: scenarios.corpus: {dir}/c.jsonl: line 1.scenario_prompt: is required (the prompt sent",
        ),
        (
            '{"name": "a", "scenario_prompt": "x", "mood": 1}',
            "c.jsonl: line 1.mood: is not a known key (allowed here: expected_outcome, goal, name, scenario_prompt)",
        ),
        (
            '{"name": "a", "scenario_prompt": "x", "expected_outcome": 3}',
            "line 1.expected_outcome: must be one of 'success', 'failure', 'no_conversation', 'completed', 'failed', "
            "got an integer",
        ),
        (
            '{"name": "a", "scenario_prompt": "x"}\n{"name": "b", "scenario_prompt": "y", "expected_outcome": '
            '"The agent books a slot on Thursday afternoon."}',
            "p.toml: scenarios.corpus: {dir}/c.jsonl: line 2.expected_outcome: must be one of 'success', 'failure', "
            "'no_conversation', 'completed', 'failed', got 'The agent books a slot on Thursday af...' (free text "
            "describing the goal goes in 'goal')",
        ),
        ('[{"name": "a", "scenario_prompt": "x", "expected_outcome": "Success"}]', "item 1.expected_outcome: must be"),
        ('{"name": "a", "scenario_prompt": "x", "goal": 3}', "line 1.goal: must be a string"),
        ('{"name": "a", "scenario_prompt": "x"}\n{"name": "a", "scenario_prompt": "y"}', "line 2.name: duplicates"),
        ("[1]", "p.toml: scenarios.corpus: {dir}/c.jsonl: item 1: must be an object"),
        ("", "p.toml: scenarios.corpus: corpus file {dir}/c.jsonl holds no scenarios"),
    ],
)
def test_bad_corpus(tmp_path: Path, content: str | None, expected: str) -> None:
    if content is not None:
        (tmp_path / "c.jsonl").write_text(content)
    with pytest.raises(ProfileError, match=None) as info:
        parse_profile({**BASE, "scenarios": {"corpus": "c.jsonl"}}, "p.toml", tmp_path)
    assert expected.format(dir=tmp_path) in str(info.value)


def test_a_corpus_that_is_not_utf8_is_named_plainly(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_bytes(b'{"name": "caf\xe9", "scenario_prompt": "x"}\n')
    with pytest.raises(ProfileError) as info:
        parse_profile({**BASE, "scenarios": {"corpus": "c.jsonl"}}, "p.toml", tmp_path)
    message = str(info.value)
    where = f"p.toml: scenarios.corpus: corpus file {tmp_path}/c.jsonl"
    assert message == f"{where} is not UTF-8 text (byte 13 cannot be decoded)"
    assert "PosixPath" not in message


def test_known_simulator_settings_pass_through() -> None:
    profile = parse({**BASE, "simulator": {"slots": 3, "call_duration": "fixed(0.2)", "seed": 7}})
    assert profile.simulator == {"slots": 3, "call_duration": "fixed(0.2)", "seed": 7}


def test_polls_slow_down_by_default_within_a_bound() -> None:
    assert parse(BASE).target.poll_interval_max_s == 10.0  # 10 x the default 1 s
    assert parse({**BASE, "target": {"poll_interval": "50ms"}}).target.poll_interval_max_s == 0.5
    assert parse({**BASE, "target": {"poll_interval": "5s"}}).target.poll_interval_max_s == 30.0  # the cap
    assert parse({**BASE, "target": {"poll_interval": "45s"}}).target.poll_interval_max_s == 45.0  # never below
    fixed = parse({**BASE, "target": {"poll_interval": "2s", "poll_interval_max": "2s"}})
    assert fixed.target.poll_interval_max_s == 2.0  # equal bounds: polls at a fixed interval
    # A flag that replaces the interval (`run --poll-interval`) moves the default bound along, not a set one.
    assert replace(parse(BASE).target, poll_interval_s=0.1).poll_interval_max_s == 1.0
    assert replace(fixed.target, poll_interval_s=1.0).poll_interval_max_s == 2.0
    assert "poll_interval_max: must be at least poll_interval" in error_of(
        {**BASE, "target": {"poll_interval": "2s", "poll_interval_max": "1s"}}
    )


def test_a_stage_batch_overrides_the_profile_batch_and_keeps_its_stagger() -> None:
    profile = parse(
        {
            "batch": {"runs": 4, "stagger": "2s"},
            "stages": [{"duration": "1m", "rate": "1/s"}, {"duration": "1m", "rate": "1/s", "batch": {"runs": 7}}],
        }
    )
    assert [(s.batch.runs, s.batch.stagger_s) for s in profile.stages] == [(4, 2.0), (7, 2.0)]


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


VALID_TOML = '[[stages]]\nduration = "1s"\nrate = 1\n'


@pytest.mark.parametrize("name", ["p.yaml", "p.yml", "P.YAML"])
def test_a_yaml_profile_is_refused_not_read_as_toml(tmp_path: Path, name: str) -> None:
    # This text is valid TOML (and YAML would read it otherwise): the extension decides, not a lucky parse.
    path = tmp_path / name
    path.write_text(VALID_TOML)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value) == (
        f"{path}: YAML is not supported: write the profile in TOML (.toml) or JSON (.json)"
    )


@pytest.mark.parametrize(("name", "found"), [("p.conf", "not .conf"), ("profile", "without an extension")])
def test_a_profile_without_a_toml_or_json_extension_is_refused(tmp_path: Path, name: str, found: str) -> None:
    path = tmp_path / name
    path.write_text(VALID_TOML)
    with pytest.raises(ProfileError, match=f"a profile is a .toml or a .json file, {found}$"):
        load_profile(path)


def test_the_extension_is_read_in_any_case(tmp_path: Path) -> None:
    upper = tmp_path / "P.TOML"
    upper.write_text(VALID_TOML)
    assert load_profile(upper).duration_s == 1.0
    as_json = tmp_path / "P.Json"
    as_json.write_text('{"stages": [{"duration": "1s", "rate": 1}]}')
    assert load_profile(as_json).duration_s == 1.0


PLAIN = '[[stages]]\nduration = "1s"\nrate = "1/s"\n'


@pytest.mark.parametrize(
    ("extra", "corpus", "message"),
    [
        ("[simulator]\nslotz = 3\n", None, "p.toml: simulator.slotz: is not a known key (allowed here: agent_"),
        (
            '[scenarios]\ncorpus = "c.jsonl"\n',
            b'{"name": "a", "scenario_prompt": "x"}\n\n{"name": "b" "scenario_prompt": "y"}\n',
            "p.toml: scenarios.corpus: {dir}/c.jsonl: line 3: is not valid JSON (",
        ),
        (
            '[scenarios]\ncorpus = "c.jsonl"\n',
            b'{"name": "\xff", "scenario_prompt": "x"}\n',
            "p.toml: scenarios.corpus: corpus file {dir}/c.jsonl is not UTF-8 text",
        ),
        ('[[stages]]\nduration = "-5s"\nrate = 1\n', None, "stages[1].duration: must be a duration greater than zero"),
    ],
)
def test_plan_and_run_refuse_in_one_sentence(
    tmp_path: Path, extra: str, corpus: bytes | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PLAIN + extra)
    if corpus is not None:
        (tmp_path / "c.jsonl").write_bytes(corpus)
    monkeypatch.chdir(tmp_path)
    # `run` against a real API too: the profile is refused before anything else is looked at.
    for command in (["plan"], ["run"], ["run", "--base-url", "http://127.0.0.1:9"]):
        done = stressor_here(*command, str(profile))  # the command line, in this process
        assert done.returncode == 2, (command, done.stderr)
        assert message.format(dir=tmp_path) in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr and "PosixPath" not in done.stderr


def test_the_largest_64_bit_target_id_is_taken() -> None:
    profile = parse_profile({**BASE, "target": {"request": {"target_id": 2**63 - 1}}}, "p.toml", Path())
    assert profile.variants[0].request.target_id == 2**63 - 1
