"""End to end: call logs and transcripts fetched as runs end, against the simulator in memory on virtual time
(the command in process, or a session): each ended run's call once, counted, in the calls log and joined into
the run records; transcripts only when asked; grades that come late caught by the delay; bad answers counted and
not fatal. And one real process killed with SIGKILL: its calls log loses no more than its runs log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from sessions import profile_of
from support.cli import stressor_here
from support.memory import MemorySurroundings
from support.virtual import clock, run

from stressor.metrics import Outcome
from stressor.session import Session, SessionResult, Where
from stressor.sim.config import SimConfig

CALL_LOG = "/v1/calls/{call_id}"
TRANSCRIPT = "/v1/calls/{call_id}/transcript"
# 10 s of 2 batches/s of 3 runs: 60 runs of ~45 ms, some failed
PROFILE = """
grace = "5s"
[target]
poll_interval = "50ms"
[batch]
runs = 3
[[stages]]
duration = "10s"
rate = "2/s"
[simulator]
seed = 7
failure_rate = 0.2
"""


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def ran(tmp_path: Path, *flags: str, profile: str = PROFILE) -> tuple[dict[str, Any], Any]:
    (tmp_path / "p.toml").write_text(profile)
    out = tmp_path / "r.json"
    done = stressor_here("run", str(tmp_path / "p.toml"), "--out", str(out), "--progress", "0", *flags)
    assert done.returncode == 0, done.stderr
    return orjson.loads(out.read_bytes()), done


def test_each_ended_runs_call_is_fetched_once_as_it_ends_counted_logged_and_joined(tmp_path: Path) -> None:
    results, done = ran(tmp_path, "--calls")
    (sim,) = done.surroundings.simulators
    records = results["run_records"]
    ended = [r for r in records if r["outcome"] in ("completed", "failed")]
    assert len(ended) == 60 and Counter(r["outcome"] for r in ended)["failed"] > 0
    calls = {r["call_id"]: r for r in ended}
    assert len(calls) == 60 and None not in calls
    # once each, a GET, counted in the results as every request is; no transcript asked for
    assert sim.stats.count("GET", CALL_LOG) == 60 and sim.stats.count(route=TRANSCRIPT) == 0
    fetches = {k: n for k, n in results["requests"].items() if k.startswith("call_log ")}
    assert sum(fetches.values()) == 60
    assert results["calls"] == {
        "log": str(tmp_path / "r.calls.jsonl"),
        "fetched": 60,
        "failed": {},
        "transcripts": 0,
        "transcripts_failed": {},
    }
    assert f"calls log: {tmp_path / 'r.calls.jsonl'} (60 call logs)" in done.stdout
    # the calls log: a line per call, with its run and the call log's fields
    lines = lines_of(tmp_path / "r.calls.jsonl")
    assert sorted(line["call_id"] for line in lines) == sorted(calls)
    for line in lines:
        run_record, real = calls[line["call_id"]], sim.model.run_for_call(int(line["call_id"]))
        assert real is not None and line["run_id"] == run_record["run_id"] == str(real.id)
        assert (line["scenario"], line["variant"], line["outcome"]) == ("prompt-1", "default", run_record["outcome"])
        assert line["duration_seconds"] == real.duration_seconds and line["product"] == real.product
        assert line["error"] is None and line["transcript"] is None
        # fetched as its run ended (no delay): during the run, not at its end
        fetched_s = line["fetched_at"] - results["started_at"]
        assert run_record["detected_s"] <= fetched_s < run_record["detected_s"] + 0.1
        # joined into the run's record, under the names the tier comparison reads
        assert run_record["call_duration_s"] == real.duration_seconds and run_record["product"] == real.product
        assert run_record.get("billing_total_cents") == line["billing_total_cents"]
    assert min(line["fetched_at"] for line in lines) < results["started_at"] + 1.0


def test_transcripts_only_when_asked_each_with_its_call(tmp_path: Path) -> None:
    results, done = ran(tmp_path, "--transcripts", "--calls-log", str(tmp_path / "said" / "calls.jsonl"))
    (sim,) = done.surroundings.simulators
    assert sim.stats.count("GET", CALL_LOG) == sim.stats.count("GET", TRANSCRIPT) == 60
    assert results["calls"]["transcripts"] == 60 and results["calls"]["log"] == str(tmp_path / "said" / "calls.jsonl")
    assert sum(n for k, n in results["requests"].items() if k.startswith("transcript ")) == 60
    for line in lines_of(tmp_path / "said" / "calls.jsonl"):
        turns = line["transcript"]
        assert line["transcript_error"] is None and turns is not None  # a failed call may have said nothing
        assert bool(turns) or line["outcome"] == "failed"
        assert {t["role"] for t in turns} <= {"assistant", "user"} and all(t["content"] for t in turns)
    assert not (tmp_path / "r.calls.jsonl").exists()  # --calls-log put it elsewhere
    assert f"calls log: {tmp_path / 'said' / 'calls.jsonl'} (60 call logs; 60 transcripts)" in done.stdout


def test_without_calls_nothing_is_fetched_and_the_results_have_no_calls_section(tmp_path: Path) -> None:
    results, done = ran(tmp_path)
    assert done.surroundings.simulators[0].stats.count(route=CALL_LOG) == 0
    assert "calls" not in results and not (tmp_path / "r.calls.jsonl").exists()
    assert "call_duration_s" not in results["run_records"][0]


# ------------------------------------------------------------------------------------------ sessions


BASE = {
    "grace": "5s",
    "target": {"poll_interval": "50ms"},
    "batch": {"runs": 2},
    "stages": [{"duration": "2s", "rate": "5/s"}],
}


class Answering(httpx.AsyncBaseTransport):
    """The simulator, except where ``answer`` gives its own answer to a request (None: the simulator's)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, answer: Callable[[httpx.Request, Callable[[], Any]], Any]
    ) -> None:
        self._inner = inner
        self._answer = answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        own = self._answer(request, lambda: None)
        if own is not None:
            return own
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        changed = self._answer(request, lambda: orjson.loads(body))
        if changed is None:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        return changed


