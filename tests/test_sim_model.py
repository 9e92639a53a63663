"""The simulator's pure model, driven by hand-fed times (no sockets, no sleeps)."""

from __future__ import annotations

import random

import pytest

from stressor.sim.config import Distribution, SimConfig, SimConfigError
from stressor.sim.model import FAILURE_MESSAGES, FAST_GRADER_MODEL, GRADER_MODEL, SimModel
from stressor.sim.records import BatchRequest, RunRequest, SimEvent, TruthRecord

WALL = 1_800_000_000.0  # epoch seconds of monotonic 0 in these tests
AGENT = RunRequest(target_type="agent", target_id=42, scenario_prompt="reschedule my appointment")


def make_model(**settings: object) -> SimModel:
    config = SimConfig(**{"seed": 7, **settings})  # type: ignore[arg-type]
    return SimModel(config, wall_at_zero=WALL)


def batch(run_count: int = 3, stagger: float = 0.0, **fields: object) -> BatchRequest:
    return BatchRequest(run=AGENT, run_count=run_count, stagger_seconds=stagger, **fields)  # type: ignore[arg-type]


def run_until_idle(model: SimModel, step: float, start: float = 0.0, limit: int = 1_000_000) -> float:
    now = start
    for _ in range(limit):
        if model.next_event_time() is None:
            return now
        now += step
        model.advance(now)
    raise AssertionError("model did not become idle")


def max_concurrency(records: list[TruthRecord]) -> int:
    # an end and a start at the same instant are a hand-over, not an overlap: ends sort first
    edges = [(r.started, 1) for r in records if r.started is not None]
    edges += [(r.completed, -1) for r in records if r.completed is not None]
    busy = peak = 0
    for _, delta in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        busy += delta
        peak = max(peak, busy)
    return peak


# -- distributions and settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lognormal(45,0.3)", Distribution.lognormal(45, 0.3)),
        ("fixed(30)", Distribution.fixed(30)),
        (" Uniform( 10 , 20 ) ", Distribution.uniform(10, 20)),
        ("exponential(12.5)", Distribution.exponential(12.5)),
        ("30", Distribution.fixed(30)),
    ],
)
def test_distribution_parses_the_documented_syntax(text: str, expected: Distribution) -> None:
    assert Distribution.parse(text) == expected
    assert Distribution.parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("gaussian(1,2)", "unknown distribution"),
        ("fixed(1,2)", "needs 1 number"),
        ("uniform(5)", "needs 2 number"),
        ("fixed(abc)", "not a number"),
        ("lognormal(45", "is not a distribution"),
        ("uniform(20,10)", "0 <= a <= b"),
        ("fixed(-1)", "at least 0"),
        ("exponential(0)", "above 0"),
        ("fixed(inf)", "finite"),
    ],
)
def test_distribution_rejects_bad_text_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=r"expected|invalid|finite") as caught:
        Distribution.parse(text)
    assert fragment in str(caught.value)


def test_distribution_samples_stay_in_range_and_mean_is_right() -> None:
    rng = random.Random(1)
    uniform = Distribution.uniform(10, 20)
    assert all(10 <= uniform.sample(rng) <= 20 for _ in range(1000))
    assert Distribution.fixed(30).sample(rng) == 30
    lognormal = Distribution.lognormal(45, 0.3)
    samples = sorted(lognormal.sample(rng) for _ in range(2001))
    assert 40 < samples[1000] < 50  # the median is the median
    assert lognormal.mean == pytest.approx(45 * 2.718281828 ** (0.09 / 2))


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"slots": 0}, "slots"),
        ({"slots": True}, "slots"),
        ({"time_scale": 0}, "time_scale"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"estimated_cost_cents": -1}, "estimated_cost_cents"),
        ({"charge_multiplier": 0}, "charge_multiplier"),
        ({"api_key": ""}, "api_key"),
        ({"api_key": "two words"}, "api_key"),
        ({"seed": 1.5}, "seed"),
        ({"product": "lightning"}, "product"),
        ({"call_duration": "fixed(3)"}, "call_duration"),
    ],
)
def test_bad_settings_raise_one_sentence_naming_the_setting(settings: dict[str, object], setting: str) -> None:
    with pytest.raises(SimConfigError) as caught:
        SimConfig(**settings)  # type: ignore[arg-type]
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting)
    assert isinstance(caught.value, ValueError)


