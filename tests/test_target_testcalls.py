"""The test-calls target on precise HTTP answers (respx): what it sends, how it reads answers."""

from __future__ import annotations

from collections import Counter

import anyio
import httpx
import orjson
import pytest
import respx

from stressor.profile import RunRequest
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmitError, SubmittedRun, TargetUnavailable
from stressor.targets.testcalls import TestCallsTarget
from stressor.timestamps import parse_iso

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:9"
KEY = "sk_live_abcdefghijklmnop1234"


class Log:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


def target(log: Log, **options: object) -> TestCallsTarget:
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
        "name": "stressor t #3",
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
    ("status", "body", "cause", "fatal", "words"),
    [
        (401, {"detail": "Invalid API key"}, "http_401", True, "API key was refused"),
        (402, {"detail": "Balance is zero"}, "http_402", True, "balance is at zero"),
        (400, {"run_count": ["must be <= 20"]}, "http_400", True, "run_count"),
        (503, {"detail": "busy"}, "http_503", False, "answered 503"),
        (500, "oops", "http_500", False, "answered 500"),
        (201, "not json", "bad_response", False, "non-JSON"),
        (201, [1, 2], "bad_response", False, "not an object"),
        (201, {"id": "tcb_1", "run_ids": ["only-one"]}, "bad_response", False, "right number of run_ids"),
    ],
)
async def test_submit_errors_are_classified(
    respx_mock: respx.MockRouter, status: int, body: object, cause: str, fatal: bool, words: str
) -> None:
    content = body.encode() if isinstance(body, str) else orjson.dumps(body)
    respx_mock.post(f"{BASE}/v1/test-call-batches").respond(status, content=content)
    with pytest.raises(SubmitError) as info:
        await target(Log()).submit(ORDER)
    assert (info.value.cause, info.value.fatal) == (cause, fatal)
    assert words in info.value.message
    assert KEY not in info.value.message


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (httpx.ConnectError("refused"), "connect"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.RemoteProtocolError("cut"), "transport"),
    ],
)
async def test_submit_transport_failures_are_not_retried(
    respx_mock: respx.MockRouter, error: Exception, cause: str
) -> None:
    route = respx_mock.post(f"{BASE}/v1/test-call-batches").mock(side_effect=error)
    log = Log()
    with pytest.raises(SubmitError) as info:
        await target(log).submit(ORDER)
    assert info.value.cause == cause
    assert route.call_count == 1  # a second POST could bill a second call
    assert log.counts == {f"submit {cause}": 1}


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
    assert log.counts["poll_batch bad_response"] == 2


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


async def test_check_says_why_a_target_cannot_be_used(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v1/healthz").respond(200, json={"ok": True})
    respx_mock.get(f"{BASE}/v1/test-calls").respond(401, json={"detail": "bad key"})
    with pytest.raises(TargetUnavailable, match="API key was refused"):
        await target(Log()).check()
    respx_mock.get(f"{BASE}/v1/healthz").mock(side_effect=httpx.ConnectError("Connection refused"))
    with pytest.raises(TargetUnavailable, match=r"cannot reach http://127.0.0.1:9: Connection refused"):
        await target(Log()).check()


def test_the_key_never_shows_in_the_repr() -> None:
    assert KEY not in repr(target(Log()))
    assert "sk_live_...1234" in repr(target(Log()))
