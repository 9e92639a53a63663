"""The webhook receiver over HTTP: what a sender gets back, and what reaches stressor."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import orjson
import pytest

from stressor.asgi_server import GRACEFUL_SHUTDOWN_S
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
def receiver(recorder: Recorder, ticks: Iterator[int], notices: list[str]) -> WebhookReceiver:
    return WebhookReceiver(
        [SECRET, OLD_SECRET],
        recorder,
        clock_ns=lambda: next(ticks),
        wall=lambda: NOW,
        max_body=4096,
        notice=notices.append,
    )


@pytest.fixture
def notices() -> list[str]:
    return []


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
        + stats.slow_body
        + stats.wrong_path
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


async def test_a_delivery_to_another_path_is_404_counted_as_wrong_path_and_said_once(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder, notices: list[str]
) -> None:
    astray = [
        await client.post("http://stressor.test/hooks", content=COMPLETED, headers=v2(COMPLETED, target="/hooks")),
        await client.post("http://stressor.test/hooks/", content=COMPLETED, headers=v2(COMPLETED)),
    ]
    get = await client.get(URL)
    put = await client.put(URL, content=COMPLETED)
    assert [response.status_code for response in astray] == [404, 404]
    assert (get.status_code, put.status_code) == (405, 405)
    assert get.headers["allow"] == "POST"
    stats = receiver.stats()
    assert (stats.received, stats.wrong_path, stats.rejected_route) == (2, 2, 2)
    assert outcomes(stats) == stats.received
    assert recorder.events == []
    [line] = notices  # the first stray delivery is said, not every one
    assert "'/hooks'" in line and "/webhooks" in line and "wrong_path" in line


async def test_a_stray_path_is_quoted_escaped_and_cut_short_in_the_notice(
    client: httpx.AsyncClient, notices: list[str]
) -> None:
    # a terminal escape sequence in a path a stranger chose must not reach the user's terminal as one
    await client.post("http://stressor.test/x%1b%5b31m" + "y" * 500, content=COMPLETED, headers=v2(COMPLETED))
    [line] = notices
    assert "\x1b" not in line
    assert r"'/x\x1b[31myyy" in line
    assert "y" * 200 not in line


async def test_the_public_urls_path_is_served_beside_webhooks_even_through_a_rewriting_proxy(
    recorder: Recorder, notices: list[str]
) -> None:
    receiver = WebhookReceiver(
        SECRET, recorder, wall=lambda: NOW, public_url="https://tunnel.example/hooks?src=ci", notice=notices.append
    )
    assert receiver.paths == ("/hooks", "/webhooks")
    graded = graded_body("grader-fast", 0.5)
    failed = event_body("test-call.completed", {"test_call_run": {"id": "tc_2", "status": "failed"}})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), base_url="http://127.0.0.1") as client:
        # straight to the public path, as the sender was told
        direct = await client.post("/hooks?src=ci", content=COMPLETED, headers=v2(COMPLETED, target="/hooks?src=ci"))
        # a proxy rewrote /hooks to /webhooks: V2 still signs what the sender sent
        rewritten = await client.post("/webhooks", content=graded, headers=v2(graded, target="/hooks?src=ci"))
        # signed for no URL of ours: still refused
        forged = await client.post("/webhooks", content=failed, headers=v2(failed, target="/elsewhere"))
        stray = await client.post("/elsewhere", content=failed, headers=v2(failed, target="/elsewhere"))
    assert (direct.status_code, rewritten.status_code, forged.status_code, stray.status_code) == (204, 204, 401, 404)
    assert [type(event) for event, _ in recorder.events] == [RunCompleted, CallGraded]
    stats = receiver.stats()
    assert (stats.accepted, dict(stats.bad_signature), stats.wrong_path) == (2, {"mismatch": 1}, 1)
    [line] = notices
    assert "'/elsewhere'" in line and "/hooks, /webhooks" in line


def test_a_public_url_that_is_not_http_is_refused(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="public URL"):
        WebhookReceiver(SECRET, recorder, public_url="ftp://tunnel.example/hooks")


async def test_a_completion_nested_as_the_docs_handler_reads_it_is_taken(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    run = orjson.loads(COMPLETED)["data"]
    nested = event_body("test-call.completed", {"test_call_run": run})
    assert (await client.post(URL, content=nested, headers=v2(nested))).status_code == 204
    [(event, _)] = recorder.events
    assert isinstance(event, RunCompleted)
    assert (event.run_id, event.status, event.call_id) == ("tc_1", "completed", "call_1")
    # the same run placed directly under data is the same event: a duplicate, acknowledged
    assert (await client.post(URL, content=COMPLETED, headers=v2(COMPLETED))).status_code == 204
    assert (receiver.stats().accepted, receiver.stats().duplicates) == (1, 1)


async def test_a_wrong_shape_is_400_with_the_reason_and_said_once(
    client: httpx.AsyncClient, receiver: WebhookReceiver, notices: list[str]
) -> None:
    shapeless = b'{"type":"test-call.completed","data":[]}'
    runless = b'{"type":"test-call.completed","data":{"run":{"id":"tc_1"}}}'
    answers = [await client.post(URL, content=raw, headers=v2(raw)) for raw in (shapeless, runless)]
    assert [answer.status_code for answer in answers] == [400, 400]
    assert "test_call_run" in answers[1].json()["detail"]
    assert receiver.stats().bad_shape == 2
    [line] = notices
    assert "400" in line and "bad_shape" in line


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


async def test_a_client_gone_mid_body_is_counted_not_judged_and_said_once(recorder: Recorder) -> None:
    notices: list[str] = []
    receiver = WebhookReceiver(SECRET, recorder, wall=lambda: NOW, notice=notices.append)
    for _ in range(2):
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
    assert (stats.incomplete, stats.bad_signature_total, stats.received) == (2, 0, 2)
    [line] = notices
    assert "went away" in line and "incomplete" in line


class Trickle:
    """A sender that sends the head and the first bytes of a delivery, then nothing more (``stuck`` is set once
    the receiver waits for the rest); what the receiver answers is kept in ``sent``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.stuck = anyio.Event()
        self._first = True

    async def receive(self) -> dict[str, Any]:
        if self._first:
            self._first = False
            return {"type": "http.request", "body": COMPLETED[:10], "more_body": True}
        self.stuck.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def post(self, receiver: WebhookReceiver) -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/webhooks",
            "raw_path": b"/webhooks",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in v2(COMPLETED).items()],
        }
        await receiver(scope, self.receive, self.send)

    @property
    def status(self) -> int | None:
        return self.sent[0]["status"] if self.sent else None

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"]) if self.sent else {}


