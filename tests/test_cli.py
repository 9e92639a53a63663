"""The command line as a user meets it: exit codes, one-sentence errors, results kept. In this process, on
virtual time against the simulator in memory; Ctrl-C and kill -9 in real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from support.cli import stressor_here as stressor
from support.junit_schema import problems

QUICK = """
name = "quick"
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 3
stagger = "5ms"
[[stages]]
duration = "1s"
rate = "10/s"
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_against_the_embedded_simulator_prints_percentiles_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = stressor("run", str(write(tmp_path, QUICK)), "--out", str(out), "--sim-failure-rate", "0.3")
    assert done.returncode == 0, done.stderr
    assert "queue_to_completion" in done.stdout and "p99" in done.stdout
    results = orjson.loads(out.read_bytes())
    assert results["schema"] == "stressor.results/1"
    assert results["runs"]["planned"] == 30
    assert results["runs"]["completed"] + results["runs"]["failed"] == 30
    assert results["runs"]["failed"] > 0
    assert results["target"]["embedded_simulator"] is True
    assert results["measures"]["queue_to_completion"]["count"] == 30
    again = stressor("report", str(out))
    assert again.returncode == 0
    assert "queue_to_completion" in again.stdout


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (
            "[batch]\nruns = 21\n[[stages]]\nduration='1s'\nrate=1",
            "p.toml: batch.runs: must be an integer from 1 to 20",
        ),
        ("[[stages]]\nduration='1s'\nrate=1\ncolour='red'", "p.toml: stages[0].colour: is not a known key"),
        ("[[stages]]\nduration = ", "p.toml: is not valid TOML"),
        (
            # issue 15: passed `plan`, then crashed `run` when the create's JSON could not hold it
            "[target.request]\ntarget_id = 99999999999999999999\n[[stages]]\nduration='1s'\nrate=1",
            "p.toml: target.request.target_id: must be a whole number from 1 to 9223372036854775807",
        ),
    ],
)
def test_bad_profiles_end_in_one_sentence_and_exit_2(tmp_path: Path, profile: str, message: str) -> None:
    for command in ("run", "plan"):
        done = stressor(command, str(write(tmp_path, profile)))
        assert done.returncode == 2
        assert message in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["run", "plan", "capacity", "check"])
def test_a_yaml_profile_is_refused_by_every_command_in_one_sentence(tmp_path: Path, command: str) -> None:
    done = stressor(command, str(write(tmp_path, QUICK, "p.yaml")))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"stressor: {tmp_path / 'p.yaml'}: YAML is not supported: write the profile in TOML (.toml) or JSON (.json)"
    )


def test_missing_profile_file(tmp_path: Path) -> None:
    done = stressor("plan", str(tmp_path / "nope.toml"))
    assert done.returncode == 2
    assert "nope.toml: cannot read the profile" in done.stderr


def test_cost_guard_refuses_a_real_api_without_consent_or_budget(tmp_path: Path) -> None:
    env = {"THUNDERPHONE_API_KEY": "sk_live_secretsecret9876"}
    url = ["--base-url", "http://127.0.0.1:9"]
    done = stressor("run", str(write(tmp_path, QUICK)), *url, env=env)
    assert done.returncode == 2
    assert "cost.consent_to_charge: must be true" in done.stderr
    done = stressor("run", str(write(tmp_path, QUICK + "[cost]\nconsent_to_charge = true\n")), *url, env=env)
    assert done.returncode == 2
    assert "cost.budget_cents: is required" in done.stderr
    over = QUICK + "[cost]\nconsent_to_charge = true\nbudget_cents = 100\n"
    done = stressor("run", str(write(tmp_path, over)), *url, env=env)
    assert done.returncode == 2
    assert "estimated at 480 cents (30 runs), over cost.budget_cents = 100" in done.stderr
    done = stressor("run", str(write(tmp_path, QUICK)), *url, env={"THUNDERPHONE_API_KEY": ""})
    assert done.returncode == 2
    assert "no API key" in done.stderr


def test_unreachable_target_exits_3_without_traceback_and_without_the_key(tmp_path: Path) -> None:
    profile = write(tmp_path, QUICK + "[cost]\nconsent_to_charge = true\nbudget_cents = 1000\n")
    done = stressor(
        "run",
        str(profile),
        "--base-url",
        "http://127.0.0.1:9",
        env={"THUNDERPHONE_API_KEY": "sk_live_secretsecret9876"},
        real_time=True,
    )
    assert done.returncode == 3
    assert "cannot reach http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
    assert "secretsecret" not in done.stderr + done.stdout


def test_plan_sends_nothing_and_prints_estimates(tmp_path: Path) -> None:
    done = stressor("plan", str(write(tmp_path, QUICK)))
    assert done.returncode == 0
    assert "total" in done.stdout and "30" in done.stdout
    as_json = orjson.loads(stressor("plan", str(write(tmp_path, QUICK)), "--json").stdout)
    assert as_json["total"]["runs"] == 30
    assert as_json["total"]["cost_cents"] == 480