def test_config_from_text_parses_the_duration_and_names_bad_settings() -> None:
    config = SimConfig.from_text(slots=4, call_duration="fixed(30)", api_key="k", seed=1)
    assert config == SimConfig(slots=4, call_duration=Distribution.fixed(30), api_key="k", seed=1)
    assert SimConfig.from_text() == SimConfig()
    with pytest.raises(SimConfigError, match="call_duration: 'fixed' is not a distribution") as caught:
        SimConfig.from_text(call_duration="fixed")
    assert caught.value.setting == "call_duration"
    with pytest.raises(SimConfigError, match="slot is not a simulator setting"):
        SimConfig.from_text(slot=3)
    with pytest.raises(SimConfigError, match="time_scale must be"):
        SimConfig.from_text(time_scale=0.0)


def test_defaults_match_the_brief() -> None:
    config = SimConfig()
    assert config.slots == 20
    assert config.call_duration == Distribution.lognormal(45, 0.3)
    assert config.time_scale == 0.001
    assert (config.failure_rate, config.estimated_cost_cents, config.charge_multiplier) == (0, 16, 2)
    assert config.api_key is None and config.seed is None


# -- life cycle and timestamps ------------------------------------------------------------------------------


def test_single_run_timestamps_are_the_true_event_times() -> None:
    model = make_model(call_duration=Distribution.fixed(30), time_scale=0.001)
    run = model.create_run(AGENT, now=5.0)
    assert run.status == "queued"
    assert run.created == WALL + 5.0
    assert run.started is None and run.call_id is None
    # nobody asks until long after the call ended: the stamps are still the true times
    model.advance(100.0)
    done = model.get_run(run.id)
    assert done is not None
    assert done.status == "completed"
    assert done.released == WALL + 5.0
    assert done.started == WALL + 5.0
    assert done.completed == pytest.approx(WALL + 5.030, abs=1e-6)
    assert done.duration_seconds == 30
    assert done.updated == done.completed
    assert type(done.call_id) is int and type(done.id) is int and done.call_id != done.id
    assert model.run_for_call(done.call_id) == done


def test_run_is_in_progress_between_start_and_end() -> None:
    model = make_model(call_duration=Distribution.fixed(30), time_scale=0.01)  # 0.3 s calls
    run = model.create_run(AGENT, now=0.0)
    model.advance(0.1)
    current = model.get_run(run.id)
    assert current is not None and current.status == "in_progress"
    assert current.grade is not None and current.grade.status == "pending"
    assert model.in_progress_count == 1
    model.advance(0.3)
    ended = model.get_run(run.id)
    assert ended is not None and ended.status == "completed" and ended.grade is not None
    assert ended.grade.status == "completed" and 0 <= (ended.grade.score or 0) <= 100


def test_batch_runs_are_created_at_once_and_released_one_stagger_apart() -> None:
    model = make_model(call_duration=Distribution.fixed(1), time_scale=0.001)
    created = model.create_batch(batch(run_count=5, stagger=2.5), now=10.0)
    assert created.status == "pending" and len(created.run_ids) == 5
    runs = [model.get_run(run_id) for run_id in created.run_ids]
    assert all(r is not None and r.status == "queued" and r.created == WALL + 10.0 for r in runs)
    model.advance(10.0 + 2.5 * 2 + 0.0001)
    truth = {record.id: record for record in model.truth()}
    assert [truth[str(run_id)].released is not None for run_id in created.run_ids] == [
        True,
        True,
        True,
        False,
        False,
    ]
    run_until_idle(model, step=0.7, start=15.0)
    for index, run_id in enumerate(created.run_ids):
        record = next(r for r in model.truth() if r.id == str(run_id))  # truth holds ids as text
        assert record.index == index and record.batch_id == str(created.id)
        assert record.released == pytest.approx(WALL + 10.0 + index * 2.5, abs=1e-6)
        assert record.released - record.created == pytest.approx(index * 2.5, abs=1e-6)
        assert record.started == record.released  # free slots: no wait


def test_fractional_stagger_is_honoured_in_real_seconds_not_scaled() -> None:
    model = make_model(time_scale=0.001)
    created = model.create_batch(batch(run_count=3, stagger=0.25), now=0.0)
    run_until_idle(model, step=0.05)
    released = [next(r for r in model.truth() if r.id == str(run_id)).released for run_id in created.run_ids]
    assert released == pytest.approx([WALL, WALL + 0.25, WALL + 0.5], abs=1e-6)