async def test_a_body_slower_than_the_timeout_is_408_counted_as_slow_body_and_said_once(recorder: Recorder) -> None:
    notices: list[str] = []
    receiver = WebhookReceiver(SECRET, recorder, wall=lambda: NOW, body_timeout_s=0.05, notice=notices.append)
    slow = [Trickle(), Trickle()]
    async with anyio.create_task_group() as senders:
        for sender in slow:
            senders.start_soon(sender.post, receiver)
    assert [sender.status for sender in slow] == [408, 408]
    assert slow[0].headers[b"connection"] == b"close"  # the rest of the body is never read
    stats = receiver.stats()
    assert (stats.received, stats.slow_body) == (2, 2)
    assert outcomes(stats) == stats.received
    assert recorder.events == []
    [line] = notices
    assert "408" in line and "slow_body" in line and "0.05 s" in line


async def test_close_takes_the_figures_cuts_bodies_still_arriving_and_refuses_what_comes_later(
    client: httpx.AsyncClient, receiver: WebhookReceiver, recorder: Recorder, notices: list[str]
) -> None:
    assert (await client.post(URL, content=COMPLETED, headers=v2(COMPLETED))).status_code == 204
    trickle = Trickle()
    async with anyio.create_task_group() as senders:
        senders.start_soon(trickle.post, receiver)
        await trickle.stuck.wait()
        figures = receiver.close()
    # the delivery still arriving is counted once, as slow_body, and not acknowledged
    assert trickle.status == 503
    assert (figures.received, figures.accepted, figures.slow_body) == (2, 1, 1)
    assert outcomes(figures) == figures.received
    graded = graded_body("grader-full", 0.9)
    late = await client.post(URL, content=graded, headers=v2(graded))
    assert late.status_code == 503  # never a 2xx the figures do not hold: the sender retries it
    assert late.headers["retry-after"] == "60"
    assert [type(event) for event, _ in recorder.events] == [RunCompleted]
    after = receiver.stats()
    assert (after.received, after.accepted, after.refused_closed) == (2, 1, 1)
    assert receiver.close() == after  # closing again changes nothing
    assert len(notices) == 2
    assert "1 delivery was still arriving" in notices[0] and "slow_body" in notices[0]
    assert "503" in notices[1] and "after the run's figures were taken" in notices[1]


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


