"""End to end: runs ended by signed webhooks from the simulator, lost and repeated deliveries, grades,
and coordinated omission shown against the simulator's ground truth (in memory, on virtual time); slow and
stray deliveries to a real socket, through the command line."""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from sessions import profile_of, run_session, run_stressor
from support.memory import MemorySurroundings
from support.virtual import clock, run

from stressor.metrics import PERCENTILES, LatencyRecorder, Measure, Outcome
from stressor.session import Session, SessionResult, Where
from stressor.sim.config import SimConfig
from stressor.sim.webhooks import request_target, signature_headers


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


CLOCK_JITTER_S = 0.002
WEBHOOK_GOAL_S = 0.005
WEBHOOK_SLACK_S = 0.015
WEBHOOK_TAIL_SLACK_S = 0.05

BASE = {
    "grace": "5s",
    "target": {"poll_interval": "50ms"},
    "batch": {"runs": 4, "stagger": "20ms"},
    "stages": [{"duration": "2s", "rate": "10/s"}],
}


def assert_every_run_once_as_the_server_says(outcome: SessionResult, planned: int) -> None:
    result, truth = outcome.engine, {run.id: run for run in outcome.truth or ()}
    ids = [record.run_id for record in result.records]
    assert len(ids) == len(set(ids)) == planned
    assert set(ids) == set(truth)
    assert result.metrics.outcomes[Outcome.OPEN] == 0
    for record in result.records:
        assert str(record.outcome) == truth[record.run_id].status


def test_with_polling_off_webhooks_alone_end_every_run_and_time_it_closely() -> None:
    profile = profile_of({**BASE, "webhooks": {"enabled": True, "fallback": "off"}})
    outcome = run_session(profile, {"seed": 5, "failure_rate": 0.2})
    assert_every_run_once_as_the_server_says(outcome, 80)
    result = outcome.engine
    assert not any(key.startswith(("poll_batch", "list_runs")) for key in result.metrics.requests)
    assert outcome.webhooks is not None and outcome.webhooks.bad_signature_total == 0
    # The client saw each end when its webhook arrived: after the true end, and within a few ms of the
    # simulator's own record of the delivery (its 2xx came back after our receiver stamped the event).
    truth = {run.id: run for run in outcome.truth or ()}
    anchor = result.metrics.anchor
    lags, errors, true_q2c = [], [], LatencyRecorder()
    for record in result.records:
        real = truth[record.run_id]
        assert record.detected_ns is not None and real.completed is not None and real.webhook_delivered
        seen = anchor.to_wall_s(record.detected_ns)
        assert seen >= real.completed - CLOCK_JITTER_S
        errors.append(seen - real.completed)
        lags.append(real.webhook_delivered - seen)
        true_q2c.record_s(real.completed - anchor.to_wall_s(record.due_ns))
    # The simulator's record of each delivery comes after our receiver stamped it (its 2xx came back after):
    # a client that saw a fraction of the ends late fails the p10.
    assert percentile(lags, 10) >= -CLOCK_JITTER_S
    # The goal: every queue-to-completion percentile within 5 ms of the truth. The slack covers the sender's
    # and the receiver's scheduling on a busy machine; the tail (a handful of runs) gets more. Seeing 40 % of
    # the ends 40 ms late fails the p90 and per-run bounds.
    assert percentile(errors, 50) <= WEBHOOK_GOAL_S + WEBHOOK_SLACK_S
    assert percentile(errors, 90) <= WEBHOOK_GOAL_S + WEBHOOK_SLACK_S
    ours, theirs = result.metrics.recorders[Measure.QUEUE_TO_COMPLETION].summary(), true_q2c.summary()
    for p in PERCENTILES:
        slack = WEBHOOK_SLACK_S if p < 99 else WEBHOOK_TAIL_SLACK_S
        assert -CLOCK_JITTER_S <= ours.percentiles_s[p] - theirs.percentiles_s[p] <= WEBHOOK_GOAL_S + slack, p
    assert -CLOCK_JITTER_S <= ours.max_s - theirs.max_s <= WEBHOOK_GOAL_S + WEBHOOK_TAIL_SLACK_S


