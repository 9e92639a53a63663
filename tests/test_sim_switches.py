"""The simulator's switches for what the docs leave open (list order and offset, page cap, batch names, the
server's clock, id types) and the create whose answer comes too late: settings, the app through httpx's ASGI
transport with a hand-driven clock, then the real server on loopback (Date headers, timeouts, webhooks)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
import typer
from typer.testing import CliRunner

from stressor.asgi_server import base_url_of, serve_asgi
from stressor.cli.plain import PlainCommand
from stressor.cli.sim import sim
from stressor.profile import load_profile
from stressor.sim.app import SimApp, create_app
from stressor.sim.config import Distribution, SimConfig, SimConfigError
from stressor.sim.faults import FaultLayer
from stressor.sim.model import SimModel
from stressor.sim.server import serve
from stressor.timestamps import parse_iso
from stressor.webhooks.signature import V2_HEADER

pytestmark = pytest.mark.anyio

WALL = 1_800_000_000.0
AUTH = {"Authorization": "Bearer sk_live_test"}
RUN = {"target_type": "agent", "target_id": 7, "consent_to_charge": True, "scenario_prompt": "hi"}
SECRET = "whsec_switches_test"


class FakeClock:
    """Monotonic seconds that move only when the test (or the fake sleep) says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@asynccontextmanager
async def simulated(clock: FakeClock, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, SimApp]]:
    """The app with its fault layer over a model with ``settings`` (0.1 s calls), and a client with the key."""
    config = SimConfig(**{"seed": 3, "call_duration": Distribution.fixed(10), "time_scale": 0.01, **settings})
    model = SimModel(config, wall_at_zero=WALL)
    layer = FaultLayer.for_model(model, clock, sleep=clock.sleep)
    app = create_app(model, clock, middleware=[layer], stats={"faults": layer.snapshot})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as c:
        yield c, app


async def create_runs(client: httpx.AsyncClient, count: int) -> list[Any]:
    ids = []
    for _ in range(count):
        response = await client.post("/v1/test-calls", json=RUN)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def listed(client: httpx.AsyncClient, path: str = "/v1/test-calls", **params: int | str) -> list[Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


# -- settings ------------------------------------------------------------------------------------------------


def test_defaults_are_the_docs_reading_and_inject_no_fault() -> None:
    config = SimConfig()
    assert (config.list_order, config.list_offset, config.page_cap) == ("newest", "honoured", None)
    assert (config.batch_name, config.batch_name_length) == ("whole", 16)
    assert (config.clock_offset, config.ids) == (0.0, "int")
    assert (config.slow_after_create, config.slow_after_create_delay) == (0.0, 15.0)
    assert not config.faults_enabled
    assert SimConfig(slow_after_create=0.1).faults_enabled


def test_from_mapping_reads_the_switches_as_a_profile_or_a_flag_writes_them() -> None:
    config = SimConfig.from_mapping(
        {
            "list_order": "Oldest",
            "list_offset": " ignored ",
            "page_cap": "3",
            "batch_name": "TRUNCATED",
            "batch_name_length": "8",
            "clock_offset": "-6s",
            "ids": "string",
            "slow_after_create": 0.5,
            "slow_after_create_delay": "2s",
        }
    )
    assert config == SimConfig(
        list_order="oldest",
        list_offset="ignored",
        page_cap=3,
        batch_name="truncated",
        batch_name_length=8,
        clock_offset=-6.0,
        ids="string",
        slow_after_create=0.5,
        slow_after_create_delay=2.0,
    )


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("6s", 6.0), ("-6s", -6.0), ("-1.5", -1.5), ("+250ms", 0.25), ("-1m30s", -90.0), (3, 3), (-0.5, -0.5)],
)
def test_clock_offset_takes_signed_seconds_with_or_without_a_unit(written: object, seconds: float) -> None:
    assert SimConfig.from_mapping({"clock_offset": written}).clock_offset == seconds


