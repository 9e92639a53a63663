"""Bad answers from the server: each class is counted under its own outcome in ``requests``, logged once, and
the run goes on. Precise answers through respx; transport faults (cut-off bodies, trickling answers, resets,
undecodable bodies, DNS and TLS failures) on real loopback sockets."""

from __future__ import annotations

import shutil
import socket
import ssl
import struct
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import orjson
import pytest
import respx
from anyio.abc import SocketStream
from support.cli import stressor_here
from support.witness import create_witness

from stressor.engine import Engine
from stressor.governor import Governor
from stressor.metrics import Metrics, Outcome
from stressor.profile import Limits, RunRequest, parse_profile
from stressor.sim.config import SimConfig
from stressor.sim.server import serve
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmitError, SubmittedRun, TargetUnavailable
from stressor.targets.testcalls.requests import BODY_LIMIT, LIST_BODY_LIMIT
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.timestamps import ClockAnchor

# respx at the client level: it sees requests whatever transport the client uses (aiohttp by default).
pytestmark = [pytest.mark.anyio, pytest.mark.respx(using="httpx")]

BASE = "http://127.0.0.1:9"
KEY = "sk_live_0123456789abcdef0123456789abcdef"
LOGGER = "stressor.targets.testcalls.target"
FAST = Limits(backoff_base_s=0.001, backoff_cap_s=0.005)
TOKEN = "r1"  # the target's run token, in its batch names
ORDER = BatchOrder(seq=1, name="stressor bad #1", request=RunRequest(target_id=7), prompts=("a", "b"), stagger_s=0)
ONE = Submission("tcb_1", (SubmittedRun("tc_1", 0, None, None),))
# A batch created long before anything in these tests: listed below this client's own, it ends a walk there.
ANCIENT = {"id": "tcb_ancient", "name": "ancient", "run_ids": ["x"], "created_at": "2020-01-01T00:00:00.000Z"}


class Log:
    """A RequestLog that keeps the counts."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


def target(log: Log, base: str = BASE, **options: object) -> TestCallsTarget:
    options.setdefault("governor", Governor(FAST))
    options.setdefault("poll_interval_s", 0.001)
    options.setdefault("run_token", TOKEN)
    options.setdefault("reconcile_settle_s", 0.001)  # a create in doubt is looked for twice, this far apart
    return TestCallsTarget(base, KEY, log, **options)  # type: ignore[arg-type]


def run(run_id: str, status: str, **fields: object) -> dict[str, object]:
    return {"id": run_id, "status": status, "created_at": "2026-11-29T18:24:09.011Z", "error_message": "", **fields}


def batch(completed: int, failed: int = 0, **fields: object) -> dict[str, object]:
    return {"id": "tcb_1", "status": "in_progress", "completed_runs": completed, "failed_runs": failed, **fields}


def logged(caplog: pytest.LogCaptureFixture, kind: str) -> list[str]:
    """The log lines about one class of bad answer."""
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.getMessage().find(f"[{kind}]") >= 0]


async def follow(the_target: TestCallsTarget, submission: Submission = ONE) -> list[RunEnd]:
    ended: list[RunEnd] = []
    with anyio.fail_after(10):
        await the_target.follow(submission, ended.append)
    return ended


def answers(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect: the responses in turn, then the last one for ever."""
    queue = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(current, Exception):
            raise current
        return current

    return answer


# ---------------------------------------------------------------------------------------------- precise answers


async def test_a_body_that_is_not_json_is_bad_response(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").mock(
        side_effect=answers(
            httpx.Response(200, content=b"<html>oops</html>"),
            httpx.Response(200, content=b"<html>again</html>"),
            httpx.Response(200, json=batch(1)),
        )
    )
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[run("tc_1", "completed")])
    log = Log()
    ended = await follow(target(log))
    assert [e.run_id for e in ended] == ["tc_1"]
    assert log.counts["poll_batch bad_response"] == 2
    assert log.counts["poll_batch ok"] == 1  # one count per request: a bad answer is not also "ok"
    assert len(logged(caplog, "bad_response")) == 1  # logged the first time only
    assert "GET /v1/test-call-batches/tcb_1" in logged(caplog, "bad_response")[0]