def head(length: int, path: str = "/webhooks") -> bytes:
    signature = sign_v2(SECRET, int(time.time()), "POST", path, COMPLETED)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{V2_HEADER}: {signature}\r\n\r\n"
    ).encode()


async def trickle(host: str, port: int, answers: list[bytes], every_s: float = 0.05) -> None:
    """A raw sender that sends the head and a byte of body every ``every_s``, never the last one, and keeps
    whatever the receiver answers until it closes the connection."""
    async with await anyio.connect_tcp(host, port) as stream, anyio.create_task_group() as dripping:

        async def drip() -> None:
            await stream.send(head(len(COMPLETED)) + COMPLETED[:10])
            for byte in COMPLETED[10:-1]:
                await anyio.sleep(every_s)
                try:
                    await stream.send(bytes([byte]))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    return

        dripping.start_soon(drip)
        answer = b""
        try:
            while True:
                answer += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
        dripping.cancel_scope.cancel()
    answers.append(answer)


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.01)


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.e2e
async def test_slow_bodies_still_arriving_at_the_end_end_quietly_and_at_once(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    notices: list[str] = []
    receiver = WebhookReceiver(SECRET, recorder, notice=notices.append)
    answers: list[bytes] = []
    async with anyio.create_task_group() as senders:
        async with serve_receiver(receiver) as running:
            for _ in range(20):
                senders.start_soon(trickle, running.host, running.port, answers)
            await until(lambda: receiver.stats().received == 20)
            leaving = time.monotonic()
        left_after_s = time.monotonic() - leaving
    # before the fix: uvicorn waited out its 2 s graceful shutdown, then cancelled the 20 requests and logged
    # each as "Exception in ASGI application" with a traceback
    assert left_after_s < GRACEFUL_SHUTDOWN_S
    assert server_errors(caplog) == []
    assert len(answers) == 20 and all(answer.startswith(b"HTTP/1.1 503 ") for answer in answers), answers[:1]
    stats = receiver.stats()
    assert (stats.received, stats.slow_body, stats.accepted) == (20, 20, 0)
    [line] = notices
    assert "20 deliveries were still arriving" in line


@pytest.mark.e2e
async def test_a_body_trickling_past_the_timeout_is_answered_408_and_the_connection_closed(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = WebhookReceiver(SECRET, recorder, body_timeout_s=0.3)
    answers: list[bytes] = []
    async with serve_receiver(receiver) as running:
        await trickle(running.host, running.port, answers)
        stats = receiver.stats()
    [answer] = answers
    assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower()
    assert (stats.received, stats.slow_body) == (1, 1)
    assert server_errors(caplog) == []


@pytest.mark.e2e
async def test_a_body_cut_by_its_sender_is_counted_as_incomplete_quietly(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    notices: list[str] = []
    receiver = WebhookReceiver(SECRET, recorder, notice=notices.append)
    async with serve_receiver(receiver) as running:
        for sent in range(1, 4):
            async with await anyio.connect_tcp(running.host, running.port) as stream:
                await stream.send(head(len(COMPLETED)) + COMPLETED[:20])
                await until(lambda: receiver.stats().received == sent)  # noqa: B023 (awaited at once)
        await until(lambda: receiver.stats().incomplete == 3)
    stats = receiver.stats()
    assert (stats.received, stats.incomplete, stats.bad_signature_total) == (3, 3, 0)
    assert len(notices) == 1
    assert server_errors(caplog) == []


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
