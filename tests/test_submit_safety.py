"""Reconciling a create that may have worked (respx): the batch is looked for above this client's earlier create
(the witness), matched by its own name, found beyond the first page, looked for again before any resend, and
looked for through a 5xx burst."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import respx
from support.witness import create_witness

from stressor.governor import Governor
from stressor.profile import Limits, RunRequest
from stressor.targets.base import BatchOrder, SubmitError
from stressor.targets.testcalls.lister import LIST_PAGE_SIZE
from stressor.targets.testcalls.target import TestCallsTarget

pytestmark = [pytest.mark.anyio, pytest.mark.respx(using="httpx")]

BASE = "http://127.0.0.1:9"
KEY = "sk_live_abcdefghijklmnop1234"
FAST = Limits(backoff_base_s=0.001, backoff_cap_s=0.005)
ORDER = BatchOrder(seq=3, name="stressor t #3", request=RunRequest(target_id=7), prompts=("a", "b"), stagger_s=0.5)


class Log:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


def target(log: Log, **options: object) -> TestCallsTarget:
    options.setdefault("governor", Governor(FAST))
    options.setdefault("reconcile_settle_s", 0.001)
    options.setdefault("reconcile_deadline_s", 2.0)
    return TestCallsTarget(BASE, KEY, log, poll_interval_s=0.001, **options)  # type: ignore[arg-type]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def batch(batch_id: str, name: str, created: datetime, runs: int = 2) -> dict:
    return {
        "id": batch_id,
        "name": name,
        "run_ids": [f"{batch_id}_r{i}" for i in range(runs)],
        "created_at": iso(created),
    }


def paged(items: list[dict]) -> Callable[[httpx.Request], httpx.Response]:
    """A list endpoint over ``items`` that honours ``limit`` and ``offset``."""

    def page(request: httpx.Request) -> httpx.Response:
        limit, offset = int(request.url.params["limit"]), int(request.url.params.get("offset", 0))
        return httpx.Response(200, json=items[offset : offset + limit])

    return page


def sent_names(post: respx.Route) -> list[str]:
    return [orjson.loads(call.request.content)["name"] for call in post.calls]


async def test_each_target_names_its_batches_with_a_token_of_its_own() -> None:
    one, two = target(Log()), target(Log())
    assert one.run_token != two.run_token
    assert one.batch_name(ORDER) == f"#3~{one.run_token} stressor t #3"
    await one.aclose()
    await two.aclose()


async def test_a_batch_of_the_same_name_from_an_earlier_run_is_not_adopted(respx_mock: respx.MockRouter) -> None:
    now = datetime.now(UTC)
    the_target = target(Log(), run_token="today")
    witness = await create_witness(respx_mock, the_target, BASE, now - timedelta(seconds=1))
    created = batch("tcb_new", the_target.batch_name(ORDER), now)
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(201, json=created)]
    )
    stale = [
        batch("tcb_old_same_token", the_target.batch_name(ORDER), now - timedelta(hours=1)),  # below the witness
        batch("tcb_yesterday", ORDER.name, now - timedelta(days=1)),  # an earlier stressor run: no token
    ]
    listing = respx_mock.get(f"{BASE}/v1/test-call-batches").mock(side_effect=paged([witness, *stale]))
    submission = await the_target.submit(ORDER)
    assert submission.batch_id == "tcb_new"
    assert post.call_count == 2 and sent_names(post) == [the_target.batch_name(ORDER)] * 2
    assert listing.call_count == 2  # absent twice, a settle delay apart, before the create was sent again
    await the_target.aclose()


async def test_a_batch_beyond_the_first_page_is_found_and_not_created_again(respx_mock: respx.MockRouter) -> None:
    now = datetime.now(UTC)
    log = Log()
    the_target = target(log)
    witness = await create_witness(respx_mock, the_target, BASE, now - timedelta(milliseconds=1))
    log.counts.clear()
    newer = [batch(f"tcb_other{i}", f"someone else #{i}", now + timedelta(milliseconds=i)) for i in range(500)]
    ours = batch("tcb_ours", the_target.batch_name(ORDER), now)
    older = [batch(f"tcb_older{i}", f"older #{i}", now - timedelta(hours=1, seconds=i)) for i in range(300)]
    everything = [*reversed(newer), ours, witness, *older]  # newest first, ours at offset 500: the third page
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(side_effect=[httpx.Response(502)])
    listing = respx_mock.get(f"{BASE}/v1/test-call-batches").mock(side_effect=paged(everything))
    submission = await the_target.submit(ORDER)
    assert submission.batch_id == "tcb_ours"
    assert post.call_count == 1  # found, so never sent twice
    offsets = [int(call.request.url.params["offset"]) for call in listing.calls]
    limits = {int(call.request.url.params["limit"]) for call in listing.calls}
    assert offsets == [0, 200, 400] and limits == {LIST_PAGE_SIZE}  # read down to the witness, no further
    assert log.counts["submit reconciled"] == 1
    await the_target.aclose()


async def test_a_batch_seen_twice_while_the_list_shifts_is_one_batch(respx_mock: respx.MockRouter) -> None:
    # 150 batches are created between the reads of the first and the second page: the second page repeats the
    # end of the first, ours among it. One batch seen twice is ours, not two batches with its name.
    now = datetime.now(UTC)
    the_target = target(Log())
    witness = await create_witness(respx_mock, the_target, BASE, now - timedelta(milliseconds=1))
    ours = batch("tcb_ours", the_target.batch_name(ORDER), now)
    before = [batch(f"tcb_a{i}", f"someone #{i}", now + timedelta(milliseconds=i)) for i in range(199)]
    older = [batch(f"tcb_old{i}", f"old #{i}", now - timedelta(hours=1, seconds=i)) for i in range(300)]
    later = [batch(f"tcb_b{i}", f"someone later #{i}", now + timedelta(seconds=1, milliseconds=i)) for i in range(150)]
    pages = [[*reversed(before), ours], [*reversed(later), *reversed(before), ours, witness, *older][200:400]]
    assert any(item["id"] == "tcb_ours" for item in pages[1])  # the shift put it on the second page again
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(side_effect=[httpx.Response(502)])
    respx_mock.get(f"{BASE}/v1/test-call-batches").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    submission = await the_target.submit(ORDER)
    assert submission.batch_id == "tcb_ours"
    assert post.call_count == 1
    await the_target.aclose()


async def test_a_create_the_server_handles_late_is_adopted_not_sent_again(respx_mock: respx.MockRouter) -> None:
    # The POST timed out while the server held it; the first listing comes before the server handled it.
    now = datetime.now(UTC)
    the_target = target(Log())
    witness = await create_witness(respx_mock, the_target, BASE, now - timedelta(seconds=1))
    ours = batch("tcb_late", the_target.batch_name(ORDER), now)
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(side_effect=[httpx.ReadTimeout("held")])
    ancient = batch("tcb_ancient", "ancient", now - timedelta(days=1))  # the walk stops here: below the witness
    listing = respx_mock.get(f"{BASE}/v1/test-call-batches").mock(
        side_effect=[httpx.Response(200, json=[witness, ancient]), httpx.Response(200, json=[ours, witness, ancient])]
    )
    submission = await the_target.submit(ORDER)
    assert submission.batch_id == "tcb_late" and post.call_count == 1 and listing.call_count == 2
    await the_target.aclose()


async def test_the_listing_is_asked_again_through_a_burst_of_5xx(respx_mock: respx.MockRouter) -> None:
    now = datetime.now(UTC)
    the_target = target(Log())
    witness = await create_witness(respx_mock, the_target, BASE, now - timedelta(seconds=1))
    ours = batch("tcb_1", the_target.batch_name(ORDER), now)
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(500)
    burst = [httpx.Response(500)] * 12 + [httpx.Response(503, headers={"Retry-After": "0"})] * 3
    ancient = batch("tcb_ancient", "ancient", now - timedelta(days=1))
    answers = [*burst, httpx.Response(200, json=[ours, witness, ancient])]
    listing = respx_mock.get(f"{BASE}/v1/test-call-batches").mock(side_effect=answers)
    submission = await the_target.submit(ORDER)
    assert submission.batch_id == "tcb_1" and post.call_count == 1 and listing.call_count == 16
    await the_target.aclose()


async def test_a_list_whose_offset_is_ignored_cannot_prove_an_absence(respx_mock: respx.MockRouter) -> None:
    now = datetime.now(UTC)
    the_target = target(Log())
    await create_witness(respx_mock, the_target, BASE, now - timedelta(hours=1))
    full_page = [batch(f"tcb_{i}", f"other #{i}", now) for i in range(LIST_PAGE_SIZE)]
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(side_effect=[httpx.ReadTimeout("slow")])
    respx_mock.get(f"{BASE}/v1/test-call-batches").respond(200, json=full_page)
    with pytest.raises(SubmitError, match="could not be paged") as info:
        await the_target.submit(ORDER)
    assert info.value.cause == "unknown" and post.call_count == 1


async def test_a_single_run_like_the_lost_one_is_never_adopted_nor_sent_again(respx_mock: respx.MockRouter) -> None:
    now = datetime.now(UTC)
    order = BatchOrder(seq=0, name="n", request=RunRequest(target_id=7), prompts=("hello",), stagger_s=0)
    the_target = target(Log(), submit_mode="single")
    witness = await create_witness(respx_mock, the_target, BASE, now - timedelta(seconds=1), single=True)
    fields = {"target_type": "agent", "target_id": 7, "scenario_prompt": "hello", "status": "queued"}
    yesterday = {"id": "tc_old", **fields, "created_at": iso(now - timedelta(days=1))}
    like = {"id": "tc_like", **fields, "created_at": iso(now)}
    post = respx_mock.post(f"{BASE}/v1/test-calls").mock(side_effect=[httpx.ReadTimeout("held")])
    respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=[
            httpx.Response(200, json=[witness, yesterday]),
            httpx.Response(200, json=[like, witness, yesterday]),
        ]
    )
    with pytest.raises(SubmitError, match="names cannot prove") as info:
        await the_target.submit(order)
    assert info.value.cause == "unknown" and post.call_count == 1


@pytest.mark.parametrize(("stagger", "sent"), [(2.0, 2), (0.0, 0), (60.0, 60), (0.5, 0.5)])
async def test_a_whole_stagger_is_sent_as_an_integer(
    respx_mock: respx.MockRouter, stagger: float, sent: object
) -> None:
    created = {"id": "tcb_1", "run_ids": ["tc_1"], "created_at": iso(datetime.now(UTC))}
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(201, json=created)
    order = BatchOrder(seq=0, name="n", request=RunRequest(), prompts=("a",), stagger_s=stagger)
    the_target = target(Log())
    await the_target.submit(order)
    await the_target.aclose()
    value = orjson.loads(post.calls[0].request.content)["stagger_seconds"]
    assert value == sent and type(value) is type(sent)
    assert b'"stagger_seconds":%s' % str(sent).encode() in post.calls[0].request.content


async def test_a_batch_an_earlier_attempt_made_late_is_seen_and_nothing_is_guessed(
    respx_mock: respx.MockRouter,
) -> None:
    # Attempt 1 times out and two listings show nothing, so it is sent again; attempt 2 times out too. By then
    # the server has handled both: two batches carry the name, the first created well before attempt 2.
    start = datetime.now(UTC)
    the_target = target(Log())
    witness = await create_witness(respx_mock, the_target, BASE, start - timedelta(seconds=1))
    name = the_target.batch_name(ORDER)
    first, second = batch("tcb_a", name, start), batch("tcb_b", name, start + timedelta(seconds=30))
    ancient = batch("tcb_ancient", "ancient", start - timedelta(days=1))
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(
        side_effect=[httpx.ReadTimeout("held"), httpx.ReadTimeout("held again")]
    )
    respx_mock.get(f"{BASE}/v1/test-call-batches").mock(
        side_effect=[httpx.Response(200, json=[witness, ancient])] * 2
        + [httpx.Response(200, json=[second, first, witness, ancient])] * 4
    )
    with pytest.raises(SubmitError, match="2 items in the batch list carry its name") as info:
        await the_target.submit(ORDER)
    assert info.value.cause == "unknown" and post.call_count == 2  # neither adopted at random, no third POST
    await the_target.aclose()
