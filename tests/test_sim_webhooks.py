"""Webhooks sent by the simulator: the pure parts (bodies, signatures, delivery draws), then deliveries to a
recording receiver run by the test and to the project's ``WebhookReceiver`` (in memory, on virtual time), and
from a simulator in its own process to a receiver on loopback."""

from __future__ import annotations

import contextlib
import functools
import random
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import orjson
import pytest
import uvicorn
from support.memory import MemorySimulator, in_memory
from support.virtual import VIRTUAL, running_clock

from stressor.sim.config import Distribution, SimConfig
from stressor.sim.model import FAST_GRADER_MODEL, GRADER_MODEL, SimModel
from stressor.sim.records import RunRequest, SimEvent
from stressor.sim.server import SimulatorProcess, fetch_truth
from stressor.sim.views import run_json
from stressor.sim.webhooks import (
    REORDER_WINDOW_S,
    DeliveryPolicy,
    Webhook,
    WebhookSender,
    event_body,
    request_target,
    signature_headers,
    webhook_for,
)
from stressor.timestamps import parse_iso
from stressor.webhooks.events import CallGraded, RunCompleted, parse_event
from stressor.webhooks.receiver import WebhookReceiver
from stressor.webhooks.signature import V1_HEADER, V2_HEADER, verify

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> object:
    return VIRTUAL

SECRET = "whsec_simulator_test_secret"
WALL = 1_800_000_000.0
AUTH = {"Authorization": "Bearer sk_live_test"}
BODY = {"target_type": "agent", "target_id": 9, "consent_to_charge": True, "scenario_prompt": "hello"}
COMPLETED, GRADED = "test-call.completed", "call.graded"


def is_compact_sorted_json(body: bytes) -> bool:
    return body == orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)


# -- pure parts --------------------------------------------------------------------------------------------


def ended_run_event(**settings: Any) -> tuple[SimModel, SimEvent]:
    model = SimModel(SimConfig(seed=4, **settings), wall_at_zero=WALL)
    events: list[SimEvent] = []
    model.add_listener(events.append)
    model.create_run(RunRequest(target_type="agent", target_id=3, scenario_prompt="ünïcode"), now=0.0)
    model.advance(1000.0)
    (ended,) = [event for event in events if event.kind == "run.ended"]
    return model, ended


def run_of(document: dict[str, Any]) -> dict[str, Any]:
    """The run a ``test-call.completed`` body carries, in the simulator's default (nested) shape."""
    run: dict[str, Any] = document["data"]["test_call_run"]
    return run


def test_completed_event_body_nests_the_run_as_the_api_shows_it_in_compact_sorted_json() -> None:
    _, ended = ended_run_event()
    assert ended.run is not None
    webhook = webhook_for(ended)
    assert webhook is not None and webhook.type == COMPLETED and webhook.run_id == ended.run.id
    assert is_compact_sorted_json(webhook.body)
    document = orjson.loads(webhook.body)
    # where the API docs' CI handler reads it: event["data"]["test_call_run"]
    assert document == {"type": COMPLETED, "data": {"test_call_run": run_json(ended.run)}}
    assert list(run_of(document)) == sorted(run_of(document))
    assert "ünïcode".encode() in webhook.body  # UTF-8, not escaped
    parsed = parse_event(webhook.body)
    # the API's integer id, as the client holds every id: its text form
    assert isinstance(parsed, RunCompleted) and parsed.run_id == str(ended.run.id) and parsed.succeeded


def test_a_flat_payload_puts_the_run_directly_under_data() -> None:
    _, ended = ended_run_event()
    assert ended.run is not None
    webhook = webhook_for(ended, payload="flat")
    assert webhook is not None
    assert orjson.loads(webhook.body) == {"type": COMPLETED, "data": run_json(ended.run)}
    assert parse_event(webhook.body) == parse_event(not_none(webhook_for(ended)).body)


def not_none(webhook: Webhook | None) -> Webhook:
    assert webhook is not None
    return webhook