def test_lost_repeated_and_reordered_webhooks_still_end_every_run_once() -> None:
    profile = profile_of({**BASE, "webhooks": {"enabled": True, "fallback": "300ms"}})
    simulator = {"seed": 8, "webhook_drop_rate": 0.3, "webhook_duplicate_rate": 0.5, "webhook_reorder": True}
    outcome = run_session(profile, simulator)
    assert_every_run_once_as_the_server_says(outcome, 80)
    assert outcome.late_polls > 0  # the lost ones were found by polling
    assert outcome.webhooks is not None and outcome.webhooks.duplicates + outcome.webhooks.replayed > 0


def test_grades_are_normalised_and_quality_failures_counted_apart() -> None:
    profile = profile_of(
        {**BASE, "webhooks": {"enabled": True, "fallback": "off"}, "grades": {"threshold": 0.8, "wait": "0.5s"}}
    )
    simulator = {
        "seed": 2,
        "grade_scale": 100,
        "grade_twice": True,
        "grade_delay": 0.05,
        "grade_score": "uniform(0.5,1.0)",
    }
    outcome = run_session(profile, simulator)
    result = outcome.engine
    truth = {run.id: run for run in outcome.truth or ()}
    grades = result.metrics.grades
    assert len(grades.scores) == 80 and grades.ungraded == 0
    for record in result.records:
        # the final (full) grade, on 0..1, whatever scale the server wrote
        assert record.grade == pytest.approx(truth[record.run_id].grade_score, abs=1e-9)
    assert grades.below_threshold == sum(1 for r in result.records if r.grade is not None and r.grade < 0.8)
    assert 0 < grades.below_threshold < 80
    assert result.metrics.failure_rate == 0  # quality failures are not call failures


# How far above the truth the stall's percentiles and max may read: the detection delay (one 50 ms poll
# interval, or a webhook's trip) plus the time the client and the simulator's sender take to work through the
# 40 requests the stall releases at once. Measured at 1f5ef76 on a shared 2-core machine, six runs per mode:
# p99 +81..+184 ms polling, +15..+255 ms webhooks (the sender's burst). Half the stall's 2 s, as before,
# would also pass a client that saw the released runs half a second late.
STALL_ALLOWANCE_S = 0.3


@pytest.mark.parametrize("limited", [False, True], ids=["sent-on-time", "sent-late"])
@pytest.mark.parametrize("webhooks", [False, True], ids=["polling", "webhooks"])
def test_a_server_stall_shows_in_the_p99_as_in_the_ground_truth(webhooks: bool, limited: bool) -> None:
    # Open model at 20 runs/s for 6 s; the simulator holds every request for 2 s from 3 s after it started.
    # Runs due in the stall cannot even be created until it ends: a closed-loop tester would hide that
    # (coordinated omission); measured from the due time, it must show. In the "sent-late" variant the client
    # may have only 8 runs in flight, so during the stall it cannot even send the runs that fall due: timing
    # from the send instead of the due time would then hide the stall as well.
    data: dict[str, object] = {
        "grace": "5s",
        "target": {"poll_interval": "50ms"},
        "batch": {"runs": 1},
        "stages": [{"duration": "6s", "rate": "20/s"}],
        "webhooks": {"enabled": webhooks, "fallback": "off"},
    }
    if limited:
        data["limits"] = {"max_runs_in_flight": 8, "adaptive": False}
    outcome = run_session(profile_of(data), {"seed": 1, "stall": "at=3s,for=2s", "slots": 200})
    result, truth = outcome.engine, {run.id: run for run in outcome.truth or ()}
    assert_every_run_once_as_the_server_says(outcome, 120)
    anchor = result.metrics.anchor
    real, from_creation = LatencyRecorder(), LatencyRecorder()
    for record in result.records:
        run = truth[record.run_id]
        assert run.completed is not None
        real.record_s(run.completed - anchor.to_wall_s(record.due_ns))
        from_creation.record_s(run.completed - run.created)
    ours, theirs = result.metrics.recorders[Measure.QUEUE_TO_COMPLETION].summary(), real.summary()
    late_start = result.metrics.recorders[Measure.START_LATENESS].summary().max_s
    assert theirs.percentiles_s[99.0] > 1.5  # the stall is in the truth...
    # ...but not in the time from the run's creation: a figure that starts when the server got the request
    # would miss it, and in the sent-late variant so would one that starts when the client sent it
    assert from_creation.summary().percentiles_s[99.0] < theirs.percentiles_s[99.0] - 1.0
    assert late_start > 1.0 if limited else late_start < 0.5
    # ...and in ours: never below the truth, above it only by the detection delay
    for p in (50.0, 90.0, 99.0):
        assert -CLOCK_JITTER_S <= ours.percentiles_s[p] - theirs.percentiles_s[p] <= STALL_ALLOWANCE_S, p
    assert -CLOCK_JITTER_S <= ours.max_s - theirs.max_s <= STALL_ALLOWANCE_S
    assert ours.percentiles_s[50.0] < 0.5  # outside the stall, calls stay short


