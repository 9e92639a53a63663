"""Which grade a call keeps (GradeBook), how pushed run ends meet their followers (CompletionInbox), and, end to
end, that a full grade is never replaced by the fast one whatever order the webhooks come in."""

from __future__ import annotations

import pytest
from sessions import profile_of, run_session

from stressor.grades import GradeBook, ScoreStats
from stressor.targets.base import RunEnd
from stressor.targets.inbox import CompletionInbox
from stressor.webhooks.events import CallGraded


def graded(score: float | None, at: float | None, status: str = "completed", call_id: str = "call_1") -> CallGraded:
    return CallGraded(
        call_id=call_id,
        score=score,
        raw_score=score,
        status=status,
        call_outcome="success",
        grader_model="m",
        graded_at=at,
    )


def kept(*grades: CallGraded) -> float | None:
    book = GradeBook()
    for grade in grades:
        book.record(grade)
    current = book.get("call_1")
    assert current is not None
    return current.score


def test_the_later_grade_wins_whichever_arrives_first() -> None:
    fast, full = graded(0.6, 100.0), graded(0.9, 100.5)
    assert kept(fast, full) == 0.9
    assert kept(full, fast) == 0.9  # the full grade came first: the older fast one does not replace it


def test_on_equal_stamps_the_grade_held_stays() -> None:
    first, second = graded(0.9, 100.0), graded(0.6, 100.0)
    assert kept(first, second) == 0.9
    assert kept(second, first) == 0.6


def test_a_pending_grade_gives_way_to_a_completed_one_with_the_same_stamp() -> None:
    pending, done = graded(None, 100.0, status="pending"), graded(0.7, 100.0)
    assert kept(pending, done) == 0.7
    assert kept(done, pending) == 0.7


def test_without_stamps_the_last_to_arrive_wins() -> None:
    assert kept(graded(0.9, 100.0), graded(0.4, None)) == 0.4
    assert kept(graded(0.4, None), graded(0.9, 100.0)) == 0.9


def test_grades_are_kept_per_call() -> None:
    book = GradeBook()
    book.record(graded(0.9, 100.0, call_id="a"))
    book.record(graded(0.2, 101.0, call_id="b"))
    assert len(book) == 2
    assert book.get("a") is not None and book.get("a").score == 0.9  # type: ignore[union-attr]
    assert book.get(None) is None and book.get("c") is None


def test_score_stats_count_the_ungraded_and_those_below_the_threshold() -> None:
    stats = ScoreStats()
    for score in (0.9, 0.5, None, float("nan"), 0.79, 0.8):
        stats.add(score, 0.8)
    figures = stats.to_json()
    assert figures["count"] == 4 and figures["ungraded"] == 2 and figures["below_threshold"] == 2
    assert figures["min"] == 0.5 and figures["max"] == 0.9 and figures["p50"] == 0.79


def end(run_id: str, ns: int = 1) -> RunEnd:
    return RunEnd(run_id=run_id, status="completed", detected_ns=ns, started_at=1.0, completed_at=2.0)


def test_an_end_for_a_waiting_follower_is_handed_over_at_once_and_once() -> None:
    inbox, got = CompletionInbox(), []
    inbox.expect("r1", got.append)
    inbox.deliver(end("r1", 5))
    inbox.deliver(end("r1", 6))  # at-least-once delivery: the same end again
    inbox.forget("r1")
    inbox.deliver(end("r1", 7))
    assert [e.detected_ns for e in got] == [5]
    assert (inbox.delivered, inbox.duplicates, inbox.early, inbox.late) == (3, 2, 0, 0)


def test_an_end_that_beats_its_follower_is_kept_until_asked_for() -> None:
    inbox, got = CompletionInbox(), []
    inbox.deliver(end("r1", 5))  # the webhook came before the answer to the POST that created the run
    inbox.deliver(end("r1", 6))
    assert inbox.early == 1 and inbox.duplicates == 1 and got == []
    inbox.expect("r1", got.append)
    assert [e.detected_ns for e in got] == [5]  # the first delivery's time: when the end was first known
    inbox.deliver(end("r1", 7))
    assert len(got) == 1 and inbox.duplicates == 2


def test_an_end_after_the_run_ended_by_polling_is_late_and_handed_to_no_one() -> None:
    inbox, got = CompletionInbox(), []
    inbox.expect("r1", got.append)
    inbox.forget("r1")  # polling saw it end first
    inbox.deliver(end("r1"))
    assert got == [] and inbox.late == 1 and inbox.duplicates == 0


def test_out_of_order_ends_each_reach_their_own_follower() -> None:
    inbox, got = CompletionInbox(), []
    inbox.deliver(end("r3", 3))
    for run_id in ("r1", "r2", "r3"):
        inbox.expect(run_id, got.append)
    inbox.deliver(end("r2", 2))
    inbox.deliver(end("r1", 1))
    assert [e.run_id for e in got] == ["r3", "r2", "r1"]


def test_unclaimed_ends_are_bounded_oldest_dropped_first() -> None:
    inbox, got = CompletionInbox(max_unclaimed=2), []
    for run_id in ("r1", "r2", "r3"):
        inbox.deliver(end(run_id))
    for run_id in ("r1", "r2", "r3"):
        inbox.expect(run_id, got.append)
    assert [e.run_id for e in got] == ["r2", "r3"]  # r1 was dropped: its follower keeps waiting (polling finds it)


def test_with_fast_and_full_grades_reordered_every_run_keeps_the_full_grade() -> None:
    # No grade delay: without a gap the two grades would share graded_at, and reordered deliveries let the
    # fast one win about half the time.
    profile = profile_of(
        {
            "grace": "5s",
            "batch": {"runs": 4, "stagger": "20ms"},
            "stages": [{"duration": "2s", "rate": "10/s"}],
            "webhooks": {"enabled": True, "fallback": "off"},
            "grades": {"wait": "0.5s"},
        }
    )
    simulator = {"seed": 3, "grade_twice": True, "grade_delay": 0, "webhook_reorder": True, "grade_scale": 1}
    outcome = run_session(profile, simulator)
    truth = {run.id: run for run in outcome.truth or ()}
    records = outcome.engine.records
    assert len(records) == 80
    for record in records:
        assert truth[record.run_id].grade_score is not None
        assert record.grade == pytest.approx(truth[record.run_id].grade_score, abs=1e-9), record.run_id