@pytest.mark.e2e
def test_ctrl_c_writes_what_was_gathered_and_exits_130(tmp_path: Path) -> None:
    long_profile = QUICK.replace('duration = "1s"', 'duration = "60s"')
    out = tmp_path / "r.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "run", str(write(tmp_path, long_profile)), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "r.runs.jsonl"
    deadline = time.monotonic() + 60
    while not log.exists() or b'"type":"run"' not in log.read_bytes():  # a run has ended: there is something to keep
        assert time.monotonic() < deadline, "no run ended"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "INTERRUPTED" in stdout
    assert "Traceback" not in stderr
    results = orjson.loads(out.read_bytes())
    assert results["interrupted"] is True
    assert results["runs"]["completed"] > 0


def test_every_command_explains_its_flags() -> None:
    for command in ("run", "plan", "sim", "report"):
        done = stressor(command, "--help")
        assert done.returncode == 0
        assert "Usage" in done.stdout


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.e2e
def test_kill_9_loses_at_most_the_last_second_and_the_log_rebuilds_the_summary(tmp_path: Path) -> None:
    profile = write(tmp_path, QUICK.replace('duration = "1s"', 'duration = "60s"'))
    out = tmp_path / "r.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "run", str(profile), "--out", str(out), "--progress", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = tmp_path / "r.runs.jsonl"
    deadline = time.monotonic() + 60
    while not log.exists() or log.read_bytes().count(b'"type":"run"') < 20:  # no fixed sleep: a busy machine
        assert time.monotonic() < deadline, "the runs log never reached 20 runs"
        time.sleep(0.1)
    simulators = _children(process.pid)
    process.kill()
    process.wait(timeout=10)
    lines = log.read_text().splitlines()
    runs = [orjson.loads(line) for line in lines[1:] if line.strip().startswith("{")]
    # The bound on what a kill loses is checked against the server's truth in test_e2e_engine.py; here: the
    # log reads back and the embedded simulator dies with its stressor.
    assert len(runs) >= 20
    rebuilt = stressor("report", str(log))  # read back in this process
    assert rebuilt.returncode == 0
    assert "stressor was killed" in rebuilt.stdout
    assert "queue_to_completion" in rebuilt.stdout
    # The embedded simulator does not outlive the stressor that started it.
    deadline = time.monotonic() + 5
    while simulators and time.monotonic() < deadline:
        simulators = [pid for pid in simulators if Path(f"/proc/{pid}").exists()]
        time.sleep(0.2)
    assert not simulators


def test_thresholds_gate_the_exit_code_and_abort_stops_a_run_early(tmp_path: Path) -> None:
    profile = write(tmp_path, QUICK)
    out = tmp_path / "r.json"
    passing = stressor(
        "run", str(profile), "--out", str(out), "-t", "failure_rate < 50%", "--junit", str(tmp_path / "j.xml")
    )
    assert passing.returncode == 0, passing.stderr
    assert "thresholds: 1 of 1 passed" in passing.stdout
    assert "<testsuite" in (tmp_path / "j.xml").read_text()
    assert problems((tmp_path / "j.xml").read_text()) == []  # the strict xUnit schema
    failing = stressor("run", str(profile), "--out", str(out), "-t", "queue_to_completion.p99 < 1ms")
    assert failing.returncode == 5
    assert "FAIL" in failing.stdout and "1 of 1 thresholds failed" in failing.stderr
    long_run = write(tmp_path, QUICK.replace('duration = "1s"', 'duration = "30s"'), "long.toml")
    aborted = stressor(
        "run", str(long_run), "--out", str(out), "--sim-failure-rate", "0.6", "-t", "failure_rate < 5% abort"
    )
    assert aborted.returncode == 5
    assert "STOPPED EARLY: threshold breached: failure_rate < 5% abort" in aborted.stdout
    assert orjson.loads(out.read_bytes())["elapsed_s"] < 15
    bad = stressor("run", str(profile), "-t", "latency < 5s")
    assert bad.returncode == 2
    assert "unknown measure 'latency'" in bad.stderr


