"""The test-calls target on precise HTTP answers (respx): what it sends, how it reads answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import orjson
import pytest
import respx
from support.witness import create_witness

from stressor.governor import Governor
from stressor.polling import SCAN_PAGE_SIZE, PollSchedule
from stressor.profile import Limits, RunRequest
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmitError, SubmittedRun, TargetUnavailable
from stressor.targets.testcalls import TestCallsTarget
from stressor.targets.testcalls.lister import RunLister
from stressor.timestamps import parse_iso

# respx at the client level: it sees requests whatever transport the client uses (aiohttp by default).
pytestmark = [pytest.mark.anyio, pytest.mark.respx(using="httpx")]

BASE = "http://127.0.0.1:9"
KEY = "sk_live_abcdefghijklmnop1234"


class Log:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


TOKEN = "r1"  # the target's run token, in its batch names
FAST = Limits(backoff_base_s=0.001, backoff_cap_s=0.005)


def target(log: Log, **options: object) -> TestCallsTarget:
    options.setdefault("governor", Governor(FAST))
    options.setdefault("run_token", TOKEN)
    options.setdefault("reconcile_settle_s", 0.001)  # a create in doubt is looked for twice, this far apart
    options.setdefault("reconcile_deadline_s", 0.5)
    return TestCallsTarget(BASE, KEY, log, poll_interval_s=0.001, **options)  # type: ignore[arg-type]


ORDER = BatchOrder(seq=3, name="stressor t #3", request=RunRequest(target_id=7), prompts=("a", "b"), stagger_s=0.5)


def run_object(run_id: str, status: str, **fields: object) -> dict:
    return {
        "id": run_id,
        "status": status,
        "created_at": "2026-11-29T18:24:09.011Z",
        "started_at": "2026-11-29T18:24:10.113Z" if status != "queued" else None,
        "completed_at": "2026-11-29T18:25:04.822Z" if status in ("completed", "failed") else None,
        "error_message": "",
        **fields,
    }


async def test_submit_batch_sends_the_api_fields_and_reads_the_runs(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(
        201,
        json={
            "id": "tcb_1",
            "run_ids": ["tc_1", "tc_2"],
            "created_at": "2026-11-29T18:24:09.011Z",
            "estimated_cost_cents": 32,
            "status": "pending",
        },
    )
    log = Log()
    submission = await target(log).submit(ORDER)
    body = orjson.loads(route.calls[0].request.content)
    assert body == {
        "target_type": "agent",
        "target_id": 7,
        "direction": "outbound",
        "mode": "bot",
        "consent_to_charge": True,
        "name": "#3~r1 stressor t #3",
        "run_count": 2,
        "stagger_seconds": 0.5,
        "scenario_prompts": ["a", "b"],
    }
    assert route.calls[0].request.headers["authorization"] == f"Bearer {KEY}"
    assert submission.batch_id == "tcb_1"
    assert [(r.run_id, r.index, r.estimated_cost_cents) for r in submission.runs] == [
        ("tc_1", 0, 16),
        ("tc_2", 1, 16),
    ]
    assert submission.runs[0].created_at == parse_iso("2026-11-29T18:24:09.011Z")
    assert log.counts == {"submit ok": 1}


async def test_submit_single_run_accepts_any_2xx(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"{BASE}/v1/test-calls").respond(200, json=run_object("tc_9", "queued"))
    order = BatchOrder(seq=0, name="n", request=RunRequest(), prompts=("hello",), stagger_s=0)
    submission = await target(Log(), submit_mode="single").submit(order)
    assert orjson.loads(route.calls[0].request.content)["scenario_prompt"] == "hello"
    assert submission == Submission(None, (SubmittedRun("tc_9", 0, parse_iso("2026-11-29T18:24:09.011Z"), None),))


@pytest.mark.parametrize(
    ("status", "body", "cause", "words"),
    [
        (401, {"detail": "Invalid API key"}, "http_401", "API key was refused"),
        (402, {"detail": "Balance is zero"}, "http_402", "balance is at zero"),
        (403, {"detail": "no"}, "http_403", "may not create test calls"),
        (400, {"run_count": ["must be <= 20"]}, "http_400", "run_count"),
    ],
)
async def test_answers_that_no_retry_can_mend_are_fatal(
    respx_mock: respx.MockRouter, status: int, body: object, cause: str, words: str
) -> None:
    route = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(status, json=body)
    with pytest.raises(SubmitError) as info:
        await target(Log()).submit(ORDER)
    assert (info.value.cause, info.value.fatal) == (cause, True)
    assert words in info.value.message
    assert KEY not in info.value.message
    assert route.call_count == 1


NAME = f"#{ORDER.seq}~{TOKEN} {ORDER.name}"


NOW = datetime.now(UTC)


def paged(items: list[dict[str, object]]) -> Callable[[httpx.Request], httpx.Response]:
    """A list endpoint over ``items`` that honours ``limit`` and ``offset``."""

    def page(request: httpx.Request) -> httpx.Response:
        limit, offset = int(request.url.params["limit"]), int(request.url.params.get("offset", 0))
        return httpx.Response(200, json=items[offset : offset + limit])

    return page


def batch_now(**fields: object) -> dict[str, object]:
    """Our batch as the list shows it, created at the start of this test session."""
    return {"id": "tcb_1", "name": NAME, "run_ids": ["tc_1", "tc_2"], "created_at": NOW.isoformat(), **fields}


def listed_after(witness: dict[str, object], *newer: dict[str, object]) -> list[dict[str, object]]:
    """A newest-first batch list: ``newer`` above this client's earlier batch, one older batch below."""
    older = {"id": "tcb_old", "name": "older", "run_ids": ["x"], "created_at": "2020-01-01T00:00:00.000Z"}
    return [*newer, witness, older]