def test_graded_event_body_and_events_that_send_nothing() -> None:
    model = SimModel(SimConfig(seed=4, grade_scale=1), wall_at_zero=WALL)
    events: list[SimEvent] = []
    model.add_listener(events.append)
    model.create_run(RunRequest(target_type="agent", target_id=3), now=0.0)
    model.advance(1000.0)
    graded = next(event for event in events if event.kind == "call.graded")
    webhook = webhook_for(graded, scale=1)
    assert webhook is not None and webhook.type == GRADED and webhook.run_id is None
    data = orjson.loads(webhook.body)["data"]
    assert set(data) == {"call_id", "grade"}
    assert set(data["grade"]) == {
        "score", "status", "call_outcome", "goal_achievement", "summary", "grader_model", "graded_at",
    }  # fmt: skip
    assert data["grade"]["status"] == "completed" and 0 <= data["grade"]["score"] <= 1
    parsed = parse_event(webhook.body)
    assert isinstance(parsed, CallGraded) and parsed.score == data["grade"]["score"]
    assert [webhook_for(event) for event in events if event.kind in ("run.created", "run.started")] == [None, None]


def test_signature_headers_verify_with_both_schemes() -> None:
    body = event_body(COMPLETED, {"id": "tc_1", "status": "completed"})
    target = request_target("http://127.0.0.1:9/hooks/in?src=sim&x=a%20b")
    assert target == "/hooks/in?src=sim&x=a%20b"
    headers = dict(signature_headers(SECRET, body, target, int(WALL)))
    assert headers["content-type"] == "application/json"
    verdict = verify(headers, "POST", target, body, [SECRET], WALL)
    assert verdict.ok and verdict.scheme == "v2"
    only_v1 = {V1_HEADER: headers[V1_HEADER]}
    assert verify(only_v1, "POST", target, body, [SECRET], WALL).ok
    assert not verify(headers, "POST", "/hooks/in", body, [SECRET], WALL).ok  # the query is signed too
    assert not verify(headers, "POST", target, body, ["whsec_other"], WALL).ok
    assert request_target("http://127.0.0.1:9") == "/"


def test_retry_schedule_doubles_up_to_the_cap_then_gives_up() -> None:
    config = SimConfig(webhook_retry_base=0.05, webhook_retry_cap=0.3, webhook_max_attempts=6)
    policy = DeliveryPolicy(config, random.Random(1))
    assert [policy.retry_delay(failures) for failures in range(1, 7)] == [0.05, 0.1, 0.2, 0.3, 0.3, None]
    assert DeliveryPolicy(SimConfig(webhook_max_attempts=1), random.Random(1)).retry_delay(1) is None


def test_delivery_draws_follow_the_settings() -> None:
    assert DeliveryPolicy(SimConfig(), random.Random(1)).first_delay() == 0.0
    lossy = DeliveryPolicy(SimConfig(webhook_drop_rate=0.25), random.Random(1))
    lost = sum(lossy.first_delay() is None for _ in range(4000))
    assert 0.22 <= lost / 4000 <= 0.28
    twice = DeliveryPolicy(SimConfig(webhook_duplicate_rate=0.5), random.Random(1))
    assert 0.45 <= sum(twice.duplicate() for _ in range(4000)) / 4000 <= 0.55
    assert not DeliveryPolicy(SimConfig(), random.Random(1)).duplicate()
    shuffled = DeliveryPolicy(SimConfig(webhook_reorder=True, webhook_delay=Distribution.fixed(0.5)), random.Random(1))
    delays = [shuffled.first_delay() for _ in range(500)]
    assert all(d is not None and 0.5 <= d <= 0.5 + REORDER_WINDOW_S for d in delays)
    assert len(set(delays)) > 400  # spread over the window, so close events change places


def test_sender_refuses_a_config_without_url_and_hides_the_secret() -> None:
    model = SimModel(SimConfig(), wall_at_zero=WALL)
    with pytest.raises(ValueError, match="webhook_url"):
        WebhookSender(model, lambda: 0.0, rng=random.Random(1))
    configured = SimModel(SimConfig(webhook_url="http://127.0.0.1:9/h", webhook_secret=SECRET), wall_at_zero=WALL)
    sender = WebhookSender.for_model(configured, lambda: 0.0)
    assert SECRET not in repr(sender) and SECRET not in repr(configured.config)