def test_never_more_runs_in_progress_than_slots_and_freed_slots_are_reused_at_once() -> None:
    model = make_model(slots=3, call_duration=Distribution.uniform(20, 60), time_scale=0.01)
    for start in (0.0, 0.05, 0.1, 0.15):
        model.create_batch(batch(run_count=10, stagger=0.01), now=start)
    run_until_idle(model, step=0.013, start=0.15)
    records = model.truth()
    assert all(r.status == "completed" for r in records)
    assert max_concurrency(records) == 3
    ends = {r.completed for r in records}
    waited = [r for r in records if r.started is not None and r.released is not None and r.started > r.released]
    assert waited, "the load was meant to queue"
    # a run that had to wait started exactly when another run freed its slot
    assert all(r.started in ends for r in waited)


def test_queue_is_first_in_first_out_by_release_time() -> None:
    model = make_model(slots=2, call_duration=Distribution.uniform(10, 50), time_scale=0.01)
    model.create_batch(batch(run_count=8, stagger=0.03), now=0.0)
    model.create_batch(batch(run_count=8, stagger=0.05), now=0.01)
    model.create_run(AGENT, now=0.02)
    run_until_idle(model, step=0.011, start=0.02)
    records = model.truth()
    by_release = sorted(records, key=lambda r: (r.released, r.created))
    by_start = sorted(records, key=lambda r: (r.started, r.released, r.created))
    assert [r.id for r in by_start] == [r.id for r in by_release]


def test_results_do_not_depend_on_how_often_the_model_is_advanced() -> None:
    def scenario(step: float) -> list[TruthRecord]:
        model = make_model(slots=4, failure_rate=0.3, time_scale=0.01)
        model.create_batch(batch(run_count=20, stagger=0.02), now=0.0)
        model.advance(0.5)  # requests arrive at fixed times whatever the polling
        model.create_batch(batch(run_count=20, stagger=0.0), now=0.5)
        run_until_idle(model, step=step, start=0.5)
        return model.truth()

    assert scenario(0.001) == scenario(0.37) == scenario(1000.0)


def test_same_seed_same_runs_other_seed_other_runs() -> None:
    def truth(seed: int) -> list[TruthRecord]:
        model = make_model(seed=seed, failure_rate=0.5)
        model.create_batch(batch(run_count=10), now=0.0)
        run_until_idle(model, step=1.0)
        return model.truth()

    assert truth(3) == truth(3)
    assert truth(3) != truth(4)


def test_unseeded_model_picks_and_reports_a_seed() -> None:
    model = SimModel(SimConfig(), wall_at_zero=WALL)
    assert isinstance(model.seed, int)
    assert SimModel(SimConfig(seed=5), wall_at_zero=WALL).seed == 5


def test_failure_rate_is_respected_with_a_fixed_seed() -> None:
    model = make_model(slots=50, failure_rate=0.2)
    for i in range(20):
        model.create_batch(batch(run_count=20), now=i * 0.001)
    run_until_idle(model, step=0.05, start=0.02)
    records = model.truth()
    assert len(records) == 400
    failed = [model.get_run(r.id) for r in records if r.status == "failed"]
    assert 0.15 <= len(failed) / len(records) <= 0.25
    assert all(run is not None and run.error_message in FAILURE_MESSAGES for run in failed)
    completed = [model.get_run(r.id) for r in records if r.status == "completed"]
    assert all(run is not None and run.error_message == "" for run in completed)


def test_batch_counters_and_status_follow_their_runs() -> None:
    model = make_model(slots=1, call_duration=Distribution.fixed(10), time_scale=0.01, failure_rate=0.5, seed=11)
    created = model.create_batch(batch(run_count=4, stagger=0.0, name="nightly"), now=0.0)
    assert (created.status, created.total_runs, created.completed_runs, created.failed_runs) == (
        "pending",
        4,
        0,
        0,
    )
    assert created.estimated_cost_cents == 64
    assert created.name == "nightly"
    model.advance(0.0)
    started = model.get_batch(created.id)
    assert started is not None and started.status == "in_progress" and started.started == WALL
    model.advance(0.15)  # one call of 0.1 s ended, the second is running
    middle = model.get_batch(created.id)
    assert middle is not None and middle.completed_runs + middle.failed_runs == 1
    assert middle.updated == pytest.approx(WALL + 0.1, abs=1e-6)
    model.advance(1.0)
    done = model.get_batch(created.id)
    assert done is not None and done.completed_runs + done.failed_runs == 4
    assert done.completed == pytest.approx(WALL + 0.4, abs=1e-6)
    assert done.status == ("failed" if done.completed_runs == 0 else "completed")