@pytest.mark.parametrize(
    ("settings", "setting", "fragment"),
    [
        ({"list_order": "random"}, "list_order", "list_order must be one of newest, oldest, not 'random'."),
        ({"list_offset": "honored"}, "list_offset", "list_offset must be one of honoured, ignored"),
        ({"page_cap": 0}, "page_cap", "page_cap must be a whole number of at least 1, or None, not 0."),
        ({"page_cap": True}, "page_cap", "page_cap must be a whole number"),
        ({"page_cap": "many"}, "page_cap", "page_cap must be a whole number"),
        ({"batch_name": "cut"}, "batch_name", "batch_name must be one of whole, absent, truncated"),
        ({"batch_name_length": -1}, "batch_name_length", "batch_name_length must be a whole number of at least 0"),
        ({"clock_offset": "soon"}, "clock_offset", "clock_offset: expected seconds like 6s, -6s, -1.5 or 250ms"),
        ({"clock_offset": "--6"}, "clock_offset", "expected seconds like"),
        ({"clock_offset": 1e9}, "clock_offset", "clock_offset must be a number of seconds between -86400 and 86400"),
        ({"clock_offset": float("nan")}, "clock_offset", "clock_offset must be a number of seconds"),
        ({"clock_offset": True}, "clock_offset", "clock_offset must be a number of seconds"),
        ({"ids": "uuid"}, "ids", "ids must be one of int, string, not 'uuid'."),
        ({"slow_after_create": 1.5}, "slow_after_create", "slow_after_create must be a number between 0 and 1"),
        ({"slow_after_create_delay": 0}, "slow_after_create_delay", "slow_after_create_delay must be a number"),
        ({"slow_after_create_delay": "-1s"}, "slow_after_create_delay", "slow_after_create_delay: a duration"),
    ],
)
def test_bad_switches_are_refused_in_one_sentence_naming_the_setting(
    settings: dict[str, Any], setting: str, fragment: str
) -> None:
    with pytest.raises(SimConfigError) as caught:
        SimConfig.from_mapping(settings)
    message = str(caught.value)
    assert caught.value.setting == setting and fragment in message
    assert message.startswith(setting) and message.endswith(".") and message.count(". ") == 0


def test_every_switch_is_reachable_from_a_profile_with_the_limits_it_combines_with(tmp_path: Path) -> None:
    path = tmp_path / "switches.toml"
    path.write_text(
        """
[[stages]]
duration = "10s"
rate = "30/min"

[simulator]
list_order = "oldest"
list_offset = "ignored"
page_cap = 5
batch_name = "truncated"
batch_name_length = 4
clock_offset = "-6s"
ids = "string"
slow_after_create = 0.1
slow_after_create_delay = "12s"
fault_after_create = 0.5
rate_limit = "2/s"
rate_limit_scope = "create"
rate_limit_status = 503
retry_after = "none"
"""
    )
    config = SimConfig.from_mapping(load_profile(path).simulator)
    assert (config.list_order, config.list_offset, config.page_cap, config.ids) == ("oldest", "ignored", 5, "string")
    assert (config.batch_name, config.batch_name_length, config.clock_offset) == ("truncated", 4, -6.0)
    assert (config.slow_after_create, config.slow_after_create_delay, config.fault_after_create) == (0.1, 12.0, 0.5)
    assert (config.rate_limit, config.rate_limit_scope, config.rate_limit_status, config.retry_after) == (
        2.0,
        "create",
        503,
        "none",
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--list-order", "sideways"], "--list-order must be newest or oldest, not 'sideways'"),
        (["--list-offset", "maybe"], "--list-offset must be honoured or ignored, not 'maybe'"),
        (["--page-cap", "0"], "page_cap must be a whole number of at least 1"),
        (["--batch-name", "short"], "--batch-name must be whole, absent or truncated, not 'short'"),
        (["--clock-offset", "-6 days"], "expected seconds like 6s, -6s"),
        (["--ids", "uuid"], "--ids must be int or string, not 'uuid'"),
        (["--slow-after-create", "2"], "slow_after_create must be a number between 0 and 1"),
    ],
)
def test_the_sim_command_refuses_a_bad_switch_with_exit_2(args: list[str], fragment: str) -> None:
    app = typer.Typer()
    app.command("sim", cls=PlainCommand)(sim)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert fragment in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output