@pytest.mark.parametrize(
    "first_answer",
    [
        httpx.Response(500, text="oops"),
        httpx.Response(502),
        httpx.Response(201, content=b"not json"),
        httpx.Response(201, json=[1, 2]),
        httpx.Response(201, json={"id": "tcb_1", "run_ids": ["only-one"]}),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("cut"),
        httpx.ReadError("reset by peer"),
    ],
)
async def test_a_create_that_may_have_worked_is_reconciled_not_sent_again(
    respx_mock: respx.MockRouter, first_answer: object
) -> None:
    log = Log()
    the_target = target(log)
    witness = await create_witness(respx_mock, the_target, BASE, NOW - timedelta(seconds=1))
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(side_effect=[first_answer])
    listing = respx_mock.get(f"{BASE}/v1/test-call-batches").respond(
        200, json=listed_after(witness, {**batch_now(), "id": "tcb_x", "name": "other"}, batch_now())
    )
    submission = await the_target.submit(ORDER)
    assert post.call_count == 1  # a second POST could bill every run twice
    assert listing.call_count == 1
    assert submission.batch_id == "tcb_1"
    assert [run.run_id for run in submission.runs] == ["tc_1", "tc_2"]
    assert log.counts["submit reconciled"] == 1


async def test_a_create_proven_absent_is_sent_again(respx_mock: respx.MockRouter) -> None:
    log = Log()
    the_target = target(log)
    witness = await create_witness(respx_mock, the_target, BASE, NOW - timedelta(seconds=1))
    log.counts.clear()
    created = {**batch_now(), "estimated_cost_cents": 32}
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(
        side_effect=[httpx.Response(504), httpx.Response(201, json=created)]
    )
    respx_mock.get(f"{BASE}/v1/test-call-batches").respond(
        200, json=listed_after(witness, {**batch_now(), "id": "tcb_x", "name": "someone else's"})
    )
    submission = await the_target.submit(ORDER)
    assert post.call_count == 2
    assert submission.batch_id == "tcb_1"
    # a 504 may come from a gateway while the API goes on: absent on two listings a settle delay apart
    assert log.counts == {"submit http_504": 1, "reconcile ok": 2, "submit ok": 1}