@pytest.mark.parametrize(
    ("route", "bad", "label"),
    [
        ("/v1/test-call-batches/tcb_1", [1, 2, 3], "poll_batch bad_shape"),  # a list where an object belongs
        ("/v1/test-call-batches/tcb_1", {"id": "tcb_1", "completed_runs": 1}, "poll_batch bad_shape"),  # missing
        ("/v1/test-call-batches/tcb_1", batch(-1), "poll_batch bad_shape"),  # not a count
        ("/v1/test-calls", {"results": []}, "list_runs bad_shape"),  # an object where a list belongs
        ("/v1/test-calls", [run("tc_1", "completed"), "junk", {"id": True}], "list_runs bad_shape"),  # junk items
    ],
)
async def test_json_of_the_wrong_shape_is_bad_shape(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, route: str, bad: object, label: str
) -> None:
    good = batch(1) if "batches" in route else [run("tc_1", "completed")]
    respx_mock.get(f"{BASE}{route}").mock(
        side_effect=answers(httpx.Response(200, json=bad), httpx.Response(200, json=good))
    )
    other = "/v1/test-calls" if "batches" in route else "/v1/test-call-batches/tcb_1"
    respx_mock.get(f"{BASE}{other}").respond(200, json=[run("tc_1", "completed")] if "batches" in route else batch(1))
    log = Log()
    ended = await follow(target(log))
    assert [e.run_id for e in ended] == ["tc_1"]  # the junk item did not stop the run being found
    assert log.counts[label] >= 1
    assert len(logged(caplog, "bad_shape")) == 1


async def test_unknown_fields_are_ignored(respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture) -> None:
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(200, json=batch(1, surprise={"x": [1]}))
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[run("tc_1", "completed", new_field=True)])
    log = Log()
    assert [e.run_id for e in await follow(target(log))] == ["tc_1"]
    assert log.counts == {"poll_batch ok": 1, "list_runs ok": 1}
    assert not caplog.records


async def test_an_unknown_status_is_counted_and_the_run_still_followed(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(200, json=batch(1))  # says: look at the list
    respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=answers(
            httpx.Response(200, json=[run("tc_1", "exploded")]),
            httpx.Response(200, json=[run("tc_1", "exploded")]),
            httpx.Response(200, json=[run("tc_1", "completed")]),
        )
    )
    log = Log()
    ended = await follow(target(log))
    assert [(e.run_id, e.status) for e in ended] == [("tc_1", "completed")]  # neither ended nor dropped early
    assert log.counts["list_runs unknown_status"] == 2
    lines = logged(caplog, "unknown_status")
    assert len(lines) == 1 and "'exploded'" in lines[0] and "still followed" in lines[0]


async def test_an_unknown_batch_status_is_noted_but_its_counters_used(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(200, json=batch(1, status="molten"))
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[run("tc_1", "completed")])
    log = Log()
    assert [e.run_id for e in await follow(target(log))] == ["tc_1"]
    assert log.counts["poll_batch unknown_status"] == 1
    assert "'molten'" in logged(caplog, "unknown_status")[0]


async def test_a_batch_the_server_does_not_know_is_followed_through_the_run_list(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    poll = respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(404, json={"detail": "Not found."})
    listing = respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=answers(
            httpx.Response(200, json=[run("tc_1", "in_progress")]),
            httpx.Response(200, json=[run("tc_1", "completed")]),
        )
    )
    log = Log()
    assert [e.run_id for e in await follow(target(log))] == ["tc_1"]
    assert poll.call_count == 1  # the batch is not asked for again once the server said it does not exist
    assert listing.call_count == 2
    assert log.counts["poll_batch unknown_batch"] == 1  # counted under the class its log line names
    assert len(logged(caplog, "unknown_batch")) == 1