# -- lists: order, offset, page cap ---------------------------------------------------------------------------


async def test_lists_are_newest_first_by_default_and_oldest_first_when_asked(clock: FakeClock) -> None:
    async with simulated(clock) as (client, _):
        runs = await create_runs(client, 4)
        batch = (await client.post("/v1/test-call-batches", json=RUN)).json()
        later = (await client.post("/v1/test-call-batches", json=RUN)).json()
        assert await listed(client) == [*later["run_ids"][::-1], *batch["run_ids"][::-1], *runs[::-1]]
        assert await listed(client, "/v1/test-call-batches") == [later["id"], batch["id"]]
    async with simulated(FakeClock(), list_order="oldest") as (client, _):
        runs = await create_runs(client, 4)
        batch = (await client.post("/v1/test-call-batches", json=RUN)).json()
        later = (await client.post("/v1/test-call-batches", json=RUN)).json()
        assert await listed(client) == [*runs, *batch["run_ids"], *later["run_ids"]]
        assert await listed(client, limit=2, offset=4) == batch["run_ids"][:2]
        assert await listed(client, "/v1/test-call-batches") == [batch["id"], later["id"]]
        assert await listed(client, "/v1/test-call-batches", offset=1) == [later["id"]]


async def test_an_ignored_offset_starts_every_page_at_the_start(clock: FakeClock) -> None:
    async with simulated(clock, list_offset="ignored") as (client, _):
        newest = (await create_runs(client, 5))[::-1]
        assert await listed(client, limit=2, offset=2) == await listed(client, limit=2) == newest[:2]
        assert await listed(client, limit=2, offset=4, agent_id=7) == newest[:2]
        assert await listed(client, offset=3) == newest  # the whole list, not its last two
        batches = [(await client.post("/v1/test-call-batches", json=RUN)).json()["id"] for _ in range(2)]
        assert await listed(client, "/v1/test-call-batches", limit=1, offset=1) == [batches[1]]
    async with simulated(FakeClock()) as (client, _):  # honoured, by default
        runs = await create_runs(client, 5)
        assert await listed(client, limit=2, offset=2) == runs[::-1][2:4]


async def test_a_page_cap_shortens_pages_that_are_not_the_end(clock: FakeClock) -> None:
    async with simulated(clock, page_cap=2) as (client, _):
        newest = (await create_runs(client, 5))[::-1]
        assert await listed(client, limit=50) == newest[:2]  # two, whatever limit says
        assert await listed(client) == newest[:2]  # the API's default limit (50) too
        pages = [await listed(client, limit=5, offset=offset) for offset in (0, 2, 4, 6)]
        assert pages == [newest[0:2], newest[2:4], newest[4:5], []]  # offset still pages through
        assert await listed(client, limit=1) == newest[:1]  # a limit below the cap still holds
        for _ in range(3):
            await client.post("/v1/test-call-batches", json=RUN)
        assert len(await listed(client, "/v1/test-call-batches", limit=10)) == 2


async def test_an_offset_past_any_list_is_an_empty_page_not_an_error(clock: FakeClock) -> None:
    async with simulated(clock) as (client, _):
        await create_runs(client, 2)
        await client.post("/v1/test-call-batches", json=RUN)
        huge = 10**30  # far beyond sys.maxsize: the fuzzer found the 500 this used to be
        assert await listed(client, offset=huge) == await listed(client, offset=5) == []
        assert await listed(client, "/v1/test-call-batches", offset=huge, limit=200) == []


# -- batch names ----------------------------------------------------------------------------------------------


async def batch_everywhere(client: httpx.AsyncClient, clock: FakeClock, name: str) -> list[dict[str, Any]]:
    """The batch as the create answer, the batch list and the batch detail show it (and once it ended)."""
    created = (await client.post("/v1/test-call-batches", json={**RUN, "name": name, "stagger_seconds": 0})).json()
    shown = [created, (await client.get("/v1/test-call-batches")).json()[0]]
    shown.append((await client.get(f"/v1/test-call-batches/{created['id']}")).json())
    clock.now += 10.0
    shown.append((await client.get(f"/v1/test-call-batches/{created['id']}")).json())
    assert shown[-1]["status"] == "completed"
    return shown


