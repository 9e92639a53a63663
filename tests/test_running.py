"""The run use case outside the command line: ``prepare``'s policy checks (what is refused before anything
starts, and the one sentence that says why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stressor.profile import Profile, parse_profile
from stressor.running import (
    NO_KEY,
    ExitCode,
    Outputs,
    Overrides,
    PreparedRun,
    RunError,
    RunRequest,
    prepare,
    with_overrides,
)
from stressor.session import EMBEDDED_API_KEY, Scale

STAGES = [{"duration": "10s", "rate": "1/s"}]
PAID = {"consent_to_charge": True, "budget_cents": 10_000}
KEY = "sk_test_prepare_0123456789"


def profile_of(data: dict[str, Any]) -> Profile:
    return parse_profile({"stages": STAGES, **data}, "p.toml", Path())


def request(tmp_path: Path, **given: Any) -> RunRequest:
    return RunRequest(outputs=Outputs(tmp_path / "r.json", tmp_path / "r.runs.jsonl"), **given)


def refusal(profile: Profile, run: RunRequest) -> RunError:
    with pytest.raises(RunError) as info:
        prepare(profile, run)
    return info.value


def real(tmp_path: Path, **given: Any) -> RunRequest:
    return request(tmp_path, overrides=Overrides(base_url="https://api.example.com"), api_key=KEY, **given)


def test_without_a_base_url_the_run_goes_to_the_embedded_simulator_with_no_key_and_no_cost_guard(
    tmp_path: Path,
) -> None:
    profile = profile_of({"simulator": {"slots": 7, "seed": 3}})  # no [cost] consent: no bill
    prepared = prepare(profile, request(tmp_path, simulator={"slots": 9, "seed": None}))
    assert prepared.embedded and prepared.where.api_key == EMBEDDED_API_KEY
    assert prepared.where.simulator is not None
    assert (prepared.where.simulator.slots, prepared.where.simulator.seed) == (9, 3)  # flags over the table


def test_a_bad_simulator_setting_names_the_flag_or_the_profile_key_it_came_from(tmp_path: Path) -> None:
    flagged = refusal(profile_of({}), request(tmp_path, simulator={"slots": 0}))
    assert flagged.code is ExitCode.USAGE and str(flagged).startswith("--sim-slots: ")
    table = refusal(profile_of({"simulator": {"slots": 0}}), request(tmp_path))
    assert str(table).startswith("p.toml: simulator.slots: ")


def test_a_real_api_needs_a_key(tmp_path: Path) -> None:
    error = refusal(profile_of({"cost": PAID}), request(tmp_path, overrides=Overrides(base_url="https://a.example")))
    assert (error.code, str(error)) == (ExitCode.USAGE, NO_KEY)


@pytest.mark.parametrize(
    ("cost", "sentence"),
    [
        ({}, "p.toml: cost.consent_to_charge: must be true to drive a real API"),
        ({"consent_to_charge": True}, "p.toml: cost.budget_cents: is required against a real API"),
        ({"consent_to_charge": True, "budget_cents": 1}, "p.toml: the plan is estimated at 160 cents (10 runs)"),
    ],
)
def test_the_cost_guard_refuses_a_real_api_without_consent_or_a_budget_the_plan_fits_in(
    tmp_path: Path, cost: dict[str, Any], sentence: str
) -> None:
    error = refusal(profile_of({"cost": cost}), real(tmp_path))
    assert error.code is ExitCode.USAGE and str(error).startswith(sentence)


def test_a_real_api_within_its_budget_is_prepared_with_its_key_and_the_flags_overrides(tmp_path: Path) -> None:
    prepared = prepare(profile_of({"cost": PAID}), real(tmp_path, thresholds=("failure_rate < 1% abort",)))
    assert not prepared.embedded
    assert (prepared.where.base_url, prepared.where.api_key) == ("https://api.example.com", KEY)
    assert [t.text for t in prepared.aborts] == ["failure_rate < 1% abort"]
    assert KEY not in repr(prepared)  # a repr lands in tracebacks


def test_a_bad_threshold_is_refused_in_one_sentence(tmp_path: Path) -> None:
    error = refusal(profile_of({}), request(tmp_path, thresholds=("failure_rat < 1%",)))
    assert error.code is ExitCode.USAGE and "failure_rat" in str(error)


def test_workers_cannot_follow_runs_by_webhook(tmp_path: Path) -> None:
    error = refusal(profile_of({"webhooks": {"enabled": True}}), request(tmp_path, scale=Scale(workers=2)))
    assert str(error).startswith("--workers and --cluster follow runs by polling")


def test_a_receiver_off_loopback_needs_the_opt_in(tmp_path: Path) -> None:
    profile = profile_of({"webhooks": {"enabled": True, "listen": "0.0.0.0:8090"}})
    error = refusal(profile, request(tmp_path))
    assert "0.0.0.0:8090, which is not loopback: pass --webhook-allow-remote" in str(error)
    assert prepare(profile, request(tmp_path, webhook_allow_remote=True)).where.webhook_allow_remote


def test_webhooks_from_a_real_api_need_its_signing_secret(tmp_path: Path) -> None:
    profile = profile_of({"cost": PAID, "webhooks": {"enabled": True}})
    error = refusal(profile, real(tmp_path))
    assert str(error) == "webhooks against a real API need the signing secret in STRESSOR_WEBHOOK_SECRET"
    prepared = prepare(profile, real(tmp_path, webhook_secrets=("whsec_a", "whsec_b")))
    assert prepared.where.webhook_secrets == ("whsec_a", "whsec_b")


def test_a_fractional_stagger_is_warned_about_against_a_real_api_only(tmp_path: Path) -> None:
    profile = profile_of({"cost": PAID, "batch": {"runs": 3, "stagger": "1.5s"}})
    (warning,) = prepare(profile, real(tmp_path)).warnings
    assert warning.startswith("stagger 1.5s is not a whole number of seconds")
    assert prepare(profile, request(tmp_path)).warnings == ()


def test_output_paths_are_checked_before_the_run_and_missing_directories_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    under_a_file = Outputs(tmp_path / "r.json", tmp_path / "r.runs.jsonl", html=tmp_path / "a-file" / "r.html")
    error = refusal(profile_of({}), RunRequest(outputs=under_a_file))
    blocked = f"--html {under_a_file.html}: {tmp_path / 'a-file'} is a file, not a directory"
    assert (error.code, str(error)) == (ExitCode.USAGE, blocked)
    a_directory = Outputs(tmp_path, tmp_path / "r.runs.jsonl")
    assert str(refusal(profile_of({}), RunRequest(outputs=a_directory))).startswith(f"--out {tmp_path}: is a directory")
    nested = Outputs(tmp_path / "new" / "deeper" / "r.json", tmp_path / "logs" / "r.runs.jsonl")
    prepare(profile_of({}), RunRequest(outputs=nested))
    assert (tmp_path / "new" / "deeper").is_dir() and (tmp_path / "logs").is_dir()
    assert not nested.results.exists()  # checked, not written


def test_overrides_replace_the_profiles_values_and_leave_the_rest() -> None:
    profile = profile_of({"grace": "30s", "limits": {"create_rate": "5/s", "poll_rate": "50/s"}})
    changed = with_overrides(profile, Overrides(grace_s=2.0, create_rate=1.0, enabled=True, listen_port=0))
    assert (changed.grace_s, changed.limits.create_rate, changed.limits.poll_rate) == (2.0, 1.0, 50.0)
    assert changed.webhooks.enabled and changed.webhooks.listen_port == 0
    assert with_overrides(profile, Overrides()) == profile


def test_the_calls_flags_turn_call_logs_and_transcripts_on_and_off() -> None:
    plain, asked = profile_of({}), profile_of({"calls": {"transcripts": True, "concurrency": 3}})
    on = with_overrides(plain, Overrides(calls=True)).calls
    assert (on.fetch, on.transcripts) == (True, False)
    said = with_overrides(plain, Overrides(transcripts=True)).calls
    assert (said.fetch, said.transcripts) == (True, True)  # transcripts come with the call logs
    off = with_overrides(asked, Overrides(calls=False)).calls
    assert (off.fetch, off.transcripts, off.concurrency) == (False, False, 3)
    assert with_overrides(asked, Overrides(calls=True)).calls == asked.calls


def test_the_calls_log_goes_beside_the_results_is_checked_first_and_refused_without_call_logs(tmp_path: Path) -> None:
    fetching = profile_of({"calls": {"fetch": True}})
    assert prepare(fetching, request(tmp_path)).outputs.calls_log == tmp_path / "r.calls.jsonl"
    assert prepare(profile_of({}), request(tmp_path)).outputs.calls_log is None  # no call logs: no calls log
    given = tmp_path / "logs" / "calls.jsonl"
    assert prepare(fetching, request(tmp_path, calls_log=given)).outputs.calls_log == given
    assert given.parent.is_dir() and not given.exists()  # checked, not written
    (tmp_path / "a-file").write_text("")
    blocked = refusal(fetching, request(tmp_path, calls_log=tmp_path / "a-file" / "c.jsonl"))
    assert (blocked.code, str(blocked)) == (
        ExitCode.USAGE,
        f"--calls-log {tmp_path / 'a-file' / 'c.jsonl'}: {tmp_path / 'a-file'} is a file, not a directory",
    )
    idle = refusal(profile_of({}), request(tmp_path, calls_log=given))
    assert idle.code is ExitCode.USAGE and "call logs are not fetched; add --calls" in str(idle)


def test_a_prepared_run_is_a_frozen_value(tmp_path: Path) -> None:
    prepared = prepare(profile_of({}), request(tmp_path))
    assert isinstance(prepared, PreparedRun)
    with pytest.raises(AttributeError):
        prepared.profile = profile_of({"grace": "1s"})  # type: ignore[misc]
