"""Output paths and target URLs that cannot work end in one sentence and exit 2, before anything runs; a
write that fails at the end still prints the summary and points to the runs log. In this process, on virtual
time against the simulator in memory."""

from __future__ import annotations

from pathlib import Path

import anyio
import orjson
import pytest
from support.cli import Done
from support.cli import stressor_here as stressor
from support.memory import MemorySurroundings
from support.virtual import START_S

QUICK = """
name = "quick"
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
stagger = "5ms"
[[stages]]
duration = "1s"
rate = "5/s"
"""


def _one_sentence(done: Done) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "where", "message"),
    [
        ("--out", "directory", "is a directory"),
        ("--out", "under a file", "is a file, not a directory"),
        ("--out", "/proc", "cannot be written"),
        ("--runs-log", "directory", "is a directory"),
        ("--runs-log", "under a file", "is a file, not a directory"),
        ("--junit", "directory", "is a directory"),
        ("--html", "under a file", "is a file, not a directory"),
        ("--hlog", "/proc", "cannot be written"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, flag: str, where: str, message: str
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    path = {"directory": tmp_path, "under a file": a_file / "x.json", "/proc": Path("/proc/stressor-x.json")}[where]
    out = ["--out", str(tmp_path / "r.json")] if flag != "--out" else []
    done = stressor("run", str(profile), flag, str(path), *out, "--progress", "0")
    line = _one_sentence(done)
    assert line.startswith(f"stressor: {flag} {path}:") and message in line
    assert done.loop.time() - START_S < 1  # refused up front, not after a run of 1 s + grace
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("*.runs.jsonl"))
    assert "stressor run" not in done.stdout  # no summary: nothing ran


def test_results_that_cannot_be_written_at_the_end_keep_the_summary_and_point_to_the_runs_log(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK)
    out = tmp_path / "r.json"
    log = tmp_path / "r.runs.jsonl"

    async def take_the_results_path(_: MemorySurroundings) -> None:
        # The runs log is opened after the paths were checked: from then on, the results path turns into a
        # directory, as if it were taken while the run went.
        while not log.exists():
            await anyio.sleep(0.02)
        out.mkdir()

    done = stressor("run", str(profile), "--out", str(out), "--progress", "0", beside=take_the_results_path)
    stdout, stderr = done.stdout, done.stderr
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "queue_to_completion" in stdout  # the summary is there
    assert f"could not write the results to {out}" in stderr and f"the runs log {log} has every run" in stderr
    assert not list(tmp_path.glob(".*.tmp"))
    rebuilt = stressor("report", str(log))
    assert rebuilt.returncode == 0 and "queue_to_completion" in rebuilt.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("notaurl", "must be an http:// or https:// URL"),
        ("ftp://127.0.0.1/", "must be an http:// or https:// URL"),
        ("http://127.0.0.1:99999", "has a port that is not a number from 1 to 65535"),
    ],
)
@pytest.mark.parametrize("command", ["run", "capacity"])
def test_a_base_url_that_is_not_one_is_a_usage_error(tmp_path: Path, url: str, message: str, command: str) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK)
    env = {"THUNDERPHONE_API_KEY": "sk_test_x"}
    for done in (
        stressor(command, str(profile), "--base-url", url, env=env),
        stressor(command, str(profile), env={**env, "STRESSOR_BASE_URL": url}),
    ):
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert message in " ".join(done.stderr.replace("│", " ").split())


def test_stressor_base_url_from_the_environment_is_the_target(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK + "[cost]\nconsent_to_charge = true\nbudget_cents = 1000\n")
    done = stressor(
        "run",
        str(profile),
        "--out",
        str(tmp_path / "r.json"),
        env={"STRESSOR_BASE_URL": "http://127.0.0.1:9", "THUNDERPHONE_API_KEY": "sk_live_secretsecret9876"},
        real_time=True,
    )
    assert done.returncode == 3, done.stderr
    assert "cannot reach http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr and "secretsecret" not in done.stderr + done.stdout
    # Without the variable the same command runs the embedded simulator.
    embedded = stressor("run", str(profile), "--out", str(tmp_path / "e.json"), "--progress", "0")
    assert embedded.returncode == 0, embedded.stderr
    assert orjson.loads((tmp_path / "e.json").read_bytes())["target"]["embedded_simulator"] is True