NAME = "nightly-regression-2027-01-15"


async def test_a_batch_name_is_echoed_whole_by_default(clock: FakeClock) -> None:
    async with simulated(clock) as (client, _):
        assert [batch["name"] for batch in await batch_everywhere(client, clock, NAME)] == [NAME] * 4


async def test_a_batch_name_can_be_absent_from_every_answer(clock: FakeClock) -> None:
    async with simulated(clock, batch_name="absent") as (client, _):
        shown = await batch_everywhere(client, clock, NAME)
    assert all("name" not in batch and "run_ids" in batch for batch in shown)


@pytest.mark.parametrize(("length", "expected"), [(16, NAME[:16]), (4, "nigh"), (0, ""), (100, NAME)])
async def test_a_batch_name_can_be_truncated_in_every_answer(clock: FakeClock, length: int, expected: str) -> None:
    async with simulated(clock, batch_name="truncated", batch_name_length=length) as (client, _):
        assert [batch["name"] for batch in await batch_everywhere(client, clock, NAME)] == [expected] * 4


# -- ids ------------------------------------------------------------------------------------------------------


async def every_id(client: httpx.AsyncClient, clock: FakeClock) -> tuple[list[Any], dict[str, Any]]:
    """Ids of a batch, its runs, a single run and every call, once all ended; and one run as listed."""
    batch = (await client.post("/v1/test-call-batches", json={**RUN, "run_count": 4, "stagger_seconds": 0})).json()
    single = (await client.post("/v1/test-calls", json=RUN)).json()
    clock.now += 10.0
    runs = (await client.get("/v1/test-calls")).json()
    assert all(run["status"] == "completed" for run in runs)
    ids = [batch["id"], single["id"], *batch["run_ids"], *(run["call_id"] for run in runs)]
    return ids, runs[-1]


async def test_integer_ids_are_distinct_json_integers_and_paths_take_their_text(clock: FakeClock) -> None:
    async with simulated(clock) as (client, app):
        ids, run = await every_id(client, clock)
        assert all(type(value) is int and value > 0 for value in ids)
        assert len(set(ids)) == len(ids) == 11  # one batch, five runs, five calls: never the same id twice
        assert type(run["batch_id"]) is int and run["batch_id"] == ids[0]
        assert (await client.get(f"/v1/test-call-batches/{run['batch_id']}")).json()["id"] == run["batch_id"]
        call = (await client.get(f"/v1/calls/{run['call_id']}")).json()
        assert call["call_id"] == run["call_id"] and type(call["call_id"]) is int
        grade = (await client.get(f"/v1/calls/{run['call_id']}/grade")).json()
        transcript = (await client.get(f"/v1/calls/{run['call_id']}/transcript")).json()
        assert grade["call_id"] == transcript["call_id"] == run["call_id"]
        for path in (f"/v1/calls/{run['id']}", "/v1/calls/call_x", f"/v1/calls/-{run['call_id']}", "/v1/calls/1e3"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get(f"/v1/test-call-batches/{run['call_id']}")).status_code == 404
        truth = (await client.get("/_sim/truth")).json()
    # ground truth holds ids as a client that stringifies them does
    record = next(r for r in truth["runs"] if r["id"] == str(run["id"]))
    assert (record["batch_id"], record["call_id"]) == (str(run["batch_id"]), str(run["call_id"]))
    assert truth["config"]["ids"] == "int"
    assert app.model.get_run(str(run["id"])) == app.model.get_run(run["id"]) is not None