# -- deliveries --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One delivery as the receiver saw it."""

    target: bytes
    headers: dict[str, str]
    body: bytes
    at: float  # epoch seconds
    status: int

    @property
    def document(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class Recorder:
    """ASGI app keeping every POST; answers 500 to the first ``fail_first`` attempts of each distinct body."""

    fail_first: int = 0
    deliveries: list[Received] = field(default_factory=list)
    _seen: Counter[bytes] = field(default_factory=Counter)

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status = 500 if self._seen[body] < self.fail_first else 204
        self._seen[body] += 1
        query = scope["query_string"]
        target = scope["raw_path"] + (b"?" + query if query else b"")
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        self.deliveries.append(Received(target, headers, body, running_clock().wall(), status))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def of_type(self, kind: str, *, ok_only: bool = False) -> list[Received]:
        return [d for d in self.deliveries if d.document["type"] == kind and (d.status < 300 or not ok_only)]


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers, so a test run keeps its own Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def receiving(app: Any, path: str = "/hooks?src=sim") -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port in this event loop; yields the URL (with ``path``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    config = uvicorn.Config(
        app, lifespan="off", access_log=False, log_config=None, log_level="warning", http="h11", ws="none"
    )
    server = _QuietServer(config)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(functools.partial(server.serve, sockets=[sock]))
            with anyio.fail_after(5):
                while not server.started:
                    await anyio.sleep(0.005)
            try:
                yield f"http://127.0.0.1:{sock.getsockname()[1]}{path}"
            finally:
                server.should_exit = True
    finally:
        sock.close()


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def sender_count(sim: MemorySimulator, name: str) -> int:
    # the receiver logs a delivery before its answer reaches the sender, which only then records it in the
    # truth: tests that read the truth wait for the sender's own count
    assert sim.webhooks is not None
    count = sim.webhooks.snapshot()[name]
    assert isinstance(count, int)
    return count


def sim_config(url: str, **settings: Any) -> SimConfig:
    base: dict[str, Any] = {
        "webhook_url": url,
        "webhook_secret": SECRET,
        "slots": 10,
        "call_duration": Distribution.uniform(20, 60),
        "time_scale": 0.001,
        "seed": 21,
        # string ids read the same in API answers, webhooks and the truth (integer ids: test_sim_switches.py)
        "ids": "string",
    }
    return SimConfig(**{**base, **settings})


RECEIVER_URL = "http://receiver.test/hooks?src=sim"


@asynccontextmanager
async def delivering(recorder: Any, url: str = RECEIVER_URL, **settings: Any) -> AsyncIterator[MemorySimulator]:
    """The simulator (``sim_config`` with ``settings``) in memory, its webhooks delivered to ``recorder`` (at
    ``url``)."""
    async with in_memory(sim_config(url, **settings), receiver=recorder) as sim:
        yield sim


def client_of(sim: MemorySimulator | str, **options: Any) -> httpx.AsyncClient:
    """A client of the simulator: in memory, or at a base URL."""
    if isinstance(sim, str):
        return httpx.AsyncClient(base_url=sim, trust_env=False, **options)
    return sim.client(**options)


async def create_batch(sim: MemorySimulator | str, run_count: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Create a batch, wait until every run ended; the run ids and the runs as the API lists them at the end."""
    async with client_of(sim, headers=AUTH) as client:
        created = await client.post(
            "/v1/test-call-batches", json={**BODY, "run_count": run_count, "stagger_seconds": 0}
        )
        assert created.status_code == 201
        with anyio.fail_after(5):
            while (await client.get(f"/v1/test-call-batches/{created.json()['id']}")).json()["status"] not in (
                "completed",
                "failed",
            ):
                await anyio.sleep(0.01)
        return created.json()["run_ids"], (await client.get("/v1/test-calls")).json()


async def sim_stats(sim: MemorySimulator | str) -> dict[str, Any]:
    async with client_of(sim) as client:
        return (await client.get("/_sim/stats")).json()


async def test_every_run_end_arrives_signed_compact_and_sorted_and_is_in_the_truth() -> None:
    recorder = Recorder()
    async with delivering(recorder, failure_rate=0.4) as sim:
        run_ids, runs = await create_batch(sim, 8)
        completed_runs = [run for run in runs if run["status"] == "completed"]
        assert 0 < len(completed_runs) < 8  # some failed: they are reported too, but not graded
        await eventually(lambda: sender_count(sim, "delivered") == 8 + len(completed_runs))
        truth = sim.model.truth()
        stats = await sim_stats(sim)
        grades = {}
        async with sim.client(headers=AUTH) as client:
            for run in completed_runs:
                grades[run["call_id"]] = (await client.get(f"/v1/calls/{run['call_id']}/grade")).json()
        now = sim.clock.wall()
    for delivery in recorder.deliveries:
        assert delivery.target == b"/hooks?src=sim"
        assert delivery.headers["content-type"] == "application/json"
        assert is_compact_sorted_json(delivery.body)
        verdict = verify(delivery.headers, "POST", delivery.target, delivery.body, [SECRET], now)
        assert verdict.ok and verdict.scheme == "v2", verdict
        v1_only = {V1_HEADER: delivery.headers[V1_HEADER.lower()]}
        assert verify(v1_only, "POST", delivery.target, delivery.body, [SECRET], now).ok
        assert delivery.headers[V2_HEADER.lower()].startswith("t=")
    listed = {run["id"]: run for run in runs}
    reported = {run_of(d.document)["id"]: run_of(d.document) for d in recorder.of_type(COMPLETED)}
    assert set(reported) == set(run_ids)  # every run, each once
    for run_id, data in reported.items():
        api = listed[run_id]
        for key in ("status", "call_id", "batch_id", "completed_at", "started_at", "error_message"):
            assert data[key] == api[key], key
    for delivery in recorder.of_type(GRADED):
        data = delivery.document["data"]
        assert data["grade"]["score"] == grades[data["call_id"]]["score"]  # the API shows the same grade
    by_id = {record.id: record for record in truth}
    for run_id in run_ids:
        record = by_id[run_id]
        assert record.webhook_delivered is not None and record.completed is not None
        assert 0 <= record.webhook_delivered - record.completed < 2.0
        assert record.webhook_sent is not None and record.completed <= record.webhook_sent <= record.webhook_delivered
        if record.status == "completed":
            assert record.grade_score is not None and round(record.grade_score * 100) == grades[record.call_id]["score"]  # type: ignore[index]
        else:
            assert record.grade_score is None
    webhooks = stats["webhooks"]
    total = 8 + len(completed_runs)
    assert webhooks["delivered"] == webhooks["attempts"] == webhooks["events"] == total
    assert webhooks["retries"] == webhooks["failures"] == webhooks["duplicates"] == webhooks["dropped"] == 0
    assert webhooks["delivered_by_type"] == {GRADED: len(completed_runs), COMPLETED: 8}


async def test_a_failed_attempt_is_retried_after_the_backoff() -> None:
    recorder = Recorder(fail_first=1)
    async with delivering(recorder, webhook_retry_base=0.05) as sim:
        run_ids, _ = await create_batch(sim, 3)
        await eventually(lambda: sender_count(sim, "delivered") == 6)
        truth = sim.model.truth()
        stats = (await sim_stats(sim))["webhooks"]
    attempts: dict[bytes, list[Received]] = {}
    for delivery in recorder.deliveries:
        attempts.setdefault(delivery.body, []).append(delivery)
    assert len(attempts) == 6
    for tries in attempts.values():
        assert [t.status for t in tries] == [500, 204]  # refused once, delivered by the retry
        assert tries[1].at - tries[0].at >= 0.04
    for record in truth:
        # delivered means answered 2xx: the retry, not the refused first attempt
        assert record.webhook_delivered is not None and record.completed is not None
        assert record.webhook_delivered - record.completed >= 0.045
        # sent means the delivery that got through was sent: the retry, after the backoff
        assert record.webhook_sent is not None and record.webhook_sent - record.completed >= 0.045
        assert record.webhook_sent <= record.webhook_delivered
    assert {record.id for record in truth} == set(run_ids)
    assert stats["failures"] == stats["retries"] == 6 and stats["delivered"] == 6 and stats["attempts"] == 12


async def test_deliveries_are_given_up_after_the_last_attempt() -> None:
    recorder = Recorder(fail_first=100)
    settings = {"webhook_max_attempts": 3, "webhook_retry_base": 0.02}
    async with delivering(recorder, **settings) as sim:
        await create_batch(sim, 2)
        await eventually(lambda: sender_count(sim, "gave_up") == 4)
        truth = sim.model.truth()
    tries = Counter(delivery.body for delivery in recorder.deliveries)
    assert sorted(tries.values()) == [3, 3, 3, 3]
    first = [d.at for d in recorder.deliveries if d.body == recorder.deliveries[0].body]
    assert first[1] - first[0] >= 0.015 and first[2] - first[1] >= 0.035  # 0.02 s, then twice that
    assert all(record.webhook_delivered is None for record in truth)


async def test_duplicates_arrive_when_configured_and_the_receiver_dedupes_them() -> None:
    recorder = Recorder()
    async with delivering(recorder, webhook_duplicate_rate=1.0) as sim:
        run_ids, _ = await create_batch(sim, 3)
        await eventually(lambda: sender_count(sim, "delivered") == 12)
        await anyio.sleep(0.05)  # nothing more is coming: one copy per event, never a copy of a copy
        stats = (await sim_stats(sim))["webhooks"]
        first_delivered = {record.id: record.webhook_delivered for record in sim.model.truth()}
    copies = Counter(delivery.body for delivery in recorder.deliveries)
    assert len(recorder.deliveries) == 12 and set(copies.values()) == {2}
    assert stats["duplicates"] == 6 and stats["delivered"] == 12 and stats["events"] == 6
    completed = recorder.of_type(COMPLETED)
    for run_id in run_ids:
        arrivals = [d.at for d in completed if run_of(d.document)["id"] == run_id]
        assert first_delivered[run_id] is not None and first_delivered[run_id] <= min(arrivals) + 0.05


async def test_lost_webhooks_are_never_sent_and_not_in_the_truth() -> None:
    recorder = Recorder()
    async with delivering(recorder, webhook_drop_rate=1.0) as sim:
        await create_batch(sim, 4)
        await anyio.sleep(0.1)
        stats = (await sim_stats(sim))["webhooks"]
        truth = sim.model.truth()
    assert recorder.deliveries == []
    assert stats["dropped"] == stats["events"] == 8 and stats["attempts"] == 0
    assert all(record.webhook_delivered is None for record in truth)


async def test_graded_twice_fast_then_full_with_different_scores_on_the_docs_scale() -> None:
    recorder = Recorder()
    config_settings = {"grade_twice": True, "grade_delay": 0.05, "grade_scale": 1}
    async with delivering(recorder, **config_settings) as sim:
        _, runs = await create_batch(sim, 4)
        await eventually(lambda: sender_count(sim, "delivered") == 12)
        async with sim.client(headers=AUTH) as client:
            latest = {run["call_id"]: (await client.get(f"/v1/calls/{run['call_id']}/grade")).json() for run in runs}
        truth = {record.call_id: record for record in sim.model.truth()}
    by_call: dict[str, list[dict[str, Any]]] = {}
    for delivery in recorder.of_type(GRADED):
        data = delivery.document["data"]
        by_call.setdefault(data["call_id"], []).append(data["grade"])
    assert set(by_call) == set(latest)
    for call_id, grades in by_call.items():
        fast, full = sorted(grades, key=lambda grade: grade["graded_at"])
        assert (fast["grader_model"], full["grader_model"]) == (FAST_GRADER_MODEL, GRADER_MODEL)
        assert fast["status"] == full["status"] == "completed"
        assert fast["score"] != full["score"] and all(0 <= g["score"] <= 1 for g in grades)
        assert parse_iso(full["graded_at"]) - parse_iso(fast["graded_at"]) == pytest.approx(0.05, abs=0.002)
        assert latest[call_id] == {"call_id": call_id, **full}  # GET answers the latest grade
        assert truth[call_id].grade_score == full["score"]  # the final score, on 0..1
        record = truth[call_id]
        assert record.completed is not None
        assert parse_iso(fast["graded_at"]) - record.completed == pytest.approx(0.05, abs=0.002)


async def test_reorder_shuffles_events_that_happen_together() -> None:
    recorder = Recorder()
    settings = {"webhook_reorder": True, "call_duration": Distribution.fixed(30), "seed": 8}
    async with delivering(recorder, **settings) as sim:
        run_ids, _ = await create_batch(sim, 10)
        await eventually(lambda: len(recorder.of_type(COMPLETED)) == 10)
    arrived = [run_of(d.document)["id"] for d in recorder.of_type(COMPLETED)]
    # ten calls of the same length started together end together, in batch order; they arrive shuffled
    assert sorted(arrived) == sorted(run_ids) and arrived != run_ids


async def test_webhook_delay_holds_each_first_attempt() -> None:
    recorder = Recorder()
    async with delivering(recorder, webhook_delay=Distribution.fixed(0.2)) as sim:
        await create_batch(sim, 2)
        await eventually(lambda: sender_count(sim, "delivered") == 4)
        truth = sim.model.truth()
    for record in truth:
        assert record.webhook_delivered is not None and record.completed is not None
        assert record.webhook_delivered - record.completed >= 0.19


async def test_the_projects_webhook_receiver_accepts_everything_the_simulator_sends() -> None:
    events: list[object] = []
    clock = running_clock()
    receiver = WebhookReceiver(
        [SECRET], lambda event, _ns: events.append(event), clock_ns=clock.now_ns, wall=clock.wall, require_v2=True
    )
    settings = {"webhook_duplicate_rate": 1.0, "grade_twice": True, "grade_delay": 0.02}
    async with delivering(receiver, "http://127.0.0.1:8090/webhooks", **settings) as sim:
        run_ids, _ = await create_batch(sim, 5)
        await eventually(lambda: receiver.stats().received == 30)  # (5 + 10 graded) x 2 copies
    stats = receiver.stats()
    assert stats.bad_signature_total == 0 and stats.bad_json == stats.bad_shape == 0
    assert stats.accepted == 15 and stats.duplicates + stats.replayed == 15
    assert stats.accepted_by_type == {COMPLETED: 5, GRADED: 10}
    completed = [event for event in events if isinstance(event, RunCompleted)]
    assert {event.run_id for event in completed} == set(run_ids)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a real process: the machine's clock
async def test_a_simulator_process_gets_its_webhook_settings_and_secret() -> None:
    recorder = Recorder()
    async with receiving(recorder) as url:
        config = sim_config(
            url, webhook_duplicate_rate=1.0, grade_scale=1, api_key="sk_live_test", webhook_payload="flat"
        )
        async with SimulatorProcess(config) as base_url:
            run_ids, _ = await create_batch(base_url, 2)
            with anyio.fail_after(5):
                while (await sim_stats(base_url))["webhooks"]["delivered"] < 8:
                    await anyio.sleep(0.01)
            truth = await anyio.to_thread.run_sync(fetch_truth, base_url)
    now = time.time()
    assert all(verify(d.headers, "POST", d.target, d.body, [SECRET], now).ok for d in recorder.deliveries)
    assert {d.document["data"]["id"] for d in recorder.of_type(COMPLETED)} == set(run_ids)  # flat, as set
    assert all(isinstance(d.document["data"]["grade"]["score"], float) for d in recorder.of_type(GRADED))
    assert all(record.webhook_delivered is not None for record in truth)
