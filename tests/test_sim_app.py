"""The simulator's HTTP API through httpx's ASGI transport, with a hand-driven clock (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stressor.sim.app import Handler, Request, Response, SimApp, create_app, detail
from stressor.sim.config import Distribution, SimConfig
from stressor.sim.model import SimModel
from stressor.timestamps import parse_iso

pytestmark = pytest.mark.anyio

WALL = 1_800_000_000.0
KEY = "sk_live_test"
AUTH = {"Authorization": f"Bearer {KEY}"}
# the single-run body of the docs' curl example
DOC_BODY = {
    "target_type": "agent",
    "target_id": 123,
    "direction": "outbound",
    "scenario_prompt": "You are a customer calling to reschedule a dental appointment to next Tuesday.",
    "consent_to_charge": True,
}
RUN_FIELDS = {
    "id", "target_type", "target_id", "direction", "target_number", "scenario_prompt", "mode", "status",
    "charge_multiplier", "estimated_cost_cents", "call_id", "sip_call_id", "error_message", "batch_id",
    "started_at", "completed_at", "created_at", "updated_at",
}  # fmt: skip
BATCH_FIELDS = {
    "id", "name", "status", "run_count", "stagger_seconds", "scenario_prompts", "total_runs",
    "completed_runs", "failed_runs", "estimated_cost_cents", "estimated_minutes", "error_message", "run_ids",
    "started_at", "completed_at", "created_at", "updated_at",
}  # fmt: skip


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> SimApp:
    config = SimConfig(seed=3, call_duration=Distribution.fixed(30), time_scale=0.01, slots=2)
    return create_app(SimModel(config, wall_at_zero=WALL), clock)


@pytest.fixture
async def client(app: SimApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=AUTH) as client:
        yield client


async def create_batch(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/test-call-batches", json={**DOC_BODY, **fields})
    assert response.status_code == 201, response.text
    return response.json()


# -- health, auth, routing ---------------------------------------------------------------------------------


async def test_healthz_needs_no_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/healthz", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"ok": True}


async def test_documented_single_run_is_created_queued(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/test-calls", json=DOC_BODY)
    assert response.status_code == 201
    run = response.json()
    assert set(run) >= RUN_FIELDS
    assert run["status"] == "queued"
    assert type(run["id"]) is int  # the docs' reading ("id": 7110); SimConfig(ids="string") writes tc_...
    assert run["charge_multiplier"] == 2 and run["estimated_cost_cents"] == 16
    assert run["call_id"] is None and run["started_at"] is None and run["error_message"] == ""
    assert run["created_at"] == "2027-01-15T08:00:00.000Z" == run["updated_at"]
    assert run["scenario_prompt"] == DOC_BODY["scenario_prompt"]
    assert (run["mode"], run["direction"], run["target_number"]) == ("bot", "outbound", None)


async def test_curl_style_body_without_content_type_is_accepted(client: httpx.AsyncClient) -> None:
    body = b'{"target_type":"agent","target_id":1,"consent_to_charge":true}'
    response = await client.post("/v1/test-calls", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "not provided"),
        ({"Authorization": "Bearer"}, "Bearer <api key>"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer <api key>"),
        ({"Authorization": "Bearer wrong"}, "Invalid API key"),
    ],
)
async def test_bad_or_missing_key_is_401(clock: FakeClock, headers: dict[str, str], message: str) -> None:
    app = create_app(SimModel(SimConfig(api_key=KEY), wall_at_zero=WALL), clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        for method, path in [
            ("GET", "/v1/test-calls"),
            ("POST", "/v1/test-call-batches"),
            ("GET", "/v1/calls/x"),
        ]:
            response = await client.request(method, path, headers=headers, json=DOC_BODY)
            assert response.status_code == 401
            assert message in response.json()["detail"]
            assert response.headers["www-authenticate"].startswith("Bearer")
        good = await client.post("/v1/test-calls", headers=AUTH, json=DOC_BODY)
        assert good.status_code == 201
        lowercase_scheme = await client.get("/v1/test-calls", headers={"Authorization": f"bearer {KEY}"})
        assert lowercase_scheme.status_code == 200


async def test_any_non_empty_key_is_accepted_when_none_is_configured(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/test-calls", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nothing",
        "/v1/test-call-batches/tcb_unknown",
        "/v1/calls/call_unknown",
        "/v1/calls/call_unknown/transcript",
        "/v1/calls/call_unknown/grade",
        "/v1/test-calls/tc_123",  # the API has no endpoint for one run
    ],
)
async def test_unknown_paths_and_ids_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/test-calls", "GET, POST"),
        ("PUT", "/v1/test-call-batches", "GET, POST"),
        ("POST", "/v1/test-call-batches/tcb_x", "GET"),
        ("POST", "/v1/calls/call_x", "GET"),
        ("DELETE", "/v1/calls/call_x/grade", "GET, POST"),
        ("POST", "/v1/healthz", "GET"),
    ],
)
async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient, method: str, path: str, allowed: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert method in response.json()["detail"]


async def test_trailing_slash_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/test-calls/")).status_code == 200


# -- request validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "change", "field"),
    [
        ("/v1/test-calls", {"consent_to_charge": False}, "consent_to_charge"),
        ("/v1/test-calls", {"consent_to_charge": None}, "consent_to_charge"),
        ("/v1/test-calls", {"consent_to_charge": "true"}, "consent_to_charge"),
        ("/v1/test-calls", {"consent_to_charge": 1}, "consent_to_charge"),
        ("/v1/test-calls", {"target_id": None}, "target_id"),
        ("/v1/test-calls", {"target_id": "123"}, "target_id"),
        ("/v1/test-calls", {"target_id": True}, "target_id"),
        ("/v1/test-calls", {"target_id": 12.5}, "target_id"),
        ("/v1/test-calls", {"target_id": 0}, "target_id"),
        ("/v1/test-calls", {"target_type": None}, "target_type"),
        ("/v1/test-calls", {"target_type": "bot"}, "target_type"),
        ("/v1/test-calls", {"direction": "sideways"}, "direction"),
        ("/v1/test-calls", {"mode": "pstn"}, "mode"),
        ("/v1/test-calls", {"scenario_prompt": 5}, "scenario_prompt"),
        ("/v1/test-calls", {"target_number": "555-0100"}, "target_number"),
        ("/v1/test-call-batches", {"consent_to_charge": False}, "consent_to_charge"),
        ("/v1/test-call-batches", {"target_id": None}, "target_id"),
        ("/v1/test-call-batches", {"run_count": 0}, "run_count"),
        ("/v1/test-call-batches", {"run_count": 21}, "run_count"),
        ("/v1/test-call-batches", {"run_count": True}, "run_count"),
        ("/v1/test-call-batches", {"run_count": "3"}, "run_count"),
        ("/v1/test-call-batches", {"stagger_seconds": -1}, "stagger_seconds"),
        ("/v1/test-call-batches", {"stagger_seconds": 60.5}, "stagger_seconds"),
        ("/v1/test-call-batches", {"stagger_seconds": True}, "stagger_seconds"),
        ("/v1/test-call-batches", {"stagger_seconds": "5"}, "stagger_seconds"),
        ("/v1/test-call-batches", {"scenario_prompts": "one prompt"}, "scenario_prompts"),
        ("/v1/test-call-batches", {"scenario_prompts": ["ok", 2]}, "scenario_prompts"),
        ("/v1/test-call-batches", {"name": ["x"]}, "name"),
    ],
)
async def test_bad_fields_are_400_with_per_field_messages(
    client: httpx.AsyncClient, path: str, change: dict[str, Any], field: str
) -> None:
    body = {key: value for key, value in {**DOC_BODY, **change}.items() if value is not None}
    response = await client.post(path, json=body)
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    assert isinstance(errors[field], list) and all(isinstance(msg, str) and msg for msg in errors[field])


async def test_several_bad_fields_are_all_reported(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/test-call-batches", json={"run_count": 50, "stagger_seconds": 99})
    assert response.status_code == 400
    assert set(response.json()) == {
        "target_type",
        "target_id",
        "consent_to_charge",
        "run_count",
        "stagger_seconds",
    }
    assert "required" in response.json()["target_id"][0]


async def test_boundaries_of_run_count_and_stagger_are_accepted(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/test-call-batches", json={**DOC_BODY, "run_count": 1})).status_code == 201
    edge = {**DOC_BODY, "run_count": 20, "stagger_seconds": 60}
    assert (await client.post("/v1/test-call-batches", json=edge)).status_code == 201
    zero = {**DOC_BODY, "stagger_seconds": 0}
    assert (await client.post("/v1/test-call-batches", json=zero)).status_code == 201


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"{not json", "JSON parse error"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
    ],
)
async def test_body_that_is_not_a_json_object_is_400_detail(
    client: httpx.AsyncClient, content: bytes, fragment: str
) -> None:
    for path in ("/v1/test-calls", "/v1/test-call-batches"):
        response = await client.post(path, content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert fragment in response.json()["detail"]


async def test_oversized_body_is_413(client: httpx.AsyncClient, app: SimApp) -> None:
    huge = b'{"scenario_prompt": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post("/v1/test-calls", content=huge)
    assert response.status_code == 413
    assert app.stats.count("POST", "/v1/test-calls", 413) == 1
    assert app.model.list_runs() == []


# -- lists ---------------------------------------------------------------------------------------------------


async def test_list_is_a_bare_array_newest_first_with_pages(client: httpx.AsyncClient, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        clock.now = i * 0.001
        ids.append((await client.post("/v1/test-calls", json=DOC_BODY)).json()["id"])
    runs = (await client.get("/v1/test-calls")).json()
    assert isinstance(runs, list)
    assert [run["id"] for run in runs] == ids[::-1]
    page = (await client.get("/v1/test-calls", params={"limit": 2, "offset": 1})).json()
    assert [run["id"] for run in page] == [ids[3], ids[2]]


async def test_list_limit_defaults_to_50_and_is_capped_at_200(client: httpx.AsyncClient) -> None:
    for _ in range(11):
        await create_batch(client, run_count=20, stagger_seconds=0)
    assert len((await client.get("/v1/test-calls")).json()) == 50
    assert len((await client.get("/v1/test-calls", params={"limit": 1000})).json()) == 200
    assert len((await client.get("/v1/test-calls", params={"offset": 200, "limit": 200})).json()) == 20


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "ten"}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
        ({"target_type": "robot"}, "target_type"),
        ({"agent_id": "abc"}, "agent_id"),
    ],
)
async def test_bad_list_query_is_400(client: httpx.AsyncClient, params: dict[str, Any], field: str) -> None:
    response = await client.get("/v1/test-calls", params=params)
    assert response.status_code == 400
    assert field in response.json()


async def test_list_filters(client: httpx.AsyncClient, clock: FakeClock) -> None:
    agent7 = (await client.post("/v1/test-calls", json={**DOC_BODY, "target_id": 7})).json()
    phone = (await client.post("/v1/test-calls", json={**DOC_BODY, "target_type": "phone_number"})).json()
    agent123 = (await client.post("/v1/test-calls", json=DOC_BODY)).json()

    async def ids(**params: Any) -> list[str]:
        return [run["id"] for run in (await client.get("/v1/test-calls", params=params)).json()]

    assert await ids(agent_id=123) == [agent123["id"]]
    assert await ids(target_type="phone_number") == [phone["id"]]
    assert await ids(target_type="agent") == [agent123["id"], agent7["id"]]
    # 2 slots: the first two runs started as soon as they were released, the third waits
    assert await ids(status="in_progress") == [phone["id"], agent7["id"]]
    assert await ids(status="queued") == [agent123["id"]]
    clock.now = 1.0
    assert len(await ids(status="completed")) == 3


async def test_batches_list_newest_first(client: httpx.AsyncClient) -> None:
    first = await create_batch(client, run_count=1, name="first")
    second = await create_batch(client, run_count=1, name="second")
    listed = (await client.get("/v1/test-call-batches")).json()
    assert [b["id"] for b in listed] == [second["id"], first["id"]]
    assert [b["id"] for b in (await client.get("/v1/test-call-batches", params={"limit": 1})).json()] == [second["id"]]


# -- batches, calls, transcripts, grades ---------------------------------------------------------------------


async def test_batch_is_followed_to_completion(client: httpx.AsyncClient, clock: FakeClock) -> None:
    created = await create_batch(client, run_count=4, stagger_seconds=0.05, scenario_prompts=["a", "b"], name="n")
    assert set(created) >= BATCH_FIELDS
    assert created["status"] == "pending" and len(created["run_ids"]) == 4
    assert (created["total_runs"], created["completed_runs"], created["failed_runs"]) == (4, 0, 0)
    assert created["stagger_seconds"] == 0.05 and created["scenario_prompts"] == ["a", "b"]
    assert created["estimated_cost_cents"] == 64 and created["name"] == "n"
    clock.now = 0.06
    running = (await client.get(f"/v1/test-call-batches/{created['id']}")).json()
    assert running["status"] == "in_progress" and running["started_at"] == "2027-01-15T08:00:00.000Z"
    assert running["run_ids"] == created["run_ids"]
    clock.now = 5.0
    done = (await client.get(f"/v1/test-call-batches/{created['id']}")).json()
    assert done["status"] == "completed" and done["completed_runs"] == 4
    assert parse_iso(done["completed_at"]) >= parse_iso(done["started_at"])
    assert done["updated_at"] == done["completed_at"]
    runs = {run["id"]: run for run in (await client.get("/v1/test-calls")).json()}
    assert [runs[run_id]["scenario_prompt"] for run_id in created["run_ids"]] == ["a", "b", "a", "b"]
    assert all(runs[run_id]["batch_id"] == created["id"] for run_id in created["run_ids"])
    # 2 slots, 0.3 s calls released 50 ms apart: the third run waits for the first to end at t=0.3
    third = runs[created["run_ids"][2]]
    assert third["started_at"] == "2027-01-15T08:00:00.300Z"


async def test_call_log_transcript_and_grade(client: httpx.AsyncClient, clock: FakeClock) -> None:
    run = (await client.post("/v1/test-calls", json=DOC_BODY)).json()
    clock.now = 0.1
    run = (await client.get("/v1/test-calls")).json()[0]
    assert run["status"] == "in_progress" and type(run["call_id"]) is int
    call = (await client.get(f"/v1/calls/{run['call_id']}")).json()
    assert call["status"] == "in_progress" and call["duration_seconds"] is None and call["grade_score"] is None
    pending = (await client.get(f"/v1/calls/{run['call_id']}/grade")).json()
    assert pending["status"] == "pending" and pending["score"] is None
    clock.now = 1.0
    call = (await client.get(f"/v1/calls/{run['call_id']}")).json()
    assert call["call_id"] == run["call_id"] and call["status"] == "completed"
    assert call["duration_seconds"] == 30  # 0.3 s of real time at 0.01 real seconds per API second
    assert call["product"] == "spark" and call["end_reason"] == "completed"
    assert call["billable_minutes"] == 1 and call["billing_total_cents"] == 16
    assert isinstance(call["grade_score"], int) and 0 <= call["grade_score"] <= 100
    assert call["grade_status"] == "completed"
    assert parse_iso(call["end_time"]) - parse_iso(call["start_time"]) == pytest.approx(0.3, abs=0.002)
    transcript = (await client.get(f"/v1/calls/{run['call_id']}/transcript")).json()
    assert transcript["call_id"] == run["call_id"]
    turns = transcript["transcripts"]
    assert len(turns) >= 2 and {turn["role"] for turn in turns} == {"assistant", "user"}
    assert all(turn["content"] and 0 <= turn["start_ms"] < turn["end_ms"] <= 30_000 for turn in turns)
    for method in ("GET", "POST"):
        grade = (await client.request(method, f"/v1/calls/{run['call_id']}/grade")).json()
        assert grade["status"] == "completed" and grade["score"] == call["grade_score"]
        assert grade["call_outcome"] in ("success", "failure") and grade["grader_model"]
    finished = (await client.get("/v1/test-calls")).json()[0]
    assert finished["status"] == "completed" and finished["duration_seconds"] == 30
    assert finished["completed_at"] == call["end_time"] and finished["updated_at"] == finished["completed_at"]


async def test_failed_runs_carry_an_error_message(clock: FakeClock) -> None:
    app = create_app(SimModel(SimConfig(failure_rate=1.0, seed=1), wall_at_zero=WALL), clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s", headers=AUTH) as c:
        created = (await c.post("/v1/test-call-batches", json={**DOC_BODY, "stagger_seconds": 0})).json()
        clock.now = 10.0
        batch = (await c.get(f"/v1/test-call-batches/{created['id']}")).json()
        assert batch["status"] == "failed" and batch["failed_runs"] == 3 and batch["error_message"]
        runs = (await c.get("/v1/test-calls", params={"status": "failed"})).json()
        assert len(runs) == 3 and all(run["error_message"] for run in runs)


async def test_sip_mode_gets_a_sip_call_id(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await client.post("/v1/test-calls", json={**DOC_BODY, "mode": "sip", "target_number": "+14155550123"})
    clock.now = 0.01
    run = (await client.get("/v1/test-calls")).json()[0]
    assert run["mode"] == "sip" and run["sip_call_id"] and run["target_number"] == "+14155550123"


# -- the simulator's own endpoints -------------------------------------------------------------------------


async def test_truth_and_stats_need_no_key_and_tell_the_truth(app: SimApp, clock: FakeClock) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as anonymous:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s", headers=AUTH) as c:
            created = (await c.post("/v1/test-call-batches", json={**DOC_BODY, "stagger_seconds": 0.5})).json()
            await c.get("/v1/test-calls")
            await c.get("/v1/test-calls")
            await c.get(f"/v1/test-call-batches/{created['id']}")
            await c.get("/v1/test-call-batches/tcb_missing")
        clock.now = 0.6
        truth = (await anonymous.get("/_sim/truth")).json()
        assert set(truth) == {"runs", "config", "now"}
        assert truth["now"] == WALL + 0.6
        assert truth["config"]["slots"] == 2 and truth["config"]["seed"] == 3
        assert truth["config"]["call_duration"] == "fixed(30)"
        assert truth["config"]["api_key_required"] is False
        records = truth["runs"]
        assert [r["id"] for r in records] == [str(run_id) for run_id in created["run_ids"]]  # ids as text
        first, second, third = records
        assert set(first) == {
            "id", "batch_id", "index", "scenario_prompt", "created", "released", "started", "completed",
            "status", "call_id", "grade_score", "webhook_delivered", "webhook_sent", "shown_ended", "submit_arrived",
            "submit_answered", "product", "agent_version", "prompt_change", "duration_seconds", "end_reason",
            "billing_total_cents", "call_outcome",
        }  # fmt: skip
        assert first["grade_score"] == pytest.approx(app.model.get_run(first["id"]).grade.score)  # type: ignore[union-attr]
        assert 0 <= first["grade_score"] <= 1 and second["grade_score"] is None  # graded once the call ended
        assert first["webhook_delivered"] is None  # no webhooks configured
        assert first["created"] == WALL and first["released"] == WALL and first["index"] == 0
        assert second["released"] == WALL + 0.5 and second["status"] == "in_progress"
        assert first["completed"] == pytest.approx(WALL + 0.3, abs=1e-6) and first["status"] == "completed"
        assert third["released"] is None and third["status"] == "queued"
        stats = (await anonymous.get("/_sim/stats")).json()
        assert stats["requests"]["GET /v1/test-calls"] == {"200": 2}
        assert stats["requests"]["GET /v1/test-call-batches/{batch_id}"] == {"200": 1, "404": 1}
        assert stats["requests"]["POST /v1/test-call-batches"] == {"201": 1}
        assert stats["requests"]["GET /_sim/truth"] == {"200": 1}
        assert stats["total"] == 6  # the stats request itself is counted once it has been answered
        assert stats["runs"] == {"queued": 1, "in_progress": 1, "completed": 1, "failed": 0}
        assert app.stats.count("GET", "/v1/test-calls") == 2
        assert app.stats.count(status=404) == 1


async def test_unmatched_paths_are_counted_too(client: httpx.AsyncClient, app: SimApp) -> None:
    await client.get("/nope")
    assert app.stats.count("GET", "<unmatched>", 404) == 1


async def test_config_in_truth_never_reveals_the_key(clock: FakeClock) -> None:
    app = create_app(SimModel(SimConfig(api_key=KEY), wall_at_zero=WALL), clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
        response = await client.get("/_sim/truth")
    assert KEY not in response.text
    assert response.json()["config"]["api_key_required"] is True


async def test_middleware_wraps_the_handler_and_its_answers_are_counted(clock: FakeClock) -> None:
    def throttle(inner: Handler) -> Handler:
        async def handler(request: Request) -> Response:
            if request.route == "/v1/test-calls" and request.method == "POST":
                return detail(429, "Too many requests.", (("retry-after", "1"),))
            return await inner(request)

        return handler

    app = create_app(SimModel(SimConfig(), wall_at_zero=WALL), clock, middleware=[throttle])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s", headers=AUTH) as c:
        refused = await c.post("/v1/test-calls", json=DOC_BODY)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert (await c.get("/v1/test-calls")).json() == []
    assert app.stats.count("POST", "/v1/test-calls", 429) == 1


async def test_a_list_page_shows_each_run_as_it_is_now(client: httpx.AsyncClient, clock: FakeClock) -> None:
    # The simulator keeps each run's JSON made once per version of the run: a run that changed is shown anew.
    await create_batch(client, run_count=2, stagger_seconds=0)
    first = (await client.get("/v1/test-calls")).json()
    assert [run["status"] for run in first] == ["in_progress", "in_progress"]
    again = (await client.get("/v1/test-calls")).json()
    assert again == first
    clock.now = 1.0  # past the 30 API seconds (0.3 s at time scale 0.01)
    ended = (await client.get("/v1/test-calls")).json()
    assert [run["status"] for run in ended] == ["completed", "completed"]
    assert all(run["completed_at"] is not None for run in ended)
    assert [run["id"] for run in ended] == [run["id"] for run in first]