async def test_without_anything_seen_before_it_a_lost_create_is_unknown(
    respx_mock: respx.MockRouter,
) -> None:
    # No preflight listing and no earlier create: nothing can prove it absent, so it is never sent again.
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(502)
    with pytest.raises(SubmitError, match="nothing this client saw before the create") as info:
        await target(Log()).submit(ORDER)
    assert info.value.cause == "unknown" and post.call_count == 1


async def test_when_reconciliation_cannot_tell_the_create_is_given_up(respx_mock: respx.MockRouter) -> None:
    the_target = target(Log())
    await create_witness(respx_mock, the_target, BASE, datetime.now(UTC))
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(500)
    respx_mock.get(f"{BASE}/v1/test-call-batches").respond(503)
    with pytest.raises(SubmitError, match=r"could not be read within 0\.5 s: not sent again") as info:
        await the_target.submit(ORDER)
    assert info.value.cause == "unknown"  # its runs may exist: counted apart, never guessed
    assert post.call_count == 1


async def test_a_single_run_like_the_lost_one_is_unknown_and_only_a_clear_list_allows_a_resend(
    respx_mock: respx.MockRouter,
) -> None:
    # Runs carry no name: a run like the lost one above this client's earlier run may be someone else's, so
    # it is never adopted; only a listing with nothing like it above the witness lets the create go again.
    order = BatchOrder(seq=0, name="n", request=RunRequest(target_id=7), prompts=("hello",), stagger_s=0)
    the_target = target(Log(), submit_mode="single")
    witness = await create_witness(respx_mock, the_target, BASE, datetime.now(UTC) - timedelta(seconds=1), single=True)
    ours = {"target_type": "agent", "target_id": 7, "scenario_prompt": "hello"}
    now = datetime.now(UTC).isoformat()
    post = respx_mock.post(f"{BASE}/v1/test-calls").mock(side_effect=httpx.ReadTimeout("slow"))
    respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=paged([run_object("tc_like", "queued", **ours, created_at=now), witness])
    )
    with pytest.raises(SubmitError, match="names cannot prove") as info:
        await the_target.submit(order)
    assert info.value.cause == "unknown" and post.call_count == 1
    other = {**ours, "target_id": 8}
    post.side_effect = [httpx.ReadTimeout("slow"), httpx.Response(201, json=run_object("tc_new", "queued"))]
    respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=paged([run_object("tc_other", "queued", **other, created_at=now), witness])
    )
    assert [run.run_id for run in (await the_target.submit(order)).runs] == ["tc_new"]


@pytest.mark.parametrize(
    ("error", "cause"),
    [(httpx.ConnectError("refused"), "connect"), (httpx.ConnectTimeout("no route"), "timeout")],
)
async def test_a_create_that_never_left_is_retried(respx_mock: respx.MockRouter, error: Exception, cause: str) -> None:
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(
        side_effect=[error, httpx.Response(201, json=batch_now())]
    )
    log = Log()
    assert (await target(log).submit(ORDER)).batch_id == "tcb_1"
    assert post.call_count == 2
    assert log.counts == {f"submit {cause}": 1, "submit ok": 1}


async def test_429_pauses_then_retries_in_obey_mode_and_is_final_in_stress_mode(respx_mock: respx.MockRouter) -> None:
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(201, json=batch_now())]
    )
    governor = Governor(FAST)
    assert (await target(Log(), governor=governor).submit(ORDER)).batch_id == "tcb_1"
    assert post.call_count == 2
    assert governor.retries == {"http_429": 1}
    assert governor.retry_after.count == 1

    respx_mock.post(f"{BASE}/v1/test-call-batches").respond(503, headers={"Retry-After": "1"})
    stress = Governor(replace(FAST, mode="stress"))
    with pytest.raises(SubmitError) as info:
        await target(Log(), governor=stress).submit(ORDER)
    assert info.value.cause == "http_503"
    assert stress.retries == {}
    assert stress.server_pause_s == 0


