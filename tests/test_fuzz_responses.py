"""Fuzzing what the server answers: the readers of the test-calls target take any JSON value (and the target
any body) without raising anything but the SubmitError they document, and every request is counted under one
known outcome."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
import respx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.virtual import run, running_clock

from stressor.governor import Governor
from stressor.profile import Limits, RunRequest
from stressor.targets.base import BatchOrder, Submission, SubmitError, SubmittedRun
from stressor.targets.testcalls.answers import (
    parse_run,
    read_batch_poll,
    read_batch_submission,
    read_list,
    read_run_page,
    read_run_submission,
)
from stressor.targets.testcalls.failures import ANOMALIES
from stressor.targets.testcalls.lister import RunLister
from stressor.targets.testcalls.target import TestCallsTarget

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = "http://127.0.0.1:9"
KNOWN_OUTCOMES = {"ok", *ANOMALIES}

# JSON as it comes out of orjson: 64-bit integers, finite floats, strings, arrays, objects
TIMESTAMPS = st.sampled_from(
    ["2026-11-29T18:24:09.011Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "2026-13-45", "", "Z"]
)
STATUSES = st.sampled_from(["queued", "in_progress", "completed", "failed", "exploded", "", "COMPLETED"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | TIMESTAMPS
    | STATUSES
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
)
RUN_KEYS = ["id", "status", "created_at", "started_at", "completed_at", "error_message", "call_id", "batch_id"]
RUN_LIKE = st.dictionaries(st.sampled_from(RUN_KEYS), JSON | SCALARS, max_size=8)
BATCH_KEYS = ["id", "name", "status", "run_ids", "completed_runs", "failed_runs", "created_at", "estimated_cost_cents"]
BATCH_LIKE = st.dictionaries(
    st.sampled_from(BATCH_KEYS), JSON | st.lists(SCALARS, min_size=0, max_size=4) | SCALARS, max_size=8
)
ANSWERS = JSON | RUN_LIKE | BATCH_LIKE | st.lists(RUN_LIKE, max_size=5)


@FUZZ
@given(item=ANSWERS)
@example(item={"id": "tc_1", "status": "completed", "completed_at": "0001-01-01T00:00:00+23:59"})
@example(item={"id": 2**64 - 1, "status": "x", "error_message": "e" * 5000, "call_id": True})
def test_parse_run_takes_any_json(item: Any) -> None:
    view = parse_run(item, 7)
    if view is not None:
        assert isinstance(view.run_id, str) and isinstance(view.status, str)
        message = item.get("error_message")
        # Kept whole: the target masks the key in it before cutting it to ERROR_MESSAGE_LIMIT for the record.
        assert view.error_message == (message if isinstance(message, str) else "")
        assert view.ended == (view.status in ("completed", "failed"))
        if view.ended:
            view.as_end()


@FUZZ
@given(body=ANSWERS, run_ids=st.lists(st.text(min_size=1, max_size=6), max_size=3).map(tuple))
def test_the_readers_take_any_json(body: Any, run_ids: tuple[str, ...]) -> None:
    for read in (read_run_page, read_list, lambda b: read_batch_poll(b, run_ids)):
        got = read(body)
        assert got.label in KNOWN_OUTCOMES
        if got.value is None:
            assert got.findings  # an unusable answer always says why


@FUZZ
@given(answer=ANSWERS, expected=st.integers(0, 21))
@example(answer={"id": "b", "run_ids": ["r", "r"]}, expected=2)
@example(answer={"id": "b", "run_ids": [{"a": 1}, ["x"]]}, expected=2)
@example(answer={"id": "b", "run_ids": ["r", 1], "estimated_cost_cents": True}, expected=2)
@example(answer={"id": "x" * 300, "run_ids": ["r"]}, expected=1)
def test_the_submission_readers_take_any_json(answer: Any, expected: int) -> None:
    try:
        submission = read_batch_submission(answer, expected)
    except SubmitError as error:
        assert error.cause == "bad_shape" and not error.fatal
    else:
        ids = [run.run_id for run in submission.runs]
        assert len(ids) == expected == len(set(ids))  # distinct: each run can be told apart
        assert all(isinstance(run_id, str) and run_id for run_id in ids)
    try:
        run = read_run_submission(answer)
    except SubmitError as error:
        assert error.cause == "bad_shape"
    else:
        assert isinstance(run.run_id, str) and run.run_id


class Log:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


def fuzz_target(log: Log) -> TestCallsTarget:
    limits = Limits(backoff_base_s=0.001, backoff_cap_s=0.002)
    return TestCallsTarget(
        BASE, "sk_test_fuzz", log, governor=Governor(limits), poll_interval_s=0.001, clock=running_clock()
    )


PAGES = st.lists(st.lists(RUN_LIKE | JSON, max_size=6) | JSON, min_size=1, max_size=4)


@FUZZ
@given(pages=PAGES, wanted=st.lists(st.sampled_from(["tc_1", "tc_2", "1", "x"]), min_size=1, max_size=3, unique=True))
def test_the_run_lister_scans_any_pages(pages: list[Any], wanted: list[str]) -> None:
    async def scan() -> dict[str, Any]:
        served = iter(pages)
        log = Log()
        with respx.mock(using="httpx", assert_all_called=False) as mock:
            mock.get(f"{BASE}/v1/test-calls").mock(
                side_effect=lambda request: httpx.Response(200, content=orjson.dumps(next(served, [])))
            )
            the_target = fuzz_target(log)
            found = await the_target._lister.lookup(dict.fromkeys(wanted))
            await the_target.aclose()
        assert sum(log.counts.values()) <= len(pages) + 1  # one request per page, never a loop
        assert {key.split()[1] for key in log.counts} <= KNOWN_OUTCOMES
        return found

    found = run(scan)
    assert set(found) <= set(wanted)
    assert all(view.run_id in wanted for view in found.values())


@FUZZ
@given(body=st.binary(max_size=200) | ANSWERS.map(orjson.dumps), status=st.sampled_from([200, 201, 204, 299]))
@example(body=b'{"completed_runs": 1, "failed_runs": 0, "run_ids": ["x", "y"]}', status=200)
def test_any_body_of_a_batch_poll_is_counted_once_under_a_known_outcome(body: bytes, status: int) -> None:
    async def poll() -> None:
        log = Log()
        with respx.mock(using="httpx") as mock:
            mock.get(f"{BASE}/v1/test-call-batches/tcb_1").respond(status, content=body)
            the_target = fuzz_target(log)
            ended = await the_target._batch_ended_count("tcb_1", ("tc_1",))
            await the_target.aclose()
        assert ended is None or (isinstance(ended, int) and ended >= 0)
        assert sum(log.counts.values()) == 1
        assert next(iter(log.counts)).split()[1] in KNOWN_OUTCOMES

    run(poll)


@pytest.mark.parametrize("mode", ["batch", "single"])
@settings(FUZZ, max_examples=100)  # a target per example: the slowest of these
@given(body=ANSWERS.map(orjson.dumps) | st.binary(max_size=60))
def test_any_answer_to_a_create_is_a_submission_or_a_submit_error(mode: str, body: bytes) -> None:
    order = BatchOrder(seq=0, name="fuzz #0", request=RunRequest(), prompts=("a",), stagger_s=0)

    async def submit() -> Submission | SubmitError:
        log = Log()
        with respx.mock(using="httpx", assert_all_called=False) as mock:
            path = "/v1/test-calls" if mode == "single" else "/v1/test-call-batches"
            mock.post(f"{BASE}{path}").respond(201, content=body)
            mock.get(f"{BASE}{path}").respond(200, content=b"[]")  # reconciliation finds nothing
            the_target = fuzz_target(log)
            the_target._submit_mode = mode
            try:
                return await the_target.submit(order)
            except SubmitError as error:
                return error
            finally:
                await the_target.aclose()

    got = run(submit)
    if isinstance(got, Submission):
        assert len(got.runs) == 1 and isinstance(got.runs[0], SubmittedRun)
    else:
        assert got.cause in KNOWN_OUTCOMES | {"retry_budget", "unknown"}


def test_the_lister_stops_at_its_page_limit_on_endless_full_pages() -> None:
    async def scan() -> int:
        calls = 0

        async def endless(purpose: str, path: str, params: dict[str, object] | None = None) -> tuple[Any, int]:
            nonlocal calls
            calls += 1
            return [{"id": f"other_{calls}_{i}", "status": "queued"} for i in range(200)], 0

        lister = RunLister(endless, max_pages=10)
        assert await lister.lookup({"tc_never": None}) == {}
        return calls

    assert run(scan) == 10