# -- what the sender is told, what it sends, and when ---------------------------------------------------------

SECRET = "whsec_e2e_deliveries_0123456789"
QUICK = {
    "grace": "5s",
    "target": {"poll_interval": "50ms"},
    "batch": {"runs": 2},
    "stages": [{"duration": "1s", "rate": "10/s"}],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def session_of(
    data: dict[str, Any], simulator: dict[str, Any], warn: Callable[[str], None], surroundings: MemorySurroundings
) -> Session:
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", **simulator})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config, webhook_secrets=(SECRET,))
    return Session(profile_of(data), where, enforce_budget=False, warn=warn, surroundings=surroundings)


@pytest.mark.parametrize("payload", ["nested", "flat"])
def test_runs_end_by_webhook_whichever_shape_the_completion_comes_in(payload: str) -> None:
    # nested (data.test_call_run) is what the docs' CI handler reads and what the simulator sends by default
    profile = profile_of({**BASE, "webhooks": {"enabled": True, "fallback": "off"}})
    outcome = run_session(profile, {"seed": 3, "webhook_payload": payload})
    assert_every_run_once_as_the_server_says(outcome, 80)
    assert outcome.webhooks is not None
    assert outcome.webhooks.accepted_by_type["test-call.completed"] == 80
    assert outcome.webhooks.bad_shape == 0


def test_a_public_url_with_a_path_of_its_own_is_where_deliveries_are_taken() -> None:
    port = free_port()
    hooks = {"enabled": True, "fallback": "off", "listen": f"127.0.0.1:{port}"}
    hooks["public_url"] = f"http://127.0.0.1:{port}/hooks"
    warnings: list[str] = []

    async def main() -> SessionResult:
        surroundings = MemorySurroundings(clock())
        return await session_of({**QUICK, "webhooks": hooks}, {"seed": 6}, warnings.append, surroundings).run()

    outcome = run(main)
    # with polling off, only deliveries to /hooks could end the runs: a receiver serving /webhooks alone
    # answered them 404 and left every run open
    assert outcome.webhook_url == f"http://127.0.0.1:{port}/hooks"
    result = outcome.engine
    assert result.metrics.outcomes[Outcome.OPEN] == 0
    assert sum(result.metrics.outcomes.values()) == 20
    assert outcome.webhooks is not None
    assert outcome.webhooks.accepted_by_type["test-call.completed"] == 20
    assert outcome.webhooks.wrong_path == 0
    assert not any("wrong_path" in line for line in warnings)


async def _post_grades_until_the_receiver_stops(
    url: str, statuses: Counter[int], surroundings: MemorySurroundings
) -> None:
    """A sender posting a new call.graded every few ms, from when the receiver is up until it is gone."""
    target = request_target(url)
    while not surroundings.receivers:
        await anyio.sleep(0.01)  # not up yet
    async with (
        anyio.create_task_group() as tasks,
        httpx.AsyncClient(transport=surroundings.connect(tasks), timeout=5.0) as client,
    ):
        sent = 0
        while True:
            body = orjson.dumps(
                {"type": "call.graded", "data": {"call_id": f"late_{sent}", "grade": {"score": 90}}},
                option=orjson.OPT_SORT_KEYS,
            )
            headers = dict(signature_headers(SECRET, body, target, int(clock().wall())))
            try:
                answer = await client.post(url, content=body, headers=headers)
            except httpx.TransportError:
                return  # the receiver stopped
            statuses[answer.status_code] += 1
            sent += 1
            await anyio.sleep(0.005)


def test_every_delivery_acknowledged_is_in_the_figures_and_later_ones_are_refused() -> None:
    port = free_port()
    hooks = {"enabled": True, "fallback": "off", "listen": f"127.0.0.1:{port}"}
    warnings: list[str] = []
    statuses: Counter[int] = Counter()

    async def main() -> SessionResult:
        surroundings = MemorySurroundings(clock())
        # every run fails: the simulator sends no call.graded, so those the results count are all the test's
        simulator = {"seed": 7, "failure_rate": 1.0}
        session = session_of({**QUICK, "webhooks": hooks}, simulator, warnings.append, surroundings)
        url = f"http://127.0.0.1:{port}/webhooks"
        with anyio.fail_after(60):
            async with anyio.create_task_group() as sender:
                sender.start_soon(_post_grades_until_the_receiver_stops, url, statuses, surroundings)
                return await session.run()

    outcome = run(main)
    assert outcome.webhooks is not None
    # each 204 the sender got is a grade the figures count: none was acknowledged after they were taken...
    assert statuses[204] == outcome.webhooks.accepted_by_type["call.graded"] > 0
    # ...for what came after, the sender was told to retry (the shutdown outlasts several of its posts)
    assert statuses[503] > 0
    assert set(statuses) == {204, 503}
    assert outcome.webhooks.refused_closed == 0
    assert sum("after the run's figures were taken" in line for line in warnings) == 1


# -- slow and stray deliveries, through the command line -----------------------------------------------------


def _trickle(port: int, answers: list[bytes]) -> None:
    """A raw sender: a delivery's head and first bytes, then a byte every 100 ms, never the last, until the
    receiver closes the connection; keeps what it was answered."""
    body = b'{"data":{"test_call_run":{"id":"tc_slow","status":"completed"}},"type":"test-call.completed"}'
    head = f"POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body[:5])
        sock.settimeout(0.1)
        for byte in body[5:-1]:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                with contextlib.suppress(OSError):
                    sock.sendall(bytes([byte]))
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
    answers.append(answer)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)


