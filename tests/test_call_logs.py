"""Call logs and transcripts: how their answers are read (leniently), and how the target fetches them (respx:
through the governor, counted by purpose and class, never anything billed)."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import respx

from stressor.governor import Governor
from stressor.profile import Limits
from stressor.targets.testcalls import TestCallsTarget
from stressor.targets.testcalls.calls import CALL_LOG_FIELDS, read_call_log, read_transcript

# The reference's call log (testcalls-api.md): every documented field.
REFERENCE_LOG = {
    "call_id": 9001,
    "status": "completed",
    "start_time": "2026-11-29T18:24:10.113Z",
    "end_time": "2026-11-29T18:25:04.822Z",
    "duration_seconds": 55,
    "end_reason": "hangup",
    "product": "storm-base",
    "billable_minutes": 1,
    "billing_total_cents": 16,
    "grade_score": 0.85,
    "grade_status": "completed",
    "agent_id": 201,  # an undocumented field: ignored
}
TURNS = [
    {"role": "assistant", "content": "Hello, how can I help?", "start_ms": 550, "end_ms": 2100, "ttfa_ms": 550},
    {"role": "user", "content": "What are your opening hours?", "start_ms": 2400, "end_ms": 4000},
]


# ------------------------------------------------------------------------------------------------ reading


def test_a_reference_call_log_reads_whole_and_clean() -> None:
    read = read_call_log(REFERENCE_LOG, "9001")
    assert read.label == "ok" and read.value is not None
    assert read.value == {name: REFERENCE_LOG[name] for name in CALL_LOG_FIELDS} | {"call_id": "9001"}


def test_missing_and_mistyped_fields_read_as_null_and_are_counted_the_rest_is_used() -> None:
    body = {**REFERENCE_LOG, "duration_seconds": "55", "product": 3, "end_time": "yesterday"}
    del body["end_reason"], body["billable_minutes"]
    read = read_call_log(body, "9001")
    assert read.value is not None
    assert (read.value["duration_seconds"], read.value["product"], read.value["end_time"]) == (None, None, None)
    assert read.value["end_reason"] is None and read.value["billable_minutes"] is None
    assert read.value["billing_total_cents"] == 16 and read.value["grade_score"] == 0.85
    assert [f.kind for f in read.findings] == ["missing_field", "bad_field"]
    assert read.label == "missing_field"
    assert "end_reason" in read.findings[0].detail and "duration_seconds (str)" in read.findings[1].detail
    # a null is a value (a call not graded yet), not a missing field
    assert read_call_log({**REFERENCE_LOG, "grade_score": None, "grade_status": "pending"}, "9001").label == "ok"
    # negative or not finite numbers are not durations, counts or money
    assert read_call_log({**REFERENCE_LOG, "duration_seconds": -1}, "9001").label == "bad_field"


def test_an_answer_that_is_not_a_call_log_is_unusable_and_another_calls_log_is_noted() -> None:
    for body in ([REFERENCE_LOG], "ok", None, 3):
        read = read_call_log(body, "9001")
        assert read.value is None and read.label == "bad_shape"
    other = read_call_log({**REFERENCE_LOG, "call_id": "77"}, "9001")
    assert other.label == "bad_field" and other.value is not None and other.value["call_id"] == "9001"


def test_a_transcript_reads_its_turns_in_order_and_leaves_out_what_is_not_a_turn() -> None:
    read = read_transcript({"call_id": 9001, "transcripts": TURNS})
    assert read.label == "ok"
    assert read.value == [{**TURNS[0]}, {**TURNS[1], "ttfa_ms": None}]
    junk = read_transcript({"call_id": 9001, "transcripts": [TURNS[0], "hello", {"content": 3}]})
    assert junk.value is not None and len(junk.value) == 2
    assert [f.kind for f in junk.findings] == ["bad_shape", "missing_field", "bad_field"]
    for body in ({"call_id": 9001}, [TURNS], {"transcripts": "hi"}):
        assert read_transcript(body).value is None and read_transcript(body).label == "bad_shape"


# ------------------------------------------------------------------------------------- the target (respx)

BASE = "http://127.0.0.1:9"
FAST = Limits(backoff_base_s=0.001, backoff_cap_s=0.005, max_retries=2)


class Log:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


def target(log: Log) -> TestCallsTarget:
    return TestCallsTarget(BASE, "sk_live_abcdefghijklmnop1234", log, governor=Governor(FAST), poll_interval_s=0.001)


@pytest.mark.anyio
@pytest.mark.respx(using="httpx")
async def test_the_target_gets_a_call_log_and_its_transcript_counted_under_their_purposes(
    respx_mock: respx.MockRouter,
) -> None:
    logs = respx_mock.get(f"{BASE}/v1/calls/9001").respond(200, json=REFERENCE_LOG)
    said = respx_mock.get(f"{BASE}/v1/calls/9001/transcript").respond(200, json={"call_id": 9001, "transcripts": TURNS})
    log = Log()
    calls = target(log)
    try:
        call_log, label = await calls.fetch_call_log("9001")
        turns, turns_label = await calls.fetch_transcript("9001")
    finally:
        await calls.aclose()
    assert (label, turns_label) == ("ok", "ok")
    assert call_log is not None and call_log["duration_seconds"] == 55 and turns is not None and len(turns) == 2
    assert logs.calls[0].request.method == "GET" and said.calls[0].request.method == "GET"
    assert log.counts == {"call_log ok": 1, "transcript ok": 1}
    assert not [c for c in respx_mock.calls if c.request.method != "GET"]  # nothing that could be billed


@pytest.mark.anyio
@pytest.mark.respx(using="httpx")
@pytest.mark.parametrize(
    ("answer", "label", "attempts"),
    [
        (httpx.Response(404, json={"detail": "Not found."}), "http_404", 1),  # not retried
        (httpx.Response(500, text="boom"), "http_500", 3),  # a GET: retried, max_retries = 2
        (httpx.Response(200, text="<html>"), "bad_response", 1),
        (httpx.Response(200, json=["not", "a", "log"]), "bad_shape", 1),
    ],
)
async def test_a_call_log_that_cannot_be_had_is_counted_by_class_and_gives_none(
    respx_mock: respx.MockRouter, answer: httpx.Response, label: str, attempts: int
) -> None:
    route = respx_mock.get(f"{BASE}/v1/calls/c%2F1").mock(return_value=answer)
    log = Log()
    calls = target(log)
    try:
        got = await calls.fetch_call_log("c/1")  # an id the server gave: one path segment, escaped
    finally:
        await calls.aclose()
    assert got == (None, label)
    assert route.call_count == attempts
    assert log.counts == {f"call_log {label}": attempts}
