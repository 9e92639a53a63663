"""Webhook events: what a verified body means, and at-least-once deliveries counted once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.grades import GradeBook
from stressor.profile import ProfileError, parse_profile
from stressor.scores import BadEvent, CallGraded, GradeScale, normalise_score
from stressor.webhooks.events import Deduper, RunCompleted, UnknownEvent, parse_event

RUN = {
    "id": "tc_8f2a",
    "target_type": "agent",
    "target_id": 42,
    "direction": "outbound",
    "status": "completed",
    "charge_multiplier": 2,
    "estimated_cost_cents": 16,
    "call_id": "call_91b",
    "sip_call_id": None,
    "error_message": "",
    "batch_id": "tcb_77",
    "created_at": "2026-11-29T18:24:09.011Z",
    "started_at": "2026-11-29T18:24:10.113Z",
    "completed_at": "2026-11-29T18:25:04.822Z",
    "updated_at": "2026-11-29T18:25:04.822Z",
}


def grade(score: object = 0.8, status: str = "completed", model: str = "grader-fast", at: str = "") -> dict:
    return {
        "score": score,
        "status": status,
        "call_outcome": "success",
        "goal_achievement": "met",
        "summary": "fine",
        "grader_model": model,
        "graded_at": at or "2026-11-29T18:25:06.000Z",
    }


def body(kind: str, data: object) -> bytes:
    # as the API sends it: compact JSON, sorted keys
    return orjson.dumps({"type": kind, "data": data}, option=orjson.OPT_SORT_KEYS)


def completed(**changes: Any) -> bytes:
    return body("test-call.completed", {**RUN, **changes})


def graded(call_id: str = "call_91b", **grade_args: Any) -> bytes:
    return body("call.graded", {"call_id": call_id, "grade": grade(**grade_args)})


def epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


# -- parsing -----------------------------------------------------------------------------------------------


def test_a_completed_run_is_read_with_server_stamps_in_epoch_seconds() -> None:
    event = parse_event(completed())
    assert event == RunCompleted(
        run_id="tc_8f2a",
        status="completed",
        created_at=epoch("2026-11-29 18:24:09.011"),
        started_at=epoch("2026-11-29 18:24:10.113"),
        completed_at=epoch("2026-11-29 18:25:04.822"),
        error_message="",
        call_id="call_91b",
        batch_id="tcb_77",
    )
    assert event.succeeded
    assert event.type == "test-call.completed"
    # the docs' example: about 1 s queued, 55 s of call
    assert event.started_at is not None and event.created_at is not None and event.completed_at is not None
    assert event.started_at - event.created_at == pytest.approx(1.102)
    assert event.completed_at - event.started_at == pytest.approx(54.709)


def nested(**changes: Any) -> bytes:
    # the shape the API docs' CI handler reads: event["data"]["test_call_run"]
    return body("test-call.completed", {"test_call_run": {**RUN, **changes}})


def test_a_run_nested_under_test_call_run_is_read_like_a_run_placed_directly_under_data() -> None:
    event = parse_event(nested())
    assert isinstance(event, RunCompleted)
    assert event == parse_event(completed())
    assert (event.run_id, event.status, event.call_id) == ("tc_8f2a", "completed", "call_91b")
    failed = parse_event(nested(status="failed", error_message="agent busy", id=17))
    assert isinstance(failed, RunCompleted)
    assert (failed.run_id, failed.succeeded, failed.error_message) == ("17", False, "agent busy")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({}, "data.test_call_run"),
        ({"run": RUN}, "data.test_call_run"),
        ({"test_call_run": None}, "data.test_call_run is not an object"),
        ({"test_call_run": [RUN]}, "data.test_call_run is not an object"),
        ({"test_call_run": {"status": "completed"}}, "data.test_call_run needs a run 'id'"),
        ({"test_call_run": {"id": "tc_1"}}, "data.test_call_run needs a run 'id' and a 'status'"),
        ({"id": "tc_1"}, "data needs a run 'id' and a 'status'"),
    ],
    ids=["empty", "other-key", "null", "list", "no-id", "no-status", "flat-no-status"],
)
def test_a_completion_with_no_run_in_either_place_is_refused_saying_where_it_looked(
    data: dict[str, Any], where: str
) -> None:
    event = parse_event(body("test-call.completed", data))
    assert isinstance(event, BadEvent)
    assert event.reason == "bad_shape"
    assert where in event.message


def test_a_failed_run_keeps_its_error_and_may_lack_a_call() -> None:
    event = parse_event(
        completed(status="failed", error_message="agent busy", call_id=None, started_at=None, batch_id=None)
    )
    assert isinstance(event, RunCompleted)
    assert not event.succeeded
    assert (event.error_message, event.call_id, event.started_at, event.batch_id) == (
        "agent busy",
        None,
        None,
        None,
    )


def test_an_unreadable_stamp_is_none_not_a_lost_event() -> None:
    event = parse_event(completed(completed_at="yesterday", created_at=12))
    assert isinstance(event, RunCompleted)
    assert (event.completed_at, event.created_at) == (None, None)


def test_integer_ids_are_taken_as_text() -> None:
    event = parse_event(completed(id=17, call_id=99))
    assert isinstance(event, RunCompleted)
    assert (event.run_id, event.call_id) == ("17", "99")


def test_a_grade_is_read() -> None:
    event = parse_event(graded())
    assert event == CallGraded(
        call_id="call_91b",
        score=0.8,
        raw_score=0.8,
        status="completed",
        call_outcome="success",
        grader_model="grader-fast",
        graded_at=epoch("2026-11-29 18:25:06.000"),
    )
    assert event.type == "call.graded"


@pytest.mark.parametrize(
    ("raw", "score"),
    [(0.8, 0.8), (80, 0.8), (0, 0.0), (0.0, 0.0), (1, 1.0), (1.0, 1.0), (100, 1.0), (55.5, 0.555)],
)
def test_scores_on_either_scale_come_out_on_zero_to_one(raw: float, score: float) -> None:
    event = parse_event(graded(score=raw))
    assert isinstance(event, CallGraded)
    assert event.score == pytest.approx(score)
    assert event.raw_score == raw


@pytest.mark.parametrize(
    ("raw", "scale", "score"),
    [
        (1, "auto", 1.0),  # auto guesses: 1 is a perfect score on 0..1, never 1 %
        (1, "100", 0.01),
        (0.5, "100", 0.005),
        (80, "100", 0.8),
        (100, "100", 1.0),
        (1, "1", 1.0),
        (0.8, "1", 0.8),
        (80, "1", None),  # above the scale's top: not a score
        (100.5, "100", None),
        (-0.1, "1", None),
    ],
)
def test_a_fixed_scale_reads_every_score_on_it(raw: float, scale: GradeScale, score: float | None) -> None:
    assert normalise_score(raw, scale) == (None if score is None else pytest.approx(score))


@pytest.mark.parametrize(("scale", "score"), [("auto", 1.0), ("100", 0.01), ("1", 1.0)])
def test_the_grade_book_reads_the_score_as_sent_on_the_profiles_scale(scale: GradeScale, score: float) -> None:
    event = parse_event(graded(score=1))
    assert isinstance(event, CallGraded)
    book = GradeBook(scale)
    book.record(event)
    kept = book.get(event.call_id)
    assert kept is not None and kept.score == pytest.approx(score) and kept.raw_score == 1


@pytest.mark.parametrize(
    ("grades", "threshold", "scale"),
    [
        ({}, None, "auto"),
        ({"threshold": 80}, 0.8, "auto"),
        ({"threshold": 0.8}, 0.8, "auto"),
        ({"scale": "100", "threshold": 80}, 0.8, "100"),
        ({"scale": 100, "threshold": 1}, 0.01, "100"),
        ({"scale": "1", "threshold": 0.8}, 0.8, "1"),
        ({"scale": 1}, None, "1"),
    ],
)
def test_the_profile_sets_the_scale_and_reads_the_threshold_on_it(
    grades: dict[str, Any], threshold: float | None, scale: str
) -> None:
    profile = parse_profile({"stages": [{"duration": "1s", "rate": "1/s"}], "grades": grades}, "p.toml", Path())
    assert profile.grades.scale == scale
    assert profile.grades.threshold == (None if threshold is None else pytest.approx(threshold))


@pytest.mark.parametrize(
    ("grades", "message"),
    [
        ({"scale": "10"}, "grades.scale: must be one of 'auto', '1', '100', got '10'"),
        ({"scale": True}, "grades.scale: must be one of"),
        ({"scale": "1", "threshold": 80}, "grades.threshold: must be a score from 0 to 1 (grades.scale is '1')"),
    ],
)
def test_a_bad_scale_or_a_threshold_off_it_is_one_clear_sentence(grades: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError) as refused:
        parse_profile({"stages": [{"duration": "1s", "rate": "1/s"}], "grades": grades}, "p.toml", Path())
    assert message in str(refused.value) and str(refused.value).startswith("p.toml: ")


@pytest.mark.parametrize("raw", [-1, 100.5, 250, "0.8", None, True, [80]])
def test_an_unusable_score_is_none_but_the_grade_is_kept(raw: object) -> None:
    event = parse_event(graded(score=raw, status="failed"))
    assert isinstance(event, CallGraded)
    assert event.score is None
    assert event.status == "failed"


def test_normalise_score_rejects_non_finite_values() -> None:
    assert normalise_score(float("nan")) is None
    assert normalise_score(float("inf")) is None


def test_a_pending_grade_without_a_score() -> None:
    event = parse_event(body("call.graded", {"call_id": "c1", "grade": {"status": "pending"}}))
    assert event == CallGraded("c1", None, None, "pending", None, None, None)


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"\xff\xfe", b'{"type": "call.graded",}'])
def test_bad_json_is_a_value_not_an_exception(raw: bytes) -> None:
    event = parse_event(raw)
    assert isinstance(event, BadEvent)
    assert event.reason == "bad_json"


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'"test-call.completed"',
        b'{"data": {}}',
        b'{"type": 3, "data": {}}',
        b'{"type": "", "data": {}}',
        b'{"type": "test-call.completed"}',
        b'{"type": "test-call.completed", "data": []}',
        b'{"type": "test-call.completed", "data": {"status": "completed"}}',
        b'{"type": "test-call.completed", "data": {"id": "tc_1"}}',
        b'{"type": "test-call.completed", "data": {"id": true, "status": "completed"}}',
        b'{"type": "call.graded", "data": {"call_id": "c1"}}',
        b'{"type": "call.graded", "data": {"call_id": "c1", "grade": 0.8}}',
        b'{"type": "call.graded", "data": {"grade": {"score": 0.8}}}',
    ],
)
def test_a_wrong_shape_is_a_value_not_an_exception(raw: bytes) -> None:
    event = parse_event(raw)
    assert isinstance(event, BadEvent)
    assert event.reason == "bad_shape"
    assert event.message


def test_an_unknown_type_is_not_an_error() -> None:
    assert parse_event(body("test-call-batch.completed", {"id": "tcb_1"})) == UnknownEvent("test-call-batch.completed")
    assert parse_event(b'{"type": "future.thing"}') == UnknownEvent("future.thing")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
_fields = st.sampled_from(
    [
        *("id", "status", "call_id", "batch_id", "error_message", "started_at", "completed_at", "created_at"),
        "test_call_run",
    ]
)
_grade_fields = st.sampled_from(["score", "status", "call_outcome", "grader_model", "graded_at"])


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_event(raw), RunCompleted | CallGraded | UnknownEvent | BadEvent)


@given(
    kind=st.sampled_from(["test-call.completed", "call.graded"]),
    data=st.one_of(_json, st.dictionaries(_fields, _json)),
    grade_data=st.one_of(_json, st.dictionaries(_grade_fields, _json)),
    call_id=_json,
)
def test_arbitrary_json_in_known_events_never_raises(
    kind: str, data: object, grade_data: object, call_id: object
) -> None:
    if kind == "call.graded":
        data = {"call_id": call_id, "grade": grade_data}
    # stdlib json: it writes integers beyond 64 bits, which orjson.dumps refuses
    event = parse_event(json.dumps({"type": kind, "data": data}).encode())
    assert isinstance(event, RunCompleted | CallGraded | BadEvent)
    if isinstance(event, CallGraded) and event.score is not None:
        assert 0.0 <= event.score <= 1.0


# -- dedupe ------------------------------------------------------------------------------------------------


def _event(raw: bytes) -> RunCompleted | CallGraded:
    event = parse_event(raw)
    assert isinstance(event, RunCompleted | CallGraded)
    return event


def test_a_run_completion_delivered_twice_is_admitted_once() -> None:
    deduper = Deduper()
    assert deduper.admit(_event(completed()))
    assert not deduper.admit(_event(completed()))
    # fires once per run: even a resend with a later updated_at is the same completion
    assert not deduper.admit(_event(completed(updated_at="2026-11-29T18:25:09.000Z")))
    assert deduper.admit(_event(completed(id="tc_other")))


def test_fast_then_full_grades_both_pass_and_identical_resends_do_not() -> None:
    deduper = Deduper()
    fast = _event(graded(score=0.7, model="grader-fast", at="2026-11-29T18:25:06.000Z"))
    full = _event(graded(score=0.9, model="grader-full", at="2026-11-29T18:26:30.000Z"))
    assert deduper.admit(fast)
    assert deduper.admit(full)
    assert not deduper.admit(_event(graded(score=0.7, model="grader-fast", at="2026-11-29T18:25:06.000Z")))
    assert not deduper.admit(full)


def test_a_regrade_by_the_same_model_later_still_passes() -> None:
    deduper = Deduper()
    assert deduper.admit(_event(graded(at="2026-11-29T18:25:06.000Z")))
    assert deduper.admit(_event(graded(at="2026-11-29T18:40:00.000Z")))


def test_pending_then_completed_grade_both_pass() -> None:
    deduper = Deduper()
    pending = _event(body("call.graded", {"call_id": "c1", "grade": {"status": "pending"}}))
    assert deduper.admit(pending)
    assert deduper.admit(_event(graded(call_id="c1")))


def test_a_grade_before_its_run_completion_is_fine() -> None:
    deduper = Deduper()
    assert deduper.admit(_event(graded()))
    assert deduper.admit(_event(completed()))
    assert not deduper.admit(_event(graded()))
    assert not deduper.admit(_event(completed()))


def test_a_run_and_a_call_sharing_an_id_do_not_collide() -> None:
    deduper = Deduper()
    assert deduper.admit(_event(completed(id="x1")))
    assert deduper.admit(_event(graded(call_id="x1")))


def test_seen_does_not_remember_so_a_failed_processing_is_retried() -> None:
    deduper = Deduper()
    event = _event(completed())
    assert not deduper.seen(event)
    assert not deduper.seen(event)
    deduper.remember(event)
    assert deduper.seen(event)


def test_dedupe_memory_is_bounded_least_recently_seen_first() -> None:
    deduper = Deduper(max_keys=2)
    a, b, c = (_event(completed(id=name)) for name in ("a", "b", "c"))
    deduper.admit(a)
    deduper.admit(b)
    assert deduper.seen(a)  # a is now the most recently seen
    deduper.admit(c)
    assert len(deduper) == 2
    assert deduper.seen(a)
    assert not deduper.seen(b)
