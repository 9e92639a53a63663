"""The simulator's fault, webhook and grade settings: defaults, validation, and ``SimConfig.from_mapping``."""

from __future__ import annotations

from typing import Any

import pytest

from stressor.profile import ProfileError, parse_profile
from stressor.sim.config import Distribution, SimConfig, SimConfigError, check_simulator_table
from stressor.sim.faults import FaultLayer
from stressor.sim.model import SimModel
from stressor.sim.records import RunRequest
from stressor.sim.views import config_json
from stressor.sim.windows import ErrorBurst, Stall

SECRET = "whsec_0123456789abcdef"


def test_every_new_setting_is_off_by_default() -> None:
    config = SimConfig()
    assert not config.faults_enabled
    assert (config.rate_limit, config.error_burst, config.latency, config.stall, config.webhook_url) == (None,) * 5
    assert config.error_rate == config.reset_rate == config.fault_after_create == 0.0
    assert config.webhook_drop_rate == config.webhook_duplicate_rate == 0.0 and not config.webhook_reorder
    assert config.webhook_payload == "nested"  # data.test_call_run, where the API docs' CI handler reads the run
    assert (config.grade_scale, config.grade_delay, config.grade_twice) == (100, 0.0, False)
    assert config.effective_rate_limit_burst == 1


def test_rate_limit_burst_defaults_to_one_second_of_requests() -> None:
    assert SimConfig(rate_limit=7.5).effective_rate_limit_burst == 8
    assert SimConfig(rate_limit=0.2).effective_rate_limit_burst == 1
    assert SimConfig(rate_limit=10, rate_limit_burst=3).effective_rate_limit_burst == 3


def test_from_mapping_takes_the_flag_names_with_values_as_written() -> None:
    config = SimConfig.from_mapping(
        {
            "slots": 5,
            "call_duration": "fixed(30)",
            "rate_limit": "600/min",
            "rate_limit_burst": 4,
            "rate_limit_scope": "create",
            "rate_limit_status": "503",
            "retry_after": "HTTP-Date",
            "rate_limit_headers": "ietf",
            "error_rate": 0.1,
            "error_status": 500,
            "error_burst": "every=5s,length=1s,status=503",
            "fault_after_create": 0.5,
            "latency": 0.2,
            "reset_rate": 0.01,
            "stall": "at=2s,for=2s",
            "webhook_url": "http://127.0.0.1:8099/hooks",
            "webhook_secret": SECRET,
            "webhook_duplicate_rate": 0.1,
            "webhook_delay": "uniform(0,0.5)",
            "webhook_reorder": True,
            "webhook_drop_rate": 0.05,
            "webhook_max_attempts": 3,
            "webhook_retry_base": "50ms",
            "webhook_retry_cap": 1,
            "webhook_payload": " Flat ",
            "grade_score": "uniform(0.5,1)",
            "grade_scale": "1",
            "grade_delay": "250ms",
            "grade_twice": True,
        }
    )
    assert config.rate_limit == 10.0 and config.rate_limit_status == 503 and config.retry_after == "http-date"
    assert config.error_status == "500" and config.error_burst == ErrorBurst(5.0, 1.0, "503")
    assert config.latency == Distribution.fixed(0.2) and config.stall == Stall(2.0, 2.0)
    assert config.webhook_delay == Distribution.uniform(0, 0.5) and config.webhook_retry_base == 0.05
    assert config.webhook_payload == "flat"
    assert config.grade_scale == 1 and config.grade_delay == 0.25 and config.faults_enabled
    assert SimConfig.from_mapping({}) == SimConfig()
    assert SimConfig.from_mapping({"rate_limit": "12"}).rate_limit == 12.0  # a number as text, per second


