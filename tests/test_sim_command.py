"""The ``sim`` command's option handling: bad values end in one sentence and exit code 2."""

from __future__ import annotations

import socket

import pytest
import typer
from typer.testing import CliRunner

from stressor.sim.command import is_loopback, sim


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("sim")(sim)
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