def test_batch_fails_only_when_every_run_failed() -> None:
    model = make_model(failure_rate=1.0)
    created = model.create_batch(batch(run_count=3), now=0.0)
    model.advance(10.0)
    done = model.get_batch(created.id)
    assert done is not None and done.status == "failed" and done.failed_runs == 3
    assert done.error_message
    healthy = make_model(failure_rate=0.0)
    other = healthy.create_batch(batch(run_count=3), now=0.0)
    healthy.advance(10.0)
    assert (healthy.get_batch(other.id) or other).status == "completed"


def test_scenario_prompts_are_cycled_over_the_runs() -> None:
    model = make_model()
    created = model.create_batch(batch(run_count=5, scenario_prompts=("a", "b")), now=0.0)
    prompts = [model.get_run(run_id).scenario_prompt for run_id in created.run_ids]  # type: ignore[union-attr]
    assert prompts == ["a", "b", "a", "b", "a"]
    single_prompt = model.create_batch(batch(run_count=2), now=0.0)
    assert {model.get_run(i).scenario_prompt for i in single_prompt.run_ids} == {AGENT.scenario_prompt}  # type: ignore[union-attr]


def test_truth_reports_none_for_what_has_not_happened_yet() -> None:
    model = make_model(slots=1, call_duration=Distribution.fixed(10), time_scale=0.01)
    model.create_batch(batch(run_count=3, stagger=1.0), now=0.0)
    model.advance(0.05)
    first, second, third = model.truth()
    assert first.status == "in_progress" and first.started == WALL and first.completed is None
    assert second.status == "queued" and second.released is None and second.started is None
    assert third.released is None


def test_next_event_time_tells_when_to_wake() -> None:
    model = make_model(call_duration=Distribution.fixed(10), time_scale=0.01)
    assert model.next_event_time() is None
    model.create_batch(batch(run_count=2, stagger=3.0), now=1.0)
    assert model.next_event_time() == 1.0
    model.advance(1.0)
    assert model.next_event_time() == pytest.approx(1.1)  # end of the first call
    model.advance(1.1)
    assert model.next_event_time() == 4.0  # release of the second run
    model.advance(10.0)
    assert model.next_event_time() is None


def test_time_never_goes_back() -> None:
    model = make_model(call_duration=Distribution.fixed(10), time_scale=0.01)
    model.advance(5.0)
    run = model.create_run(AGENT, now=1.0)  # an earlier reading counts as the latest one
    assert run.created == WALL + 5.0


def test_listeners_see_every_event_in_time_order() -> None:
    model = make_model(call_duration=Distribution.fixed(10), time_scale=0.01)
    seen: list[SimEvent] = []
    model.add_listener(seen.append)
    created = model.create_batch(batch(run_count=2, stagger=0.05), now=0.0)
    model.advance(1.0)
    kinds = [event.kind for event in seen]
    assert kinds[:3] == ["batch.created", "run.created", "run.created"]
    assert kinds.count("run.started") == 2 and kinds.count("run.ended") == 2
    # the batch ends with its last run; that run's grade follows at the same instant (grade_delay 0)
    assert kinds[-2:] == ["batch.ended", "call.graded"] and kinds.count("call.graded") == 2
    assert [event.at for event in seen] == sorted(event.at for event in seen)
    ended = [event.run for event in seen if event.kind == "run.ended"]
    assert {run.id for run in ended if run is not None} == set(created.run_ids)


def test_list_runs_newest_first_with_filters_and_pages() -> None:
    model = make_model()
    older = model.create_run(AGENT, now=0.0)
    phone = model.create_run(RunRequest(target_type="phone_number", target_id=42), now=1.0)
    other_agent = model.create_run(RunRequest(target_type="agent", target_id=7), now=2.0)
    assert [r.id for r in model.list_runs()] == [other_agent.id, phone.id, older.id]
    assert [r.id for r in model.list_runs(limit=1, offset=1)] == [phone.id]
    assert [r.id for r in model.list_runs(agent_id=42)] == [older.id]  # phone number 42 is not agent 42
    assert [r.id for r in model.list_runs(target_type="phone_number")] == [phone.id]
    model.advance(100.0)
    assert len(model.list_runs(status="completed")) == 3
    assert model.list_runs(status="queued") == []


# -- grades and webhook truth -------------------------------------------------------------------------------


def graded_events(model: SimModel) -> list[SimEvent]:
    seen: list[SimEvent] = []
    model.add_listener(lambda event: seen.append(event) if event.kind == "call.graded" else None)
    return seen


