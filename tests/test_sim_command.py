"""The ``sim`` command's option handling: bad values end in one sentence and exit code 2."""

from __future__ import annotations

import socket

import pytest
import typer
from typer.testing import CliRunner

from stressor.cli import sim as command
from stressor.cli.plain import PlainCommand
from stressor.cli.sim import sim
from stressor.loopback import is_loopback
from stressor.sim.config import Distribution, SimConfig
from stressor.sim.server import WEBHOOK_SECRET_ENV, simulator_command
from stressor.sim.windows import ErrorBurst, Stall


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("sim", cls=PlainCommand)(sim)
    return app


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--slots", "0"], "slots must be"),
        (["--failure-rate", "2"], "failure_rate must be"),
        (["--time-scale", "0"], "time_scale must be"),
        (["--call-duration", "gaussian(1,2)"], "unknown distribution"),
        (["--call-duration", "fixed(-3)"], "at least 0"),
        (["--product", "lightning"], "product must be"),
        (["--port", "70000"], "65535"),
        (["--host", "10.1.2.3"], "not a loopback address"),
        (["--api-key", "has space"], "api_key must be"),
        (["--rate-limit", "0"], "rate_limit must be"),
        (["--rate-limit", "lots"], "expected a rate"),
        (["--rate-limit-scope", "reads"], "--rate-limit-scope must be all or create, not 'reads'"),
        (["--retry-after", "soon"], "--retry-after must be seconds, http-date or none"),
        (["--rate-limit-headers", "draft"], "--rate-limit-headers must be none, x-ratelimit, x-ratelimit-epoch or"),
        (["--error-status", "404"], "--error-status must be 500, 503 or mixed, not '404'"),
        (["--error-burst", "every=5s"], "lacks length="),
        (["--stall", "at=2s"], "lacks for="),
        (["--latency", "gaussian(1,2)"], "unknown distribution"),
        (["--reset-rate", "1.5"], "reset_rate must be"),
        (["--webhook-url", "ftp://x/y", "--webhook-secret", "whsec_x"], "webhook_url must be an http"),
        (["--webhook-url", "http://127.0.0.1:9/h"], "webhook_secret must be set when webhook_url is"),
        (["--webhook-max-attempts", "0"], "webhook_max_attempts must be"),
        (["--grade-scale", "10"], "grade_scale must be one of 100, 1"),
    ],
)
def test_bad_values_give_one_sentence_and_exit_2(cli: typer.Typer, args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    # typer may draw the message in a box: drop the frame before looking for the sentence
    assert fragment in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output


def test_busy_port_is_one_sentence_and_exit_3(cli: typer.Typer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["--port", str(port)])
    assert result.exit_code == 3
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_detection(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_a_bad_webhook_secret_is_refused_without_being_printed(cli: typer.Typer) -> None:
    result = CliRunner().invoke(
        cli, ["--webhook-url", "http://127.0.0.1:9/h"], env={WEBHOOK_SECRET_ENV: "sk_oops_1234"}
    )
    assert result.exit_code == 2
    assert "webhook_secret must be whsec_" in " ".join(result.output.replace("│", " ").split())
    assert "sk_oops_1234" not in result.output


def every_setting_changed() -> SimConfig:
    return SimConfig(
        slots=3,
        call_duration=Distribution.uniform(10.5, 20.25),
        time_scale=0.0005,
        failure_rate=0.125,
        estimated_cost_cents=20,
        charge_multiplier=3,
        seed=99,
        product="bolt",
        agents={"201": "spark", "203": "storm-base-with-ack"},
        agent_versions={"201": 2, "7": 3},
        list_order="oldest",
        list_offset="ignored",
        page_cap=7,
        batch_name="truncated",
        batch_name_length=5,
        clock_offset=-6.5,
        ids="string",
        slow_after_create=0.25,
        slow_after_create_delay=0.75,
        rate_limit=12.5,
        rate_limit_burst=4,
        rate_limit_scope="create",
        rate_limit_status=503,
        retry_after="http-date",
        rate_limit_headers="ietf",
        error_rate=0.05,
        error_status="503",
        error_burst=ErrorBurst(every=2.5, length=0.125, status="mixed", start=0.0),
        fault_after_create=0.75,
        latency=Distribution.exponential(0.015),
        reset_rate=0.01,
        stall=Stall(at=1.25, duration=0.5),
        webhook_url="http://127.0.0.1:9/hooks?x=1",
        webhook_secret="whsec_roundtrip",
        webhook_duplicate_rate=0.2,
        webhook_delay=Distribution.uniform(0, 0.3),
        webhook_reorder=True,
        webhook_drop_rate=0.1,
        webhook_max_attempts=4,
        webhook_retry_base=0.01,
        webhook_retry_cap=0.5,
        webhook_payload="flat",
        grade_score=Distribution.uniform(0.4, 0.9),
        grade_scale=1,
        grade_delay=0.075,
        grade_twice=True,
    )


def test_simulator_command_passes_every_setting_to_the_child(cli: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    config = every_setting_changed()
    for name in SimConfig.__dataclass_fields__:
        if name != "api_key":
            assert getattr(config, name) != getattr(SimConfig(), name), f"{name} is left at its default here"
    served: list[SimConfig] = []

    async def capture(config: SimConfig, host: str, port: int) -> None:
        served.append(config)

    monkeypatch.setattr(command, "_serve_until_stopped", capture)
    argv = simulator_command(config)
    assert "whsec_roundtrip" not in " ".join(argv)  # the secret goes by environment
    assert argv[1:3] == ["-m", "stressor.sim"]
    result = CliRunner().invoke(cli, argv[3:], env={WEBHOOK_SECRET_ENV: "whsec_roundtrip"})
    assert result.exit_code == 0, result.output
    assert served == [config]


def test_simulator_command_leaves_out_settings_at_their_defaults() -> None:
    argv = simulator_command(SimConfig())
    assert not any(
        arg.startswith(("--rate", "--error", "--webhook", "--grade", "--stall", "--latency", "--slow"))
        or arg.startswith(("--list", "--page", "--batch-name", "--clock", "--ids"))
        for arg in argv
    )