async def test_retries_stop_at_the_limit(respx_mock: respx.MockRouter) -> None:
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(503)
    with pytest.raises(SubmitError) as info:
        await target(Log(), governor=Governor(replace(FAST, max_retries=2))).submit(ORDER)
    assert info.value.cause == "http_503"
    assert post.call_count == 3


async def test_follow_polls_the_batch_and_lists_runs_only_when_runs_ended(
    respx_mock: respx.MockRouter,
) -> None:
    batch_answers = iter(
        [
            {"id": "tcb_1", "completed_runs": 0, "failed_runs": 0},
            {"id": "tcb_1", "completed_runs": 1, "failed_runs": 0},
            {"id": "tcb_1", "completed_runs": 1, "failed_runs": 0},
            {"id": "tcb_1", "completed_runs": 1, "failed_runs": 1},
        ]
    )
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").mock(
        side_effect=lambda request: httpx.Response(200, json=next(batch_answers))
    )
    list_answers = iter(
        [
            [
                run_object("tc_2", "in_progress"),
                run_object("tc_1", "completed"),
                run_object("other", "queued"),
            ],
            [run_object("tc_2", "failed", error_message="SIP 486 busy"), run_object("tc_1", "completed")],
        ]
    )
    list_route = respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=lambda request: httpx.Response(200, json=next(list_answers))
    )
    submission = Submission("tcb_1", (SubmittedRun("tc_1", 0, None, None), SubmittedRun("tc_2", 1, None, None)))
    ended: list[RunEnd] = []
    log = Log()
    with anyio.fail_after(5):
        await target(log).follow(submission, ended.append)
    assert [(e.run_id, e.status, e.error_message) for e in ended] == [
        ("tc_1", "completed", ""),
        ("tc_2", "failed", "SIP 486 busy"),
    ]
    assert ended[0].completed_at is not None and ended[0].started_at is not None
    assert list_route.call_count == 2  # not on the polls that showed no change
    assert log.counts == {"poll_batch ok": 4, "list_runs ok": 2}


async def test_polls_survive_errors_and_garbage(respx_mock: respx.MockRouter) -> None:
    answers = iter(
        [
            httpx.Response(503),
            httpx.Response(200, content=b"<html>"),
            httpx.Response(200, json={"completed_runs": "one"}),
            httpx.Response(200, json={"completed_runs": 1, "failed_runs": 0}),
        ]
    )
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").mock(side_effect=lambda request: next(answers))
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[run_object("tc_1", "completed"), "junk", {"id": True}])
    ended: list[RunEnd] = []
    log = Log()
    with anyio.fail_after(5):
        await target(log).follow(Submission("tcb_1", (SubmittedRun("tc_1", 0, None, None),)), ended.append)
    assert [e.run_id for e in ended] == ["tc_1"]
    assert log.counts["poll_batch http_503"] == 1
    assert log.counts["poll_batch bad_response"] == 1  # not JSON
    assert log.counts["poll_batch bad_shape"] == 1  # JSON, but no counts


async def test_lister_scans_once_for_every_follower_waiting(respx_mock: respx.MockRouter) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        runs = [run_object(f"tc_{offset + i}", "completed") for i in range(200)] if offset < 400 else []
        return httpx.Response(200, json=runs)

    route = respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=page)
    the_target = target(Log())
    found: dict[str, object] = {}

    async def look(ids: list[str]) -> None:
        found.update(await the_target._lister.lookup(dict.fromkeys(ids)))

    async with anyio.create_task_group() as tasks:
        for ids in (["tc_5"], ["tc_250"], ["tc_399", "tc_1"]):
            tasks.start_soon(look, ids)
    assert set(found) == {"tc_1", "tc_5", "tc_250", "tc_399"}
    assert route.call_count <= 4  # two pages per scan, at most two scans, not one scan per caller