def test_grade_comes_grade_delay_after_the_end_and_only_then_is_final_in_truth() -> None:
    model = make_model(call_duration=Distribution.fixed(10), time_scale=0.01, grade_delay=0.5)
    graded = graded_events(model)
    run = model.create_run(AGENT, now=0.0)
    model.advance(0.2)  # ended at 0.1, grade due at 0.6
    ended = model.get_run(run.id)
    assert ended is not None and ended.status == "completed"
    assert ended.grade is not None and ended.grade.status == "pending" and ended.grade.score is None
    assert model.truth()[0].grade_score is None and graded == []
    assert model.next_event_time() == pytest.approx(0.6)
    model.advance(5.0)
    done = model.get_run(run.id)
    assert done is not None and done.grade is not None and done.grade.status == "completed"
    assert done.grade.graded_at == pytest.approx(WALL + 0.6)
    assert done.updated == done.completed  # grading does not touch the run record itself
    (event,) = graded
    assert event.at == done.grade.graded_at and event.run == done
    assert model.truth()[0].grade_score == done.grade.score


def test_graded_twice_fast_then_full_with_another_score() -> None:
    model = make_model(
        slots=30, call_duration=Distribution.fixed(10), time_scale=0.01, grade_delay=0.2, grade_twice=True
    )
    graded = graded_events(model)
    for i in range(30):
        model.create_run(AGENT, now=i * 0.001)
    model.advance(0.4)  # calls end at 0.100..0.129: fast grades at 0.3..0.33 are in, full ones (0.5..) are not
    assert len(graded) == 30 and all(e.run.grade.grader_model == FAST_GRADER_MODEL for e in graded)  # type: ignore[union-attr]
    assert all(record.grade_score is None for record in model.truth())  # not final yet
    model.advance(1.0)
    assert len(graded) == 60
    fast = {e.run.id: e.run.grade for e in graded[:30]}  # type: ignore[union-attr]
    full = {e.run.id: e.run.grade for e in graded[30:]}  # type: ignore[union-attr]
    for run_id, grade in full.items():
        assert grade is not None and grade.grader_model == GRADER_MODEL and grade.score is not None
        first = fast[run_id]
        assert first is not None and first.score is not None and first.score != grade.score
        # near, not equal: 0.05..0.15 apart, unless clamped at 0 or 1
        assert abs(first.score - grade.score) <= 0.15 + 0.01
        assert abs(first.score - grade.score) >= 0.05 - 1e-9 or first.score in (0.0, 1.0)
        assert grade.graded_at is not None and first.graded_at is not None
        assert grade.graded_at - first.graded_at == pytest.approx(0.2)
    truth = {record.id: record.grade_score for record in model.truth()}
    assert truth == {str(run_id): grade.score for run_id, grade in full.items()}  # type: ignore[union-attr]


def test_a_perfect_full_score_still_gets_a_different_fast_one() -> None:
    model = make_model(grade_score=Distribution.fixed(1.7), grade_twice=True)  # clamped to 1
    graded = graded_events(model)
    model.create_run(AGENT, now=0.0)
    model.advance(1000.0)
    fast, full = (event.run.grade.score for event in graded)  # type: ignore[union-attr]
    assert full == 1.0 and fast is not None and fast < 1.0


@pytest.mark.parametrize(("scale", "digits"), [(100, 2), (1, 3)])
def test_scores_are_rounded_to_what_the_scale_shows(scale: int, digits: int) -> None:
    model = make_model(slots=50, grade_scale=scale, grade_score=Distribution.uniform(0, 1))
    model.create_batch(batch(run_count=20), now=0.0)
    model.advance(1000.0)
    scores = [record.grade_score for record in model.truth()]
    assert all(s is not None and 0 <= s <= 1 and round(s, digits) == s for s in scores)
    assert len(set(scores)) > 10


def test_failed_calls_get_a_failed_grade_and_no_graded_event() -> None:
    model = make_model(failure_rate=1.0, grade_delay=0.1)
    graded = graded_events(model)
    model.create_run(AGENT, now=0.0)
    model.advance(1000.0)
    (record,) = model.truth()
    run = model.get_run(record.id)
    assert run is not None and run.grade is not None and run.grade.status == "failed"
    assert graded == [] and record.grade_score is None


def test_first_webhook_delivery_is_recorded_once() -> None:
    model = make_model(call_duration=Distribution.fixed(10), time_scale=0.01)
    run = model.create_run(AGENT, now=0.0)
    model.advance(0.5)
    model.record_webhook_delivered(run.id, 0.7)
    model.record_webhook_delivered(run.id, 0.9)  # a duplicate changes nothing
    model.record_webhook_delivered("tc_unknown", 1.0)
    assert [record.webhook_delivered for record in model.truth()] == [WALL + 0.7]