async def test_string_ids_are_prefixed_and_paths_take_them(clock: FakeClock) -> None:
    async with simulated(clock, ids="string") as (client, _):
        ids, run = await every_id(client, clock)
        assert all(isinstance(value, str) for value in ids) and len(set(ids)) == len(ids)
        assert ids[0].startswith("tcb_") and ids[1].startswith("tc_") and run["call_id"].startswith("call_")
        assert (await client.get(f"/v1/test-call-batches/{ids[0]}")).status_code == 200
        assert (await client.get(f"/v1/calls/{run['call_id']}")).json()["call_id"] == run["call_id"]
        assert (await client.get("/v1/calls/12345")).status_code == 404
        truth = (await client.get("/_sim/truth")).json()
    assert {str(value) for value in ids[1:6]} <= {record["id"] for record in truth["runs"]}


# -- the server's clock ---------------------------------------------------------------------------------------


async def test_a_clock_offset_shifts_every_stamp_the_server_writes_but_not_the_truth(clock: FakeClock) -> None:
    offset = -6.25
    async with simulated(clock, clock_offset=offset) as (client, _):
        created = await client.post("/v1/test-call-batches", json={**RUN, "run_count": 2, "stagger_seconds": 0})
        clock.now = 5.0  # the calls (0.1 s) ended at 0.1
        runs = (await client.get("/v1/test-calls")).json()
        batch = (await client.get(f"/v1/test-call-batches/{created.json()['id']}")).json()
        call = (await client.get(f"/v1/calls/{runs[0]['call_id']}")).json()
        grade = (await client.get(f"/v1/calls/{runs[0]['call_id']}/grade")).json()
        truth_answer = await client.get("/_sim/truth")
    truth = truth_answer.json()
    record = next(r for r in truth["runs"] if r["id"] == str(runs[0]["id"]))
    assert record["created"] == WALL and record["completed"] == pytest.approx(WALL + 0.1, abs=1e-6)
    assert truth["now"] == WALL + 5.0 and truth["config"]["clock_offset"] == offset  # the truth says the offset
    shifted = WALL + offset
    assert parse_iso(created.json()["created_at"]) == shifted
    assert parse_iso(runs[0]["created_at"]) == parse_iso(runs[0]["started_at"]) == shifted
    assert parse_iso(runs[0]["completed_at"]) == pytest.approx(shifted + 0.1, abs=0.001)
    assert parse_iso(runs[0]["updated_at"]) == parse_iso(runs[0]["completed_at"])
    assert parse_iso(batch["completed_at"]) == pytest.approx(shifted + 0.1, abs=0.001)
    assert parse_iso(batch["started_at"]) == shifted and parse_iso(batch["created_at"]) == shifted
    assert parse_iso(call["start_time"]) == shifted and call["end_time"] == runs[0]["completed_at"]
    assert parse_iso(grade["graded_at"]) == pytest.approx(shifted + 0.1, abs=0.001)  # graded as the call ended
    # Date: the server's clock too (to the second), on every answer, the simulator's own included
    for answer in (created, truth_answer):
        assert answer.headers.get_list("date") == [answer.headers["date"]]
    assert parsedate_to_datetime(created.headers["date"]).timestamp() == int(shifted)
    assert parsedate_to_datetime(truth_answer.headers["date"]).timestamp() == int(shifted + 5.0)


async def test_with_no_offset_stamps_and_truth_agree_exactly(clock: FakeClock) -> None:
    async with simulated(clock) as (client, _):
        created = await client.post("/v1/test-calls", json=RUN)
        truth = (await client.get("/_sim/truth")).json()
    assert parse_iso(created.json()["created_at"]) == truth["runs"][0]["created"] == WALL
    assert parsedate_to_datetime(created.headers["date"]).timestamp() == WALL


@pytest.mark.parametrize("offset", [-90.0, 3600.0])
async def test_http_dates_and_epoch_resets_of_the_rate_limit_follow_the_servers_clock(
    clock: FakeClock, offset: float
) -> None:
    settings = {"rate_limit": 1.0, "rate_limit_burst": 1, "retry_after": "http-date"}
    async with simulated(clock, clock_offset=offset, rate_limit_headers="x-ratelimit-epoch", **settings) as (c, _):
        assert (await c.post("/v1/test-calls", json=RUN)).status_code == 201
        clock.now = 0.5
        refused = await c.post("/v1/test-calls", json=RUN)
    assert refused.status_code == 429
    date = parsedate_to_datetime(refused.headers["date"]).timestamp()
    retry_at = parsedate_to_datetime(refused.headers["retry-after"]).timestamp()
    assert date == int(WALL + offset + 0.5)
    assert 1 <= retry_at - date <= 2  # what a client must compute: Retry-After against Date, never its own clock
    assert int(refused.headers["x-ratelimit-reset"]) == int(WALL + offset + 1)