class Surroundings(MemorySurroundings):
    def __init__(self, answer: Callable[[httpx.Request, Callable[[], Any]], Any]) -> None:
        super().__init__(clock())
        self._answer = answer

    def transport(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        inner = super().transport(base_url)
        assert inner is not None
        return Answering(inner, self._answer)


def session_of(
    data: dict[str, Any], simulator: dict[str, Any], answer: Callable[[httpx.Request, Callable[[], Any]], Any]
) -> SessionResult:
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", "seed": 3, **simulator})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config)

    async def session() -> SessionResult:
        return await Session(
            profile_of(data), where, enforce_budget=False, keep_truth=True, surroundings=Surroundings(answer)
        ).run()

    return run(session)


def as_is(request: httpx.Request, body: Callable[[], Any]) -> Any:
    return None


def test_a_404_a_5xx_and_garbage_are_counted_by_class_and_the_run_goes_on() -> None:
    def answer(request: httpx.Request, body: Callable[[], Any]) -> httpx.Response | None:
        path = request.url.path
        if not path.startswith("/v1/calls/") or path.endswith("/grade"):
            return None
        kind = int(path.rsplit("/", 1)[1]) % 4
        if kind == 0:
            return httpx.Response(404, json={"detail": "Not found."})
        if kind == 1:
            return httpx.Response(502, text="bad gateway")
        if kind == 2:
            return httpx.Response(200, content=b"\x00garbage")
        return None

    outcome = session_of({**BASE, "calls": {"fetch": True}, "limits": {"backoff_cap": "10ms"}}, {}, answer)
    result, calls = outcome.engine, outcome.calls
    ended = [r for r in result.records if r.outcome in (Outcome.COMPLETED, Outcome.FAILED)]
    assert len(ended) == 20 and result.stop_reason is None  # not fatal: the run went on to its end
    expected = Counter({0: "http_404", 1: "http_502", 2: "bad_response"}.get(int(r.call_id or 0) % 4) for r in ended)
    fetched = expected.pop(None, 0)
    assert calls is not None and calls.fetched == fetched > 0
    assert calls.failed == dict(expected) and all(expected.values())
    requests = result.metrics.requests
    assert requests["call_log http_404"] == expected["http_404"]  # a 404 is not asked again
    # a GET: tried again, within the retry budget (5 retries at most)
    assert expected["http_502"] < requests["call_log http_502"] <= expected["http_502"] * 6
    assert requests["call_log bad_response"] == expected["bad_response"]
    for record in ended:
        assert (record.call_duration_s is not None) == (int(record.call_id or 0) % 4 == 3)


def test_a_call_logs_grade_is_the_runs_grade_only_when_nothing_else_gave_one() -> None:
    def low_grades(request: httpx.Request, body: Callable[[], Any]) -> httpx.Response | None:
        if request.url.path.count("/") != 3 or not request.url.path.startswith("/v1/calls/"):
            return None  # not a call log
        got = body()
        if got is None:
            return None
        return httpx.Response(200, json={**got, "grade_score": 11, "grade_status": "completed"})

    alone = session_of({**BASE, "calls": {"fetch": True}}, {"failure_rate": 0}, low_grades)
    completed = [r for r in alone.engine.records if r.outcome is Outcome.COMPLETED]
    assert len(completed) == 20 and {r.grade for r in completed} == {0.11}  # normalised as grades are
    assert alone.engine.metrics.grades.to_json()["count"] == 20
    fetched = session_of({**BASE, "calls": {"fetch": True}, "grades": {"fetch": True}}, {"failure_rate": 0}, low_grades)
    truth = {t.id: t.grade_score for t in fetched.truth or ()}
    for record in fetched.engine.records:
        assert record.grade == pytest.approx(truth[record.run_id]) and record.grade != 0.11  # the grade's own


def test_grades_written_after_the_call_are_in_its_log_when_the_delay_covers_them() -> None:
    late = {"grade_delay": 1.0, "failure_rate": 0}
    early = session_of({**BASE, "calls": {"fetch": True}}, late, as_is)
    assert early.calls is not None and early.calls.fetched == 20
    assert all(r.grade is None for r in early.engine.records)  # fetched at once: not graded yet
    assert early.engine.metrics.grades.ungraded == 20
    waited = session_of({**BASE, "calls": {"fetch": True, "delay": "1.5s"}}, late, as_is)
    truth = {t.id: t.grade_score for t in waited.truth or ()}
    assert all(r.grade == pytest.approx(truth[r.run_id]) for r in waited.engine.records)


@pytest.mark.parametrize(
    ("duration", "ctrl_c_s", "fetched"),
    [("10s", 3.0, "some"), ("2s", 4.0, "none")],
    ids=["during-the-run", "while-draining"],
)
def test_ctrl_c_stops_the_fetches_at_once_and_counts_the_calls_left(
    duration: str, ctrl_c_s: float, fetched: str
) -> None:
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", "seed": 3, "failure_rate": 0})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config)
    calls = {"fetch": True, "delay": "1s" if fetched == "some" else "5s", "wait": "30s"}
    data = {**BASE, "stages": [{"duration": duration, "rate": "5/s"}], "calls": calls}

    async def interrupted() -> tuple[SessionResult, float]:
        session = Session(profile_of(data), where, enforce_budget=False, surroundings=Surroundings(as_is))
        async with anyio.create_task_group() as tasks:

            async def ctrl_c() -> None:
                await anyio.sleep(ctrl_c_s)
                session.interrupt()

            tasks.start_soon(ctrl_c)
            began = anyio.current_time()
            outcome = await session.run()
        return outcome, anyio.current_time() - began

    outcome, took_s = run(interrupted)
    assert took_s < ctrl_c_s + 0.5  # no wait for the calls still due
    ended = [r for r in outcome.engine.records if r.outcome in (Outcome.COMPLETED, Outcome.FAILED)]
    report = outcome.calls
    assert report is not None and set(report.failed) == {"not_fetched"}
    assert report.fetched + report.failed["not_fetched"] == len(ended) > 0
    # during the run: those due (a second after their end) before Ctrl-C; while draining, none was due yet
    assert 0 < report.fetched < len(ended) if fetched == "some" else report.fetched == 0


# ------------------------------------------------------------------------------------------ a real kill


@pytest.mark.e2e
def test_a_killed_stressor_loses_no_more_calls_than_runs(tmp_path: Path) -> None:
    profile = tmp_path / "long.toml"
    profile.write_text(
        'grace = "5s"\n[target]\npoll_interval = "50ms"\n[batch]\nruns = 2\n'
        '[[stages]]\nduration = "60s"\nrate = "20/s"\n'
    )
    out = tmp_path / "results.json"
    runs, calls = tmp_path / "results.runs.jsonl", tmp_path / "results.calls.jsonl"
    command = [sys.executable, "-m", "stressor", "run", str(profile), "--out", str(out), "--progress", "0"]
    env = {k: v for k, v in os.environ.items() if k not in ("STRESSOR_BASE_URL", "THUNDERPHONE_API_KEY")}
    process = subprocess.Popen([*command, "--transcripts"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (calls.exists() and len(calls.read_bytes().splitlines()) >= 80):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the calls log never filled"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL and not out.exists()
    run_lines = [orjson.loads(line) for line in runs.read_bytes().splitlines() if line.endswith(b"}")]
    ended = {r["call_id"]: r["detected_s"] for r in run_lines if r.get("type") == "run" and r["call_id"]}
    raw = calls.read_bytes().splitlines(keepends=True)
    whole = [orjson.loads(line) for line in raw if line.endswith(b"\n")]
    assert len(raw) - len(whole) <= 1  # at most the last line, cut by the kill
    assert all(line["transcript"] and line["error"] is None for line in whole)
    # Every run the runs log holds, save those that ended within the last flush or two (their calls were
    # being fetched, or written after the calls log's last flush), has its call in the calls log.
    last = max(ended.values())
    missing = [call for call, seen in ended.items() if seen < last - 1.5 and call not in {w["call_id"] for w in whole}]
    assert not missing, f"{len(missing)} calls of runs long ended are not in the calls log"