@pytest.mark.parametrize(
    ("settings", "key", "fragment"),
    [
        ({"rate_limt": 5}, "rate_limt", "rate_limt is not a simulator setting"),
        ({"host": "127.0.0.1"}, "host", "not a simulator setting"),
        ({"rate_limit": 0}, "rate_limit", "above 0"),
        ({"rate_limit": "fast"}, "rate_limit", "expected a rate"),
        ({"rate_limit_burst": 0}, "rate_limit_burst", "at least 1"),
        ({"rate_limit_scope": "reads"}, "rate_limit_scope", "one of all, create"),
        ({"rate_limit_status": 418}, "rate_limit_status", "one of 429, 503"),
        ({"retry_after": "soon"}, "retry_after", "one of seconds, http-date, none"),
        ({"rate_limit_headers": "draft"}, "rate_limit_headers", "one of none, x-ratelimit, x-ratelimit-epoch, ietf"),
        ({"error_rate": 1.5}, "error_rate", "between 0 and 1"),
        ({"error_status": 502}, "error_status", "one of 500, 503, mixed"),
        ({"error_burst": "every=5s"}, "error_burst", "lacks length="),
        ({"fault_after_create": -0.1}, "fault_after_create", "between 0 and 1"),
        ({"latency": "gaussian(1,2)"}, "latency", "unknown distribution"),
        ({"reset_rate": True}, "reset_rate", "between 0 and 1"),
        ({"stall": "at=1s"}, "stall", "lacks for="),
        ({"webhook_url": "ftp://example.com/x"}, "webhook_url", "http:// or https://"),
        ({"webhook_url": "http://:80/x", "webhook_secret": SECRET}, "webhook_url", "with a host"),
        ({"webhook_url": "http://127.0.0.1:9/x"}, "webhook_secret", "must be set when webhook_url is"),
        ({"webhook_duplicate_rate": 2}, "webhook_duplicate_rate", "between 0 and 1"),
        ({"webhook_delay": "fixed(-1)"}, "webhook_delay", "at least 0"),
        ({"webhook_reorder": "yes"}, "webhook_reorder", "true or false"),
        ({"webhook_drop_rate": -1}, "webhook_drop_rate", "between 0 and 1"),
        ({"webhook_max_attempts": 0}, "webhook_max_attempts", "at least 1"),
        ({"webhook_retry_base": 0}, "webhook_retry_base", "above 0"),
        ({"webhook_retry_base": "soon"}, "webhook_retry_base", "expected a duration"),
        ({"webhook_retry_cap": 0.01}, "webhook_retry_cap", "at least webhook_retry_base"),
        ({"webhook_payload": "wrapped"}, "webhook_payload", "one of nested, flat"),
        ({"webhook_payload": True}, "webhook_payload", "one of nested, flat"),
        ({"grade_score": "normal(1)"}, "grade_score", "unknown distribution"),
        ({"grade_scale": 10}, "grade_scale", "one of 100, 1"),
        ({"grade_scale": True}, "grade_scale", "one of 100, 1"),
        ({"grade_delay": -1}, "grade_delay", "at least 0"),
        ({"grade_twice": 1}, "grade_twice", "true or false"),
    ],
)
def test_from_mapping_names_the_key_in_one_sentence(settings: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(SimConfigError) as caught:
        SimConfig.from_mapping(settings)
    message = str(caught.value)
    assert caught.value.setting == key and message.startswith(key)
    assert fragment in message
    assert message.endswith(".") and message.count(". ") == 0  # one sentence


@pytest.mark.parametrize("secret", ["sk_live_notawebhooksecret", "whsec_", "whsec_has space"])
def test_a_bad_webhook_secret_is_refused_without_being_shown(secret: str) -> None:
    with pytest.raises(SimConfigError) as caught:
        SimConfig(webhook_secret=secret)
    assert caught.value.setting == "webhook_secret"
    assert secret not in str(caught.value) or secret == "whsec_"


def test_the_webhook_secret_never_shows() -> None:
    config = SimConfig(webhook_url="http://127.0.0.1:9/h", webhook_secret=SECRET, api_key="sk_live_k")
    assert SECRET not in repr(config) and SECRET not in str(config)
    shown = config_json(config, seed=1)
    assert SECRET not in repr(shown) and shown["webhook_secret_set"] is True
    assert shown["webhook_url"] == "http://127.0.0.1:9/h"


def test_config_document_writes_distributions_and_windows_as_their_flags_take_them() -> None:
    config = SimConfig(
        rate_limit=2.0,
        latency=Distribution.uniform(0.1, 0.25),
        error_burst=ErrorBurst(4.0, 0.5, "mixed", 1.0),
        stall=Stall(3.0, 1.5),
    )
    shown = config_json(config, seed=None)
    assert shown["latency"] == "uniform(0.1,0.25)" and shown["rate_limit_burst"] == 2
    assert shown["error_burst"] == "every=4s,length=0.5s,status=mixed,start=1s"
    assert shown["stall"] == "at=3s,for=1.5s"
    rebuilt = SimConfig.from_mapping(
        {name: shown[name] for name in ("latency", "error_burst", "stall", "rate_limit", "grade_score")}
    )
    assert (rebuilt.latency, rebuilt.error_burst, rebuilt.stall) == (config.latency, config.error_burst, config.stall)


def test_distributions_print_back_exactly() -> None:
    for distribution in (Distribution.fixed(0.123456789), Distribution.lognormal(0.85, 0.1), Distribution.fixed(30)):
        assert Distribution.parse(str(distribution)) == distribution
    assert str(Distribution.fixed(30)) == "fixed(30)"


def test_model_seeds_faults_and_webhooks_apart_from_its_own_draws() -> None:
    # turning faults on must not change which runs fail or how long calls last
    plain = SimModel(SimConfig(seed=5, failure_rate=0.5), wall_at_zero=0.0)
    faulty = SimModel(
        SimConfig(seed=5, failure_rate=0.5, error_rate=0.5, latency=Distribution.fixed(1)), wall_at_zero=0.0
    )
    FaultLayer.for_model(faulty, lambda: 0.0).plan.decide(0.0, 0.0, creates=True)
    for model in (plain, faulty):
        for i in range(10):
            model.create_run(RunRequest(target_type="agent", target_id=1), now=i * 0.01)
        model.advance(1000.0)
    assert [r.status for r in plain.truth()] == [r.status for r in faulty.truth()]
    assert [r.completed for r in plain.truth()] == [r.completed for r in faulty.truth()]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"slotz": 3},
            "p.toml: simulator.slotz: is not a known key (allowed here: agent_versions, agents, batch_name,",
        ),
        ({"api_key": "sk"}, "p.toml: simulator.api_key: is not a known key"),  # stressor gives it its own
    ],
)
def test_a_profiles_simulator_table_holds_only_the_simulators_settings(table: dict, expected: str) -> None:
    profile = parse_profile({"stages": [{"duration": "10s", "rate": "30/min"}], "simulator": table}, "p.toml")
    with pytest.raises(ProfileError) as refused:
        check_simulator_table(profile)
    assert str(refused.value).startswith(expected)
    check_simulator_table(parse_profile({"stages": [{"duration": "1s", "rate": 1}], "simulator": {"slots": 3}}, "p"))