def test_capacity_search_finds_the_knee_near_the_simulators_slot_count(tmp_path: Path) -> None:
    # 6 call slots, calls of 400 ms: up to 6 in flight nothing queues (p95 ~ 430 ms); at 8, a third of the
    # time is spent queued and the p95 passes 500 ms; narrowed, 7 breaks too: the knee is the slot count.
    profile = write(
        tmp_path,
        'grace = "5s"\n[target]\npoll_interval = "20ms"\n[batch]\nruns = 2\n'
        '[[stages]]\nduration = "1s"\nin_flight = 1\n',
    )
    out, html = tmp_path / "capacity.json", tmp_path / "capacity.html"
    done = stressor(
        "capacity", str(profile), "--sim-slots", "6", "--sim-call-duration", "fixed(400)", "--start", "2",
        "--step", "2", "--max", "12", "--step-duration", "3s", "--slo", "queue_to_completion.p95 < 500ms",
        "--out", str(out), "--html", str(html),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    knee = orjson.loads(out.read_bytes())["knee"]
    assert knee == {"last_held": 6, "first_broke": 7}
    assert "knee: held at 6, broke at 7 runs in flight" in done.stdout
    page = html.read_text()
    assert page.count("<svg") >= 2
    # The page states the knee and the SLO in words, not only as charts.
    assert 'id="knee"' in page and "held at 6, broke at 7 runs in flight" in page
    assert 'id="slo"' in page and "queue_to_completion.p95 &lt; 500ms" in page


def test_plan_json_states_its_assumptions_and_every_stage(tmp_path: Path) -> None:
    text = QUICK + '[[stages]]\nduration = "2s"\npause = true\n[[stages]]\nduration = "1s"\nin_flight = 4\n'
    done = stressor("plan", str(write(tmp_path, text)), "--json")
    document = orjson.loads(done.stdout)
    assert document["assumptions"]["poll_interval_s"] == 0.02
    assert document["assumptions"]["poll_interval_max_s"] == 0.2
    assert document["assumptions"]["run_cost_cents"] == 16
    assert [s["model"] for s in document["stages"]] == ["open", "pause", "closed"]
    assert [s["batches"] for s in document["stages"]][:2] == [10, 0]
    assert "poll interval 20ms growing to 200ms" in stressor("plan", str(write(tmp_path, text))).stdout


def test_a_fractional_stagger_against_a_real_api_is_warned_about(tmp_path: Path) -> None:
    # port 9 (discard) is closed on loopback: the run ends at the reachability check, after the warning
    text = QUICK + "[cost]\nconsent_to_charge = true\nbudget_cents = 100000\n"
    env = {"THUNDERPHONE_API_KEY": "sk_test_fractional0000"}
    done = stressor(
        "run",
        str(write(tmp_path, text)),
        "--base-url",
        "http://127.0.0.1:9",
        "--out",
        str(tmp_path / "r.json"),
        env=env,
        real_time=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "stagger 0.005s is not a whole number of seconds" in done.stderr
    whole = text.replace('stagger = "5ms"', "stagger = 2")
    done = stressor(
        "run",
        str(write(tmp_path, whole)),
        "--base-url",
        "http://127.0.0.1:9",
        "--out",
        str(tmp_path / "r.json"),
        env=env,
        real_time=True,
    )
    assert "not a whole number" not in done.stderr


def test_the_pre_flight_check_is_counted_in_the_requests_but_not_per_ended_run(tmp_path: Path) -> None:
    # Issue 15: the healthz and key-check requests reached the server but were missing from `requests`.
    out = tmp_path / "r.json"
    done = stressor("run", str(write(tmp_path, QUICK)), "--out", str(out))
    assert done.returncode == 0, done.stderr
    results = orjson.loads(out.read_bytes())
    requests = results["requests"]
    # healthz, the key, and the reads of the lists' first pages (an empty list: nothing more to probe)
    assert requests["check ok"] == 4
    total = sum(requests.values())
    assert f"HTTP requests: {total} " in done.stdout
    ended = results["runs"]["completed"] + results["runs"]["failed"]
    assert results["load"]["requests_per_ended_run"] == pytest.approx((total - 4) / ended)
    # The interval series counts from the start of the run: the check came before it.
    sent = sum(i["requests_per_s"] * (i["end"] - i["start"]) for i in results["intervals"])
    assert sent == pytest.approx(total - 4, abs=0.5)


def test_a_fatal_answer_on_the_first_batch_reports_the_plans_offered_load(tmp_path: Path) -> None:
    # Issue 15: the simulator refuses the first create (400, target_number not E.164) an instant into the run;
    # its 5 runs were due and the plan offers 10 runs/s (a batch of 5 every 0.5 s), not 5 runs per millisecond.
    profile = QUICK.replace("[batch]\nruns = 3", '[target.request]\ntarget_number = "12"\n[batch]\nruns = 5')
    profile = profile.replace('duration = "1s"\nrate = "10/s"', 'duration = "20s"\nrate = "2/s"')
    out = tmp_path / "r.json"
    done = stressor("run", str(write(tmp_path, profile)), "--out", str(out))
    assert done.returncode == 3, done.stderr  # README, exit codes: a fatal answer stopped the run
    results = orjson.loads(out.read_bytes())
    assert results["runs"]["errored"] == 5 and results["runs"]["not_started"] == {"fatal": 195}
    assert results["load"]["offered_runs_per_s"] == pytest.approx(10.0)
    assert "offered 10 runs/s" in done.stdout