def _stray_and_slow(port: int, answers: list[bytes], strays: list[int]) -> None:
    _wait_for_port(port)
    for _ in range(2):
        strays.append(httpx.post(f"http://127.0.0.1:{port}/hooks", content=b"{}", trust_env=False).status_code)
    slow = [threading.Thread(target=_trickle, args=(port, answers)) for _ in range(20)]
    for thread in slow:
        thread.start()
    for thread in slow:
        thread.join(60)


@pytest.mark.e2e
def test_slow_and_stray_deliveries_are_counted_said_once_and_end_the_run_without_a_traceback(tmp_path: Path) -> None:
    port = free_port()
    profile = tmp_path / "p.toml"
    profile.write_text(
        'grace = "5s"\n[target]\npoll_interval = "20ms"\n[batch]\nruns = 2\n[[stages]]\nduration = "1s"\nrate = "5/s"\n'
    )
    out = tmp_path / "r.json"
    answers: list[bytes] = []
    strays: list[int] = []
    senders = threading.Thread(target=_stray_and_slow, args=(port, answers, strays))
    senders.start()
    done = run_stressor(
        "run", str(profile), "--webhooks", "--webhook-listen", f"127.0.0.1:{port}", "--out", str(out),
        "--progress", "0",
    )  # fmt: skip
    senders.join(60)
    assert done.returncode == 0, done.stderr
    # before: 20 "Exception in ASGI application" tracebacks, after a 2 s wait at the end of the run
    assert "Traceback" not in done.stderr and "Exception in ASGI" not in done.stderr
    results = orjson.loads(out.read_bytes())
    hooks = results["webhooks"]
    assert (hooks["slow_body"], hooks["wrong_path"]) == (20, 2)
    assert hooks["received"] >= 22
    assert strays == [404, 404]
    assert len(answers) == 20 and all(answer.startswith(b"HTTP/1.1 503 ") for answer in answers)
    lines = done.stderr.splitlines()
    [stray] = [line for line in lines if "wrong_path" in line]
    assert stray.startswith("stressor: webhook receiver: a delivery came to '/hooks'")
    [slow] = [line for line in lines if "slow_body" in line]
    assert "20 deliveries were still arriving when the run's figures were taken" in slow