async def test_lister_pages_through_small_pages_newest_first_and_parses_only_runs_asked_for(
    respx_mock: respx.MockRouter,
) -> None:
    asked: list[tuple[int, int]] = []

    def page(request: httpx.Request) -> httpx.Response:
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        asked.append((limit, offset))
        # runs newest first; one with an unreadable timestamp the lister need not parse
        runs = [run_object(f"tc_{i}", "completed", created_at="junk") for i in range(offset, min(offset + limit, 250))]
        return httpx.Response(200, json=runs)

    respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=page)
    found = await target(Log())._lister.lookup({"tc_3": None, "tc_180": None})
    assert set(found) == {"tc_3", "tc_180"}
    assert found["tc_180"].status == "completed" and found["tc_180"].completed_at is not None
    # consecutive pages until the deepest run asked for, no further
    assert asked == [(SCAN_PAGE_SIZE, offset) for offset in range(0, 181, SCAN_PAGE_SIZE)]


async def test_check_says_why_a_target_cannot_be_used(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v1/healthz").respond(200, json={"ok": True})
    respx_mock.get(f"{BASE}/v1/test-calls").respond(401, json={"detail": "bad key"})
    with pytest.raises(TargetUnavailable, match="API key was refused"):
        await target(Log()).check()
    respx_mock.get(f"{BASE}/v1/healthz").mock(side_effect=httpx.ConnectError("Connection refused"))
    with pytest.raises(TargetUnavailable, match=r"cannot reach http://127.0.0.1:9: Connection refused"):
        await target(Log()).check()


async def test_the_pre_flight_requests_are_counted_as_check(respx_mock: respx.MockRouter) -> None:
    # Issue 15: the two requests of the check went to the server but not into the results' ``requests``.
    respx_mock.get(f"{BASE}/v1/healthz").respond(200, json={"ok": True})
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[])
    respx_mock.get(f"{BASE}/v1/test-call-batches").respond(200, json=[])
    log = Log()
    await target(log).check()
    assert log.counts == {"check ok": 4}  # healthz, the key, the first page of each list
    respx_mock.get(f"{BASE}/v1/test-calls").respond(401, json={"detail": "bad key"})
    refused = Log()
    with pytest.raises(TargetUnavailable):
        await target(refused).check()
    assert refused.counts == {"check ok": 1, "check http_401": 1}
    respx_mock.get(f"{BASE}/v1/healthz").mock(side_effect=httpx.ConnectError("Connection refused"))
    unreachable = Log()
    with pytest.raises(TargetUnavailable):
        await target(unreachable).check()
    assert unreachable.counts == {"check connect": 3}  # a GET that changes nothing is tried again


def test_the_key_never_shows_in_the_repr() -> None:
    assert KEY not in repr(target(Log()))
    assert "sk_live_...1234" in repr(target(Log()))


def test_polls_slow_down_as_a_batch_ages_within_bounds() -> None:
    schedule = PollSchedule(interval_s=1.0, max_interval_s=5.0)
    assert [schedule.next_interval(age) for age in (0, 5, 20, 40, 400)] == [1.0, 1.0, 2.0, 4.0, 5.0]
    fixed = PollSchedule(interval_s=0.5, max_interval_s=0.5)
    assert {fixed.next_interval(age) for age in (0, 10, 1000)} == {0.5}


async def test_a_lister_looking_for_runs_of_known_age_pages_past_ten_pages_and_stops_at_older_ones() -> None:
    # Thousands of runs created per second: the run that ended sits below 2,500 newer ones.
    created = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    offsets: list[int] = []

    async def newest_first(purpose: str, path: str, params: dict[str, int]) -> tuple[object, int]:
        offsets.append(params["offset"])
        ages = range(params["offset"], params["offset"] + params["limit"])  # run i: created i ms before
        page = [
            run_object(f"tc_{i}", "completed", created_at=(created - timedelta(milliseconds=i)).isoformat())
            for i in ages
        ]
        return page, 0

    lister = RunLister(newest_first, max_pages=10, page_size=100)
    wanted_at = (created - timedelta(milliseconds=2_500)).timestamp()
    found = await lister.lookup({"tc_2500": wanted_at, "tc_missing": wanted_at})
    assert set(found) == {"tc_2500"}
    # past the tenth page, and not beyond the first page older than the wanted runs by a second (3,500 ms)
    assert offsets == list(range(0, 3_600, 100))
