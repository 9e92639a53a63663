"""A key the server echoes in what stressor quotes of its answers (a run's or a batch's status, an id, an error's
detail, a run's error_message) shows as its mask and nothing more, wherever it falls against the cut that keeps
the quote short: masked first, then cut (issue 15: a status cut to 40 characters first showed 24 of 28)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable

import anyio
import httpx
import pytest
import respx

from stressor.governor import Governor
from stressor.profile import Limits, RunRequest
from stressor.secrets import mask_secret
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmitError, SubmittedRun
from stressor.targets.testcalls.target import ERROR_MESSAGE_LIMIT, TestCallsTarget

pytestmark = [pytest.mark.anyio, pytest.mark.respx(using="httpx")]

BASE = "http://127.0.0.1:9"
KEY = "sk_live_" + secrets.token_hex(16)  # made up here, fresh each run
LOGGER = "stressor.targets.testcalls.target"
TOKEN = "r1"
STATUS_CUT, ID_CUT, DETAIL_CUT = 40, 40, 200  # what the log lines and messages keep of a quoted server text


def order(seq: int) -> BatchOrder:
    return BatchOrder(seq, f"stressor s #{seq}", RunRequest(target_id=7), prompts=("a", "b"), stagger_s=0)


class Log:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


def target() -> TestCallsTarget:
    limits = Limits(backoff_base_s=0.001, backoff_cap_s=0.005)
    return TestCallsTarget(
        BASE, KEY, Log(), governor=Governor(limits), poll_interval_s=0.001, run_token=TOKEN, reconcile_settle_s=0.001
    )


def echoed(before: int) -> str:
    """The key as a server echoes it, ``before`` characters into the text."""
    return "-" * before + KEY


def shows_no_more_than_the_mask(text: str) -> None:
    # Any five characters in a row of the key's secret part: the mask shows its kind and at most the last four.
    secret = KEY[len("sk_live_") :]
    leaked = [secret[i : i + 5] for i in range(len(secret) - 4) if secret[i : i + 5] in text]
    assert not leaked, f"{len(leaked) + 4} characters of the key in {text!r}"


def logged(caplog: pytest.LogCaptureFixture, kind: str) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER and f"[{kind}]" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    return lines[0]


def run(run_id: str, status: str, **fields: object) -> dict[str, object]:
    return {"id": run_id, "status": status, "created_at": "2026-11-29T18:24:09.011Z", "error_message": "", **fields}


def batch(completed: int, failed: int = 0, **fields: object) -> dict[str, object]:
    return {"id": "tcb_1", "status": "in_progress", "completed_runs": completed, "failed_runs": failed, **fields}


def answers(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    """The responses in turn, then the last one for ever."""
    queue = list(responses)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


async def follow(the_target: TestCallsTarget, batch_id: str = "tcb_1") -> list[RunEnd]:
    ended: list[RunEnd] = []
    with anyio.fail_after(10):
        await the_target.follow(Submission(batch_id, (SubmittedRun("tc_1", 0, None, None),)), ended.append)
    return ended


ACROSS_THE_STATUS_CUT = range(STATUS_CUT + 1)  # from the key whole inside the quote to only its first character


@pytest.mark.parametrize("before", ACROSS_THE_STATUS_CUT)
async def test_a_batch_status(respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, before: int) -> None:
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(200, json=batch(1, status=echoed(before)))
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[run("tc_1", "completed")])
    await follow(target())
    line = logged(caplog, "unknown_status")
    assert "batch status '-" in line or before == 0
    shows_no_more_than_the_mask(line)


@pytest.mark.parametrize("before", ACROSS_THE_STATUS_CUT)
async def test_a_run_status(respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, before: int) -> None:
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(200, json=batch(1))
    respx_mock.get(f"{BASE}/v1/test-calls").mock(
        side_effect=answers(
            httpx.Response(200, json=[run("tc_1", echoed(before))]),
            httpx.Response(200, json=[run("tc_1", "completed")]),
        )
    )
    await follow(target())
    shows_no_more_than_the_mask(logged(caplog, "unknown_status"))


@pytest.mark.parametrize("before", range(0, ID_CUT + 1, 3))
async def test_a_batch_id(respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, before: int) -> None:
    respx_mock.get(url__regex=r".*/v1/test-call-batches/.+").respond(404, json={"detail": "Not found."})
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[run("tc_1", "completed")])
    await follow(target(), echoed(before))
    line = logged(caplog, "unknown_batch")
    if before >= len("sk_live_"):  # the id's quote holds none of the key's secret part: the path holds its mask
        assert mask_secret(KEY) in line
    shows_no_more_than_the_mask(line)


@pytest.mark.parametrize("before", range(0, ID_CUT + 1, 3))
async def test_a_run_id(respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, before: int) -> None:
    # The second create answers with a run id the first one already gave: quoted in the bad_shape line.
    reused = echoed(before)
    first = {"id": "tcb_1", "run_ids": [reused, "tc_2"], "created_at": "2026-11-29T18:24:09.011Z"}
    second = {"id": "tcb_2", "run_ids": [reused, "tc_3"], "created_at": "2026-11-29T18:24:09.011Z"}
    respx_mock.post(f"{BASE}/v1/test-call-batches").mock(
        side_effect=answers(httpx.Response(201, json=first), httpx.Response(201, json=second))
    )
    respx_mock.get(f"{BASE}/v1/test-call-batches").respond(200, json=[{**second, "name": f"{order(2).name} ~{TOKEN}"}])
    the_target = target()
    await the_target.submit(order(1))
    with pytest.raises(SubmitError) as refused:
        await the_target.submit(order(2))
    shows_no_more_than_the_mask(logged(caplog, "bad_shape"))
    shows_no_more_than_the_mask(refused.value.message)


@pytest.mark.parametrize("json_detail", [True, False])
@pytest.mark.parametrize("before", [0, 10, *range(DETAIL_CUT - len(KEY) - 1, DETAIL_CUT + 1, 2)])
async def test_an_error_detail(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, before: int, json_detail: bool
) -> None:
    # A fatal answer's detail becomes the stop reason: on stderr and in the results.
    text = f"Invalid key {echoed(before)}"
    answer = httpx.Response(400, json={"detail": text}) if json_detail else httpx.Response(400, text=text)
    respx_mock.post(f"{BASE}/v1/test-call-batches").mock(return_value=answer)
    with pytest.raises(SubmitError) as refused:
        await target().submit(order(1))
    assert refused.value.fatal and "Invalid key " in refused.value.message
    shows_no_more_than_the_mask(refused.value.message)
    for record in caplog.records:
        shows_no_more_than_the_mask(record.getMessage())


@pytest.mark.parametrize("before", [0, *range(ERROR_MESSAGE_LIMIT - len(KEY) - 1, ERROR_MESSAGE_LIMIT + 1, 3)])
async def test_a_run_error_message(respx_mock: respx.MockRouter, before: int) -> None:
    # A run's error_message goes into its record: the results, the runs log, the summary.
    respx_mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(200, json=batch(0, 1))
    failed = run("tc_1", "failed", error_message=echoed(before), completed_at="2026-11-29T18:25:04.822Z")
    respx_mock.get(f"{BASE}/v1/test-calls").respond(200, json=[failed])
    (end,) = await follow(target())
    assert end.error_message.startswith("---") or before == 0
    assert len(end.error_message) <= ERROR_MESSAGE_LIMIT
    shows_no_more_than_the_mask(end.error_message)