# -- the create held past the client's timeout ---------------------------------------------------------------


async def test_a_slow_create_has_created_its_runs_before_the_late_answer(clock: FakeClock) -> None:
    async with simulated(clock, slow_after_create=1.0, slow_after_create_delay=12.0) as (client, app):
        created = await client.post("/v1/test-call-batches", json={**RUN, "run_count": 3})
        assert created.status_code == 201 and clock.slept == [12.0]
        assert len(app.model.truth()) == 3  # held after the handler: the runs exist while the client waits
        assert (await client.get("/v1/test-calls")).status_code == 200  # reads are never held
        assert (await client.post("/v1/test-calls", json={"target_id": 1})).status_code == 400  # nor refusals
        assert clock.slept == [12.0]
        assert (await client.post("/v1/test-calls", json=RUN)).status_code == 201
        stats = (await client.get("/_sim/stats")).json()
    assert clock.slept == [12.0, 12.0]
    assert stats["faults"]["slow_after_create"] == 2
    truth = {record.id: record for record in app.model.truth()}
    assert len(truth) == 4
    batch_run = truth[str(created.json()["run_ids"][0])]
    assert batch_run.submit_arrived == WALL and batch_run.created == WALL  # created when it arrived


async def test_no_slow_create_when_the_probability_is_zero_or_another_fault_answered(clock: FakeClock) -> None:
    async with simulated(clock, error_rate=1.0, error_status="503", slow_after_create=1.0) as (client, app):
        assert (await client.post("/v1/test-calls", json=RUN)).status_code == 503
        assert clock.slept == [] and app.model.truth() == []
    async with simulated(FakeClock(), latency=Distribution.fixed(0.01)) as (client, _):
        assert (await client.post("/v1/test-calls", json=RUN)).status_code == 201
        stats = (await client.get("/_sim/stats")).json()
    assert stats["faults"]["slow_after_create"] == 0


# -- everything at once ---------------------------------------------------------------------------------------


async def test_switches_combine_with_a_create_only_503_without_retry_after(clock: FakeClock) -> None:
    settings = {
        "list_order": "oldest",
        "page_cap": 2,
        "batch_name": "absent",
        "clock_offset": -6.0,
        "ids": "int",
        "rate_limit": 1.0,
        "rate_limit_burst": 2,
        "rate_limit_scope": "create",
        "rate_limit_status": 503,
        "retry_after": "none",
    }
    async with simulated(clock, **settings) as (client, app):
        first = await client.post("/v1/test-call-batches", json={**RUN, "run_count": 3, "name": "a"})
        second = await client.post("/v1/test-call-batches", json={**RUN, "run_count": 2, "name": "b"})
        refused = await client.post("/v1/test-call-batches", json={**RUN, "run_count": 5})
        assert (first.status_code, second.status_code, refused.status_code) == (201, 201, 503)
        assert "retry-after" not in refused.headers and refused.headers["date"]
        assert len(app.model.truth()) == 5  # the 503 created nothing
        pages = [await listed(client, limit=50, offset=offset) for offset in range(0, 8, 2)]  # reads: no limit
        batches = (await client.get("/v1/test-call-batches", params={"limit": 50})).json()
        clock.now = 1.0
        assert (await client.post("/v1/test-calls", json=RUN)).status_code == 201  # the limit has room again
        truth = (await client.get("/_sim/truth")).json()
    created = [*first.json()["run_ids"], *second.json()["run_ids"]]
    assert pages == [created[0:2], created[2:4], created[4:5], []]  # oldest first, two a page
    assert [batch["id"] for batch in batches] == [first.json()["id"], second.json()["id"]]
    assert all(type(batch["id"]) is int and "name" not in batch for batch in batches)
    assert [record["id"] for record in truth["runs"]][:5] == [str(run_id) for run_id in created]
    assert truth["runs"][0]["created"] == WALL
    assert parse_iso(first.json()["created_at"]) == WALL - 6.0
    assert parsedate_to_datetime(refused.headers["date"]).timestamp() == WALL - 6.0