async def test_run_ids_that_change_between_answers_are_noted_and_only_the_counters_used(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    submission = Submission("tcb_1", (SubmittedRun("tc_1", 0, None, None), SubmittedRun("tc_2", 1, None, None)))
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").mock(
        side_effect=answers(
            httpx.Response(200, json=batch(0, run_ids=["tc_1", "tc_2"])),
            httpx.Response(200, json=batch(1, run_ids=["tc_1", "tc_9", "tc_10"])),
            httpx.Response(200, json=batch(2, run_ids=["tc_2"])),
        )
    )
    respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=answers(
            httpx.Response(200, json=[run("tc_1", "completed"), run("tc_2", "queued")]),
            httpx.Response(200, json=[run("tc_1", "completed"), run("tc_2", "failed")]),
        )
    )
    log = Log()
    ended = await follow(target(log), submission)
    assert sorted(e.run_id for e in ended) == ["tc_1", "tc_2"]
    assert log.counts["poll_batch ok"] == 1
    assert log.counts["poll_batch run_ids_changed"] == 2
    assert "3 run_ids where 2 were created" in logged(caplog, "run_ids_changed")[0]


@pytest.mark.parametrize(
    ("route", "size", "label"),
    [
        ("/v1/test-call-batches/tcb_1", BODY_LIMIT + 1, "poll_batch too_large"),
        ("/v1/test-calls", LIST_BODY_LIMIT + 1, "list_runs too_large"),
    ],
)
async def test_a_huge_body_is_too_large_and_not_used(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, route: str, size: int, label: str
) -> None:
    # valid JSON, so only its size can be what is wrong with it
    huge = b'{"pad": "' + b"x" * size + b'"}' if "batches" in route else b'["' + b"x" * size + b'"]'
    good = batch(1) if "batches" in route else [run("tc_1", "completed")]
    respx_mock.get(f"{BASE}{route}").mock(
        side_effect=answers(httpx.Response(200, content=huge), httpx.Response(200, json=good))
    )
    other = "/v1/test-calls" if "batches" in route else "/v1/test-call-batches/tcb_1"
    respx_mock.get(f"{BASE}{other}").respond(200, json=[run("tc_1", "completed")] if "batches" in route else batch(1))
    log = Log()
    assert [e.run_id for e in await follow(target(log))] == ["tc_1"]
    assert log.counts[label] == 1
    assert len(logged(caplog, "too_large")) == 1


async def test_a_list_page_under_its_limit_is_read_even_when_large(respx_mock: respx.MockRouter) -> None:
    page = [run("tc_1", "completed", scenario_prompt="x" * (2 * BODY_LIMIT))]  # over the 1 MiB of other answers
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(200, json=batch(1))
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=page)
    log = Log()
    assert [e.run_id for e in await follow(target(log))] == ["tc_1"]
    assert log.counts["list_runs ok"] == 1


async def test_ids_from_the_server_cannot_escape_their_path_segment(respx_mock: respx.MockRouter) -> None:
    weird = "tcb/../../v1/x?y#z\n"
    poll = respx_mock.get(url__regex=r".*/v1/test-call-batches/tcb%2F\.\.%2F\.\.%2Fv1%2Fx%3Fy%23z%0A$").respond(
        200, json=batch(1)
    )
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[run("tc_1", "completed")])
    ended = await follow(target(Log()), Submission(weird, (SubmittedRun("tc_1", 0, None, None),)))
    assert [e.run_id for e in ended] == ["tc_1"]
    assert poll.call_count == 1


