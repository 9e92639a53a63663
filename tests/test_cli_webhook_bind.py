"""--webhook-listen on a non-loopback address: refused in one sentence (exit 2) unless --webhook-allow-remote.
The receiver bound to every address is a real process; the rest run in this process, on virtual time."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sessions import run_stressor
from support.cli import stressor_here as stressor

PROFILE = """
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
[[stages]]
duration = "1s"
rate = "3/s"
"""


def test_a_non_loopback_listen_address_is_refused_without_the_opt_in(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE)
    out = tmp_path / "r.json"
    done = stressor("run", str(profile), "--webhooks", "--webhook-listen", "0.0.0.0:0", "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "stressor: the webhook receiver would listen on 0.0.0.0:0, which is not loopback: pass "
        "--webhook-allow-remote to open that port to the network, or listen on 127.0.0.1"
    ]
    assert not out.exists()


@pytest.mark.e2e
def test_with_the_opt_in_the_receiver_binds_every_address_and_webhooks_end_the_runs(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE)
    out = tmp_path / "r.json"
    done = run_stressor(
        "run", str(profile), "--webhooks", "--webhook-listen", "0.0.0.0:0", "--webhook-allow-remote",
        "--out", str(out), "--progress", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = orjson.loads(out.read_bytes())
    assert results["runs"]["completed"] + results["runs"]["failed"] == results["runs"]["planned"] > 0
    assert results["webhooks"]["accepted"] > 0


def test_loopback_needs_no_opt_in_and_webhooks_off_ignore_the_listen_address(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE)
    for args in (["--webhooks", "--webhook-listen", "127.0.0.1:0"], ["--webhook-listen", "0.0.0.0:0"]):
        done = stressor("run", str(profile), *args, "--out", str(tmp_path / "r.json"), "--progress", "0")
        assert done.returncode == 0, (args, done.stderr)