# -- the real server on loopback -------------------------------------------------------------------------------


async def test_every_answer_over_the_wire_carries_one_date_on_the_servers_clock() -> None:
    offset = -3600.0
    config = SimConfig(
        clock_offset=offset, api_key="sk_live_test", rate_limit=0.01, rate_limit_burst=2, rate_limit_scope="create"
    )
    async with serve(config) as sim, httpx.AsyncClient(base_url=sim.base_url, trust_env=False) as client:
        answers = [
            await client.post("/v1/test-calls", json=RUN, headers=AUTH),
            await client.post("/v1/test-calls", content=b"{", headers=AUTH),
            await client.post("/v1/test-calls", json=RUN, headers=AUTH),  # refused: the burst of 2 is spent
            await client.get("/v1/test-calls", headers=AUTH),
            await client.get("/v1/test-calls"),  # no key
            await client.get("/v1/nothing", headers=AUTH),
            await client.get("/v1/healthz"),
            await client.get("/_sim/truth"),
        ]
        now = time.time()
    assert [answer.status_code for answer in answers] == [201, 400, 429, 200, 401, 404, 200, 200]
    for answer in answers:
        dates = answer.headers.get_list("date")
        assert len(dates) == 1, answer.headers  # ours only: uvicorn's own (true) Date is off
        assert dates[0].endswith(" GMT") and dates[0][3:5] == ", "  # IMF-fixdate
        assert abs(parsedate_to_datetime(dates[0]).timestamp() - (now + offset)) <= 3


async def test_a_client_that_times_out_on_a_slow_create_finds_its_runs_in_the_truth() -> None:
    config = SimConfig(slow_after_create=1.0, slow_after_create_delay=0.5, ids="int")
    async with serve(config) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, headers=AUTH, trust_env=False, timeout=0.1) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/v1/test-call-batches", json={**RUN, "run_count": 3, "stagger_seconds": 0})
            listed_runs = (await client.get("/v1/test-calls")).json()  # what reconciling before resending finds
        truth = sim.model.truth()
    assert len(truth) == 3 and {str(run["id"]) for run in listed_runs} == {record.id for record in truth}
    assert all(record.batch_id == truth[0].batch_id is not None for record in truth)


@asynccontextmanager
async def recording() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A loopback receiver keeping every POST's headers and body; yields its URL and the list."""
    received: list[tuple[dict[str, str], bytes]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        received.append(({k.decode().lower(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serve_asgi(app, "127.0.0.1", 0, what="the test receiver") as (host, port):
        yield base_url_of(host, port) + "/hooks", received


async def test_webhooks_carry_integer_ids_and_the_servers_clock() -> None:
    offset = -120.0
    async with recording() as (url, received):
        config = SimConfig(webhook_url=url, webhook_secret=SECRET, clock_offset=offset, seed=2)
        async with (
            serve(config) as sim,
            httpx.AsyncClient(base_url=sim.base_url, headers=AUTH, trust_env=False) as client,
        ):
            created = (await client.post("/v1/test-calls", json=RUN)).json()
            with anyio.fail_after(5):
                while len(received) < 2:  # test-call.completed, then call.graded
                    await anyio.sleep(0.01)
            truth = sim.model.truth()
    now = time.time()
    completed = next(orjson.loads(body) for _, body in received if b"test-call.completed" in body)
    run = completed["data"]["test_call_run"]  # the nested payload, the default
    assert run["id"] == created["id"] and type(created["id"]) is int
    assert parse_iso(run["completed_at"]) == pytest.approx(truth[0].completed + offset, abs=0.001)
    for headers, _ in received:
        unix = int(headers[V2_HEADER.lower()].split(",")[0].removeprefix("t="))
        assert abs(unix - (now + offset)) <= 3  # signed at the server's time