async def test_a_create_answer_with_duplicate_run_ids_is_not_adopted(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log()
    the_target = target(log)
    witness = await create_witness(respx_mock, the_target, BASE, datetime.now(UTC) - timedelta(seconds=1))
    log.counts.clear()
    twice = {"id": "tcb_1", "name": f"#{ORDER.seq}~{TOKEN} {ORDER.name}", "run_ids": ["tc_1", "tc_1"]}
    respx_mock.post(f"{BASE}/v1/test-call-batches").respond(201, json=twice)
    respx_mock.get(f"{BASE}/v1/test-call-batches").respond(200, json=[twice, witness, ANCIENT])
    with pytest.raises(SubmitError) as info:
        await the_target.submit(ORDER)
    # two runs under one id could not be told apart; the create is given up, not sent again: its runs may
    # exist, so it is counted "unknown", and the message says what was wrong with the answer (not "ok")
    assert info.value.cause == "unknown"
    assert "bad_shape" in info.value.message
    assert log.counts == {"submit bad_shape": 1, "reconcile ok": 1}
    assert "not distinct" in logged(caplog, "bad_shape")[0]


async def test_a_create_answer_missing_its_run_ids_is_reconciled(respx_mock: respx.MockRouter) -> None:
    log = Log()
    the_target = target(log)
    witness = await create_witness(respx_mock, the_target, BASE, datetime.now(UTC) - timedelta(seconds=1))
    log.counts.clear()
    post = respx_mock.post(f"{BASE}/v1/test-call-batches").respond(201, json={"id": "tcb_1", "status": "pending"})
    full = {"id": "tcb_1", "name": f"#{ORDER.seq}~{TOKEN} {ORDER.name}", "run_ids": ["tc_1", "tc_2"]}
    respx_mock.get(f"{BASE}/v1/test-call-batches").respond(200, json=[full, witness, ANCIENT])
    submission = await the_target.submit(ORDER)
    assert [r.run_id for r in submission.runs] == ["tc_1", "tc_2"]
    assert post.call_count == 1
    assert log.counts == {"submit bad_shape": 1, "reconcile ok": 1, "submit reconciled": 1}


async def test_a_401_that_echoes_the_key_does_not_repeat_it(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(f"{BASE}/v1/test-call-batches").respond(401, json={"detail": f"Invalid API key {KEY}."})
    with pytest.raises(SubmitError) as info:
        await target(Log()).submit(ORDER)
    assert KEY not in info.value.message and KEY[8:] not in info.value.message
    assert "sk_live_...cdef" in info.value.message


async def test_bad_answers_all_through_a_run_never_stop_the_engine(respx_mock: respx.MockRouter) -> None:
    # every kind of bad answer, in turn, for every request the engine's target makes
    garbage = [
        httpx.Response(200, content=b"\xff\xfe"),
        httpx.Response(200, json=None),
        httpx.Response(200, json={"id": True, "run_ids": "no"}),
        httpx.Response(200, json=[{"status": "exploded"}, 7]),
        httpx.Response(404),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ]
    turn = {"n": 0}

    def next_garbage(request: httpx.Request) -> httpx.Response:
        turn["n"] += 1
        current = garbage[turn["n"] % len(garbage)]
        if request.method == "POST" and isinstance(current, httpx.Response) and current.status_code == 404:
            # a create answered 404 means the endpoint is missing: rightly fatal, which is not this test's point
            turn["n"] += 1
            current = garbage[turn["n"] % len(garbage)]
        if isinstance(current, Exception):
            raise current
        return current

    respx_mock.route().mock(side_effect=next_garbage)
    profile = parse_profile(
        {
            "name": "garbage",
            "grace": "0.5s",
            "target": {"poll_interval": "20ms"},
            "batch": {"runs": 2},
            "stages": [{"duration": "0.5s", "rate": "10/s"}],
        },
        "garbage.toml",
        Path(),
    )
    metrics = Metrics(ClockAnchor.now())
    the_target = TestCallsTarget(
        BASE, KEY, metrics, governor=Governor(FAST), poll_interval_s=0.02, reconcile_settle_s=0.01
    )
    with anyio.fail_after(20):
        result = await Engine(profile, the_target, metrics=metrics, governor=Governor(FAST)).run()
    outcomes = result.metrics.outcomes
    assert sum(outcomes.values()) == result.metrics.planned_runs == 10  # every run accounted for
    assert outcomes[Outcome.COMPLETED] == 0
    assert not any(k.endswith(" ok") and k.startswith("poll") for k in metrics.requests)


# ------------------------------------------------------------------------------------------------- real sockets

Handler = Callable[[SocketStream, bytes], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[int]:
    """A TCP server on loopback that reads each request's head and lets ``handler`` write what it likes."""

    async def serve_one(stream: SocketStream) -> None:
        async with stream:
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    head += await stream.receive()
                await handler(stream, head)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the client went away first (a timeout, say): nothing left to do

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, serve_one)
        yield listener.extra(anyio.abc.SocketAttribute.local_port)
        tasks.cancel_scope.cancel()


JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def reset(stream: SocketStream) -> None:
    """Close the connection with a TCP RST rather than a FIN."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_a_body_cut_off_mid_way_is_cut_off(caplog: pytest.LogCaptureFixture) -> None:
    async def cut(stream: SocketStream, head: bytes) -> None:
        await stream.send(JSON_HEAD + b"Content-Length: 100\r\n\r\n" + b'{"completed_runs": 1, ')

    async with raw_server(cut) as port:
        log = Log()
        the_target = target(log, f"http://127.0.0.1:{port}")
        assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        await the_target.aclose()
    assert log.counts == {"poll_batch cut_off": 2}
    assert len(logged(caplog, "cut_off")) == 1


async def test_a_chunked_body_cut_off_mid_way_is_cut_off() -> None:
    async def cut(stream: SocketStream, head: bytes) -> None:
        await stream.send(JSON_HEAD + b"Transfer-Encoding: chunked\r\n\r\n20\r\n" + b'{"completed_runs"')

    async with raw_server(cut) as port:
        log = Log()
        the_target = target(log, f"http://127.0.0.1:{port}")
        assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        await the_target.aclose()
    assert log.counts == {"poll_batch cut_off": 1}


async def test_a_trickling_answer_ends_at_the_request_timeout(caplog: pytest.LogCaptureFixture) -> None:
    # one byte every 50 ms for 4 s: each read comes well within the read timeout, the whole answer does not
    async def trickle(stream: SocketStream, head: bytes) -> None:
        await stream.send(JSON_HEAD + b"Content-Length: 80\r\n\r\n")
        for _ in range(80):
            await stream.send(b" ")
            await anyio.sleep(0.05)

    async with raw_server(trickle) as port:
        log = Log()
        the_target = target(log, f"http://127.0.0.1:{port}", timeout_s=0.5)
        started = anyio.current_time()
        assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        took = anyio.current_time() - started
        await the_target.aclose()
    assert 0.45 <= took < 1.5
    assert log.counts == {"poll_batch timeout": 1}
    assert len(logged(caplog, "timeout")) == 1


async def test_connection_resets_are_counted_and_the_next_poll_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    connections = {"n": 0}

    async def reset_twice(stream: SocketStream, head: bytes) -> None:
        connections["n"] += 1
        if connections["n"] <= 2:
            reset(stream)  # RST as the answer to the first two requests
            return
        body = orjson.dumps(batch(1) if b"test-call-batches" in head else [run("tc_1", "completed")])
        await stream.send(JSON_HEAD + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

    async with raw_server(reset_twice) as port:
        log = Log()
        the_target = target(log, f"http://127.0.0.1:{port}")
        assert [e.run_id for e in await follow(the_target)] == ["tc_1"]
        await the_target.aclose()
    failed = {k: n for k, n in log.counts.items() if k.startswith("poll_batch") and not k.endswith(" ok")}
    assert sum(failed.values()) == 2 and set(failed) <= {"poll_batch reset", "poll_batch protocol"}
    assert log.counts["poll_batch ok"] == 1 and log.counts["list_runs ok"] == 1


async def test_resets_from_the_simulator_never_stop_a_run() -> None:
    # the simulator's own fault: a third of API requests dropped without an answer
    config = SimConfig.from_mapping({"seed": 3, "reset_rate": 0.3, "call_duration": "fixed(5)"})
    async with serve(config) as sim:
        log = Log()
        the_target = target(log, sim.base_url, poll_interval_s=0.01)
        followed = 0
        for seq in range(6):
            order = BatchOrder(seq, f"stressor resets #{seq}", RunRequest(target_id=7), ("a", "b"), 0)
            try:
                submission = await the_target.submit(order)
            except SubmitError as error:
                assert error.cause in ("reset", "protocol")  # a reset create that reconciliation could not settle
                continue
            followed += len(await follow(the_target, submission))
        await the_target.aclose()
    assert followed >= 2
    dropped = sum(n for k, n in log.counts.items() if k.endswith((" reset", " protocol")))
    assert dropped > 0


async def test_a_body_that_cannot_be_decoded_is_bad_response_not_a_crash() -> None:
    async def garbled(stream: SocketStream, head: bytes) -> None:
        await stream.send(JSON_HEAD + b"Content-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!")

    async with raw_server(garbled) as port:
        log = Log()
        the_target = target(log, f"http://127.0.0.1:{port}")
        assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        await the_target.aclose()
    assert log.counts == {"poll_batch bad_response": 1}


async def test_an_unresolvable_host_is_one_clear_sentence() -> None:
    the_target = target(Log(), "http://stressor-no-such-host.invalid", timeout_s=5)
    with pytest.raises(TargetUnavailable) as info:
        await the_target.check()
    await the_target.aclose()
    message = str(info.value)
    assert message.startswith("cannot reach http://stressor-no-such-host.invalid: its host name does not resolve")
    assert "\n" not in message and "SSLContext" not in message


async def test_https_to_a_plain_http_port_is_one_clear_sentence() -> None:
    async with serve() as sim:
        the_target = target(Log(), f"https://127.0.0.1:{sim.port}", timeout_s=5)
        with pytest.raises(TargetUnavailable) as info:
            await the_target.check()
        await the_target.aclose()
    message = str(info.value)
    assert message.startswith(f"cannot reach https://127.0.0.1:{sim.port}: the TLS handshake failed")
    assert message.endswith("does this port speak HTTPS?")
    assert "SSLContext" not in message


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
async def test_a_self_signed_certificate_is_one_clear_sentence(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(stream: SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(2):
                await stream.receive()  # the handshake fails on the client's side: nothing comes

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    tls_listener = anyio.streams.tls.TLSListener(listener, context, standard_compatible=False)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tls_listener.serve, answer)
        the_target = target(Log(), f"https://127.0.0.1:{port}", timeout_s=5)
        with pytest.raises(TargetUnavailable) as info:
            await the_target.check()
        await the_target.aclose()
        tasks.cancel_scope.cancel()
    assert str(info.value).startswith(f"cannot reach https://127.0.0.1:{port}: its TLS certificate was not accepted")
    assert "self-signed" in str(info.value) or "self signed" in str(info.value)


def test_stressor_run_logs_each_class_of_fault_once_on_stderr_and_finishes(tmp_path: Path) -> None:
    # a separately started simulator that drops a third of the API requests, driven by the command line (in this
    # process, on virtual time, the simulator in memory)
    out = ("--progress", "0", "--out", str(tmp_path / "r.json"))
    profile = tmp_path / "faulty.toml"
    profile.write_text(
        'name = "faulty"\ngrace = "5s"\n[target]\npoll_interval = "20ms"\nrequest_timeout = "1s"\n'
        "[batch]\nruns = 2\n"
        "[cost]\nconsent_to_charge = true\nbudget_cents = 10000\n"
        '[limits]\nbreaker_failure_ratio = 0.99\n[[stages]]\nduration = "2s"\nrate = "5/s"\n'
    )
    server = SimConfig.from_mapping({"api_key": KEY, "seed": 5, "reset_rate": 0.3})
    done = stressor_here(
        "run", str(profile), "--base-url", "http://simulator-1.test", *out,
        env={"THUNDERPHONE_API_KEY": KEY}, servers=[server],
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    results = orjson.loads((tmp_path / "r.json").read_bytes())
    dropped = sum(n for k, n in results["requests"].items() if k.endswith((" reset", " protocol")))
    assert dropped > 1  # several requests were dropped ...
    for kind in ("reset", "protocol"):  # ... and each class of it was told once
        assert done.stderr.count(f"[{kind}]") <= 1
    assert done.stderr.count("[reset]") + done.stderr.count("[protocol]") >= 1
    assert results["runs"]["planned"] == 20
