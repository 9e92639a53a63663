"""The webhook receiver over HTTP: what a sender gets back, and what reaches stressor."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from stressor.loopback import is_loopback
from stressor.webhooks.events import CallGraded, RunCompleted, WebhookEvent
from stressor.webhooks.receiver import ReceiverStats, WebhookReceiver
from stressor.webhooks.server import serve_receiver
from stressor.webhooks.signature import V1_HEADER, V2_HEADER, sign_v1, sign_v2

pytestmark = pytest.mark.anyio

SECRET = "whsec_receiver0123456789abcdWXYZ"
OLD_SECRET = "whsec_oldsecret000000000000QRST"
NOW = 1_764_441_849.0
URL = "http://stressor.test/webhooks"


def event_body(kind: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "data": data}, option=orjson.OPT_SORT_KEYS)


COMPLETED = event_body(
    "test-call.completed",
    {
        "id": "tc_1",
        "status": "completed",
        "call_id": "call_1",
        "error_message": "",
        "batch_id": None,
        "created_at": "2025-11-29T18:40:00.000Z",
        "started_at": "2025-11-29T18:40:01.000Z",
        "completed_at": "2025-11-29T18:44:00.000Z",
    },
)


def graded_body(model: str, score: float) -> bytes:
    return event_body(
        "call.graded",
        {"call_id": "call_1", "grade": {"score": score, "status": "completed", "grader_model": model}},
    )


def v2(body: bytes, t: float = NOW, secret: str = SECRET, target: str = "/webhooks") -> dict[str, str]:
    return {V2_HEADER: sign_v2(secret, int(t), "POST", target, body), "content-type": "application/json"}


class Recorder:
    """The ``on_event`` callback: keeps what arrived; can be told to fail."""

    def __init__(self) -> None:
        self.events: list[tuple[WebhookEvent, int]] = []
        self.fail_next = False

    def __call__(self, event: WebhookEvent, received_ns: int) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the engine choked")
        self.events.append((event, received_ns))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def ticks() -> Iterator[int]:
    return itertools.count(1_000_000_000, 1_000)


@pytest.fixture
def receiver(recorder: Recorder, ticks: Iterator[int]) -> WebhookReceiver:
    return WebhookReceiver(
        [SECRET, OLD_SECRET], recorder, clock_ns=lambda: next(ticks), wall=lambda: NOW, max_body=4096
    )


@pytest.fixture
async def client(receiver: WebhookReceiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), trust_env=False) as c:
        yield c


def outcomes(stats: ReceiverStats) -> int:
    return (
        stats.accepted
        + stats.duplicates
        + stats.replayed
        + stats.unknown_type
        + stats.bad_json
        + stats.bad_shape
        + stats.too_large
        + stats.incomplete
        + stats.callback_errors
        + stats.bad_signature_total
    )


# -- the happy path ----------------------------------------------------------------------------------------


async def test_a_signed_completion_is_answered_fast_and_handed_over(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    response = await client.post(URL, content=COMPLETED, headers=v2(COMPLETED))
    assert response.status_code == 204
    [(event, received_ns)] = recorder.events
    assert isinstance(event, RunCompleted)
    assert (event.run_id, event.status, event.call_id) == ("tc_1", "completed", "call_1")
    assert received_ns == 1_000_000_000  # stamped once, from the injected monotonic clock
    stats = receiver.stats()
    assert (stats.received, stats.accepted) == (1, 1)
    assert dict(stats.accepted_by_type) == {"test-call.completed": 1}


async def test_v1_and_rotated_secrets_are_accepted(client: httpx.AsyncClient, recorder: Recorder) -> None:
    old = await client.post(URL, content=COMPLETED, headers=v2(COMPLETED, secret=OLD_SECRET))
    graded = graded_body("grader-fast", 80)
    v1 = await client.post(URL, content=graded, headers={V1_HEADER: sign_v1(SECRET, graded)})
    assert (old.status_code, v1.status_code) == (204, 204)
    assert [type(event) for event, _ in recorder.events] == [RunCompleted, CallGraded]
    grade = recorder.events[1][0]
    assert isinstance(grade, CallGraded)
    assert grade.score == pytest.approx(0.8)


async def test_a_query_string_is_part_of_what_v2_signs(client: httpx.AsyncClient, recorder: Recorder) -> None:
    signed = v2(COMPLETED, target="/webhooks?source=ci")
    assert (await client.post(URL + "?source=ci", content=COMPLETED, headers=signed)).status_code == 204
    moved = v2(COMPLETED, target="/webhooks")
    assert (await client.post(URL + "?source=ci", content=COMPLETED, headers=moved)).status_code == 401
    assert len(recorder.events) == 1


# -- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {V2_HEADER: "t=oops"},
        {V1_HEADER: "0" * 64},
        {V2_HEADER: sign_v2("whsec_attacker", int(NOW), "POST", "/webhooks", COMPLETED)},
    ],
    ids=["missing", "malformed", "mismatch-v1", "mismatch-v2"],
)
async def test_a_bad_signature_is_401_and_nothing_is_handed_over(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder, headers: dict[str, str]
) -> None:
    response = await client.post(URL, content=COMPLETED, headers=headers)
    assert response.status_code == 401
    assert recorder.events == []
    assert receiver.stats().bad_signature_total == 1


async def test_the_body_is_not_parsed_before_the_signature_is_checked(
    client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    junk = b"{not json at all"
    forged = await client.post(URL, content=junk, headers=v2(junk, secret="whsec_attacker"))
    assert forged.status_code == 401  # not 400: a stranger learns nothing about our parser
    signed = await client.post(URL, content=junk, headers=v2(junk))
    assert signed.status_code == 400
    stats = receiver.stats()
    assert dict(stats.bad_signature) == {"mismatch": 1}
    assert stats.bad_json == 1


async def test_stale_and_future_deliveries_are_refused_by_reason(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    stale = await client.post(URL, content=COMPLETED, headers=v2(COMPLETED, t=NOW - 301))
    early = await client.post(URL, content=COMPLETED, headers=v2(COMPLETED, t=NOW + 301))
    assert (stale.status_code, early.status_code) == (401, 401)
    assert dict(receiver.stats().bad_signature) == {"expired": 1, "future": 1}
    assert recorder.events == []


async def test_a_bad_v2_is_not_rescued_by_a_good_v1(client: httpx.AsyncClient, recorder: Recorder) -> None:
    headers = {**v2(COMPLETED, t=NOW - 3600), V1_HEADER: sign_v1(SECRET, COMPLETED)}
    assert (await client.post(URL, content=COMPLETED, headers=headers)).status_code == 401
    assert recorder.events == []


async def test_v1_can_be_refused_once_v2_is_required(recorder: Recorder) -> None:
    strict = WebhookReceiver(SECRET, recorder, wall=lambda: NOW, require_v2=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=strict)) as client:
        v1 = await client.post(URL, content=COMPLETED, headers={V1_HEADER: sign_v1(SECRET, COMPLETED)})
        good = await client.post(URL, content=COMPLETED, headers=v2(COMPLETED))
    assert (v1.status_code, good.status_code) == (401, 204)
    assert dict(strict.stats().bad_signature) == {"v2_required": 1}


async def test_an_oversized_body_is_413_and_never_handed_over(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    big = event_body("test-call.completed", {"id": "tc_big", "status": "completed", "pad": "x" * 5000})
    declared = await client.post(URL, content=big, headers=v2(big))

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    streamed = await client.post(URL, content=stream(), headers=v2(b"x" * 10_000))
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert "content-length" not in streamed.request.headers  # the streaming path, capped while reading
    assert receiver.stats().too_large == 2
    assert recorder.events == []


async def test_a_body_just_at_the_cap_is_fine(client: httpx.AsyncClient, recorder: Recorder) -> None:
    prefix = event_body("test-call.completed", {"id": "tc_2", "status": "completed", "pad": ""})
    padded = event_body("test-call.completed", {"id": "tc_2", "status": "completed", "pad": "x" * (4096 - len(prefix))})
    assert len(padded) == 4096
    assert (await client.post(URL, content=padded, headers=v2(padded))).status_code == 204
    assert len(recorder.events) == 1


async def test_other_paths_are_404_and_other_methods_405(client: httpx.AsyncClient, receiver: WebhookReceiver) -> None:
    elsewhere = await client.post("http://stressor.test/hooks", content=COMPLETED, headers=v2(COMPLETED))
    get = await client.get(URL)
    put = await client.put(URL, content=COMPLETED)
    assert elsewhere.status_code == 404
    assert (get.status_code, put.status_code) == (405, 405)
    assert get.headers["allow"] == "POST"
    stats = receiver.stats()
    assert (stats.rejected_route, stats.received) == (3, 0)


async def test_a_wrong_shape_is_400(client: httpx.AsyncClient, receiver: WebhookReceiver) -> None:
    shapeless = b'{"type":"test-call.completed","data":[]}'
    assert (await client.post(URL, content=shapeless, headers=v2(shapeless))).status_code == 400
    assert receiver.stats().bad_shape == 1


# -- at-least-once -----------------------------------------------------------------------------------------


async def test_the_same_delivery_twice_is_answered_both_times_and_processed_once(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    headers = v2(COMPLETED)
    first = await client.post(URL, content=COMPLETED, headers=headers)
    again = await client.post(URL, content=COMPLETED, headers=headers)
    assert (first.status_code, again.status_code) == (204, 204)  # 2xx, so the sender stops retrying
    assert len(recorder.events) == 1
    assert receiver.stats().replayed == 1


async def test_a_resend_signed_afresh_is_a_duplicate_answered_2xx(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    await client.post(URL, content=COMPLETED, headers=v2(COMPLETED, t=NOW - 60))
    resent = await client.post(URL, content=COMPLETED, headers=v2(COMPLETED, t=NOW))
    by_v1 = await client.post(URL, content=COMPLETED, headers={V1_HEADER: sign_v1(SECRET, COMPLETED)})
    assert (resent.status_code, by_v1.status_code) == (204, 204)
    assert len(recorder.events) == 1
    stats = receiver.stats()
    assert (stats.accepted, stats.duplicates, stats.replayed) == (1, 2, 0)


async def test_fast_and_full_grades_both_arrive_even_before_the_completion(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    fast, full = graded_body("grader-fast", 0.7), graded_body("grader-full", 90)
    for raw in (fast, full, fast, COMPLETED):
        assert (await client.post(URL, content=raw, headers=v2(raw))).status_code == 204
    kinds = [(type(event).__name__, getattr(event, "score", None)) for event, _ in recorder.events]
    assert kinds == [("CallGraded", 0.7), ("CallGraded", 0.9), ("RunCompleted", None)]


async def test_an_unknown_event_type_is_acknowledged_and_counted(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    raw = event_body("test-call-batch.completed", {"id": "tcb_1"})
    assert (await client.post(URL, content=raw, headers=v2(raw))).status_code == 204
    assert recorder.events == []
    assert receiver.stats().unknown_type == 1


async def test_a_failing_callback_leaves_the_event_for_the_senders_retry(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    headers = v2(COMPLETED)
    recorder.fail_next = True
    with pytest.raises(RuntimeError, match="choked"):  # a real server answers 500 here
        await client.post(URL, content=COMPLETED, headers=headers)
    retry = await client.post(URL, content=COMPLETED, headers=headers)
    assert retry.status_code == 204
    assert len(recorder.events) == 1
    stats = receiver.stats()
    assert (stats.callback_errors, stats.accepted, stats.replayed) == (1, 1, 0)


async def test_every_delivery_lands_in_exactly_one_count(client: httpx.AsyncClient, receiver: WebhookReceiver) -> None:
    graded = graded_body("grader-fast", 0.5)
    posts = [
        (COMPLETED, v2(COMPLETED)),
        (COMPLETED, v2(COMPLETED)),
        (COMPLETED, v2(COMPLETED, t=NOW + 1)),
        (graded, v2(graded)),
        (b"nope", v2(b"nope")),
        (b"nope", {}),
        (b"x" * 5000, v2(b"x" * 5000)),
    ]
    for raw, headers in posts:
        await client.post(URL, content=raw, headers=headers)
    stats = receiver.stats()
    assert stats.received == len(posts) == outcomes(stats)
    assert dict(stats.accepted_by_type) == {"test-call.completed": 1, "call.graded": 1}


async def _call_asgi(
    receiver: WebhookReceiver, messages: list[dict[str, Any]], on_read: list[Callable[[], object]]
) -> list[dict[str, Any]]:
    """Drive the ASGI app directly; ``on_read[i]()`` runs just before message i is handed over."""
    sent: list[dict[str, Any]] = []
    pending = list(zip(messages, on_read, strict=True))

    async def receive() -> dict[str, Any]:
        message, before = pending.pop(0)
        before()
        return message

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhooks",
        "raw_path": b"/webhooks",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in v2(COMPLETED).items()],
    }
    await receiver(scope, receive, send)
    return sent


async def test_received_is_stamped_when_the_last_body_byte_arrives(recorder: Recorder) -> None:
    now = {"ns": 0}
    receiver = WebhookReceiver(SECRET, recorder, clock_ns=lambda: now["ns"], wall=lambda: NOW)
    half = len(COMPLETED) // 2

    def later(ns: int) -> Callable[[], None]:
        return lambda: now.update(ns=ns)

    sent = await _call_asgi(
        receiver,
        [
            {"type": "http.request", "body": COMPLETED[:half], "more_body": True},
            {"type": "http.request", "body": COMPLETED[half:], "more_body": False},
        ],
        [later(10), later(20)],
    )
    assert sent[0]["status"] == 204
    assert [ns for _, ns in recorder.events] == [20]


async def test_a_client_gone_mid_body_is_counted_and_not_judged(recorder: Recorder) -> None:
    receiver = WebhookReceiver(SECRET, recorder, wall=lambda: NOW)
    sent = await _call_asgi(
        receiver,
        [
            {"type": "http.request", "body": COMPLETED[:10], "more_body": True},
            {"type": "http.disconnect"},
        ],
        [lambda: None, lambda: None],
    )
    assert sent == []
    stats = receiver.stats()
    assert (stats.incomplete, stats.bad_signature_total, stats.received) == (1, 0, 1)


def test_secrets_never_show_in_the_receivers_repr(receiver: WebhookReceiver) -> None:
    shown = repr(receiver)
    assert SECRET not in shown and OLD_SECRET not in shown
    assert "whsec_...WXYZ" in shown and "whsec_...QRST" in shown


@pytest.mark.parametrize("secrets", [[], [""], ""])
def test_a_receiver_needs_a_secret(secrets: list[str] | str, recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookReceiver(secrets, recorder)


# -- a real socket -----------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_serve_receiver_on_a_free_loopback_port(recorder: Recorder) -> None:
    receiver = WebhookReceiver(SECRET, recorder)  # real clocks
    async with serve_receiver(receiver) as running:
        assert running.url == f"http://127.0.0.1:{running.port}/webhooks"
        assert running.port > 0
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            headers = {V2_HEADER: sign_v2(SECRET, int(time.time()), "POST", "/webhooks", COMPLETED)}
            first = await client.post(running.url, content=COMPLETED, headers=headers)
            again = await client.post(running.url, content=COMPLETED, headers=headers)
            forged = await client.post(running.url, content=COMPLETED, headers={V1_HEADER: "0" * 64})
            huge = await client.post(running.url, content=b"x" * (2 * 1024 * 1024), headers=headers)
            after = await client.post(running.url, content=COMPLETED, headers=headers)
    assert (first.status_code, again.status_code, forged.status_code) == (204, 204, 401)
    assert (huge.status_code, after.status_code) == (413, 204)
    assert [event.type for event, _ in recorder.events] == ["test-call.completed"]
    stats = receiver.stats()
    assert (stats.accepted, stats.replayed, stats.bad_signature_total, stats.too_large) == (1, 2, 1, 1)


async def test_a_non_loopback_host_is_refused_unless_allowed(recorder: Recorder) -> None:
    receiver = WebhookReceiver(SECRET, recorder)
    with pytest.raises(ValueError, match="not loopback"):
        async with serve_receiver(receiver, host="0.0.0.0"):
            pass
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "0.0.0.0", "example.com")] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]
