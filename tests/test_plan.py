"""The pacer: due times follow the integral of the rate, whatever the stage list."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import pytest

from stressor import plan
from stressor.estimate import assumptions_line, estimate, plan_document, polls_within
from stressor.plan import open_spans, open_starts, stage_at, stage_windows, target_in_flight
from stressor.polling import PollSchedule
from stressor.profile import Profile, load_profile, parse_profile

PROFILES = Path(__file__).parent.parent / "profiles"


def profile_of(stages: list[dict], **extra: object) -> Profile:
    return parse_profile({"stages": stages, **extra}, "p.toml", Path())


def test_constant_rate_is_evenly_spaced() -> None:
    profile = profile_of([{"duration": "2s", "rate": "4/s"}])
    assert [s.due_s for s in open_starts(profile)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_ramp_from_zero_speeds_up() -> None:
    profile = profile_of([{"duration": "10s", "rate": {"from": 0, "to": "2/s"}}])
    dues = [s.due_s for s in open_starts(profile)]
    assert len(dues) == 10  # integral = 10 batches
    gaps = [b - a for a, b in itertools.pairwise(dues)]
    assert all(later < earlier for earlier, later in itertools.pairwise(gaps))


def test_variants_are_interleaved_and_pauses_start_nothing() -> None:
    profile = profile_of(
        [
            {"duration": "1s", "rate": "4/s"},
            {"duration": "1s", "pause": True},
            {"duration": "1s", "rate": "2/s"},
        ],
        variants=[{"name": "spark"}, {"name": "bolt"}],
    )
    starts = list(open_starts(profile))
    assert [s.variant for s in starts] == [0, 1, 0, 1, 0, 1]
    assert [s.due_s for s in starts] == [0.0, 0.25, 0.5, 0.75, 2.0, 2.5]  # resumes at the pause's end
    assert all(not (1.0 <= s.due_s < 2.0) for s in starts)


def test_closed_stage_target_ramps() -> None:
    profile = profile_of([{"duration": "10s", "in_flight": {"from": 10, "to": 40}}])
    window = stage_windows(profile)[0]
    assert [target_in_flight(window, t) for t in (0, 5, 10)] == [10, 25, 40]
    assert stage_at(profile, 3.0) == window
    assert stage_at(profile, 10.0) is None


def test_a_fraction_of_a_batch_is_carried_over_pauses_and_closed_stages() -> None:
    # Each stretch integrates to 2/3 of a batch: over six of them the integral is 4, so 4 batches start, the
    # one due when it reaches 2 (the end of the third stretch) at the start of the next open stretch.
    spells = [{"duration": "20s", "rate": "2/min"}, {"duration": "40s", "pause": True}] * 6
    assert [s.due_s for s in open_starts(profile_of(spells))] == pytest.approx([0.0, 70.0, 180.0, 250.0])
    # 5 x 0.5 batch between closed stages: 2.5 in all, so 3 starts, not one per open stretch.
    spells = [{"duration": "10s", "rate": "0.05/s"}, {"duration": "1s", "in_flight": 1}] * 5
    assert [s.due_s for s in open_starts(profile_of(spells))] == pytest.approx([0.0, 22.0, 44.0])


def test_estimate_counts_runs_cost_and_peak() -> None:
    profile = profile_of(
        [{"duration": "60s", "rate": "1/s"}, {"duration": "60s", "in_flight": 20}],
        batch={"runs": 5, "stagger": "1s"},
        mean_call_duration="45s",
        target={"poll_interval": "1s", "poll_interval_max": "1s"},
        cost={"cost_per_run_cents": 8, "charge_multiplier": 2},
    )
    stages, total = estimate(profile)
    assert (stages[0].batches, stages[0].runs) == (60, 300)
    assert stages[0].cost_cents == 300 * 16
    # Little's law: 5 runs/s x (2 s mean stagger offset + 45 s call + 1 s poll) = 240 in flight.
    assert stages[0].peak_in_flight == pytest.approx(240)
    # The closed stage wants 20, but the 240 runs the open stage started are still in flight when it begins.
    assert stages[1].peak_in_flight == pytest.approx(240)
    assert total.peak_in_flight == pytest.approx(240)
    assert total.runs == stages[0].runs + stages[1].runs
    assert total.cost_cents == total.runs * 16
    # The 240 runs in flight sit at the top of the run list: 60 POSTs, and a scan of its top (2 pages of 200)
    # every second while runs are open (the 60 s stage and 48 s of run lifetime).
    assert stages[0].requests == 60 + (60 + 48) * 2


def test_a_closed_stage_after_a_quiet_spell_peaks_at_its_target() -> None:
    profile = profile_of(
        [{"duration": "10s", "rate": "1/s"}, {"duration": "2m", "pause": True}, {"duration": "60s", "in_flight": 20}],
        mean_call_duration="45s",
        target={"poll_interval": "1s", "poll_interval_max": "1s"},
    )
    stages, total = estimate(profile)
    assert stages[0].peak_in_flight == pytest.approx(10)  # 10 runs started, all still going at its end
    assert stages[1].peak_in_flight == pytest.approx(10)  # the pause starts nothing, its runs go on
    assert stages[2].peak_in_flight == 20
    assert total.peak_in_flight == 20


def test_peak_counts_runs_still_going_from_earlier_stages() -> None:
    # profiles/step.toml against the real API: 55 s calls outlive every 6 s stair, so at the end of the last
    # stair all 600 runs are in flight; each stair's peak is what every stair up to it started.
    shipped = load_profile(PROFILES / "step.toml")
    real = replace(
        shipped,
        mean_call_duration_s=55.0,
        target=replace(shipped.target, poll_interval_s=1.0, poll_interval_max_s=1.0, poll_interval_max_default=False),
    )
    stages, total = estimate(real)
    assert [s.runs for s in stages] == [60, 120, 180, 240]
    assert [s.peak_in_flight for s in stages] == pytest.approx([60, 180, 360, 600])
    assert total.peak_in_flight == pytest.approx(600)
    # With the simulator's 45 ms calls, a run lives 0.115 s (20 ms mean stagger offset, 45 ms, one 50 ms
    # poll): each stair holds its own rate x 5 runs x 0.115 s, nothing left from the one before.
    stages, total = estimate(shipped)
    assert [s.peak_in_flight for s in stages] == pytest.approx([1.15, 2.3, 3.45, 4.6])
    assert total.peak_in_flight == pytest.approx(4.6)


def test_peak_of_a_spike_lies_inside_a_stage() -> None:
    # Rate up 0 -> 2/s over 10 s, then down over 10 s; runs live 4 s (3 s call, 1 s poll). Runs in flight
    # peak at t = 12 s, where the rate 4 s earlier equals the rate now: the integral over [8, 12] is 7.2.
    profile = profile_of(
        [
            {"duration": "10s", "rate": {"from": 0, "to": "2/s"}},
            {"duration": "10s", "rate": {"from": "2/s", "to": 0}},
        ],
        mean_call_duration="3s",
        target={"poll_interval": "1s", "poll_interval_max": "1s"},
    )
    stages, total = estimate(profile)
    assert stages[0].peak_in_flight == pytest.approx(6.4)  # at t = 10 s: the integral over [6, 10]
    assert stages[1].peak_in_flight == pytest.approx(7.2)
    assert total.peak_in_flight == pytest.approx(7.2)


def test_short_stages_and_closed_stages_are_not_overestimated() -> None:
    # 10 s of 1 batch/s with 55 s calls: Little's law would say 55 x 5 in flight, but only 50 runs start.
    short = profile_of([{"duration": "10s", "rate": "1/s"}], batch={"runs": 5}, mean_call_duration="55s")
    stages, _ = estimate(short)
    assert stages[0].runs == 50
    assert stages[0].peak_in_flight <= stages[0].runs
    closed = profile_of([{"duration": "10s", "in_flight": 16}], mean_call_duration="55s")
    stages, _ = estimate(closed)
    assert stages[0].runs >= 16  # the runs in flight at the peak are runs too


def test_a_day_at_1000_per_s_is_counted_from_the_integral_not_batch_by_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    def walk(_: Profile) -> None:
        raise AssertionError("the estimate walked the batches one by one")

    monkeypatch.setattr(plan, "open_starts", walk)
    profile = profile_of(
        [{"duration": "1m", "rate": "1/s"}, {"duration": "24h", "rate": "1000/s"}, {"duration": "1m", "pause": True}],
        target={"poll_interval": "1s", "poll_interval_max": "1s"},
        mean_call_duration="45s",
    )
    stages, total = estimate(profile)
    assert [s.batches for s in stages] == [60, 86_400_000, 0]
    assert total.runs == 86_400_060
    assert stages[1].peak_in_flight == pytest.approx(1000 * 46)  # Little's law: 1000/s x (45 s + 1 s poll)
    assert [span.batches for span in open_spans(profile)] == [60, 86_400_000]


def test_polls_grow_with_the_batch_age_up_to_the_bound() -> None:
    fixed = PollSchedule(1.0, 1.0)
    assert polls_within(fixed, 47.0) == 47
    grows = PollSchedule(1.0, 10.0)
    # 1 s apart for the first 10 s, then 10 % of the age: 10 + 10 ln(46 / 10) = 25.3 polls in 46 s.
    assert polls_within(grows, 46.0) == 26
    # Past 100 s of age the interval is the bound: 10 + 10 ln 10 + (400 - 100) / 10 = 63.0.
    assert polls_within(grows, 400.0) == math.ceil(10 + 10 * math.log(10) + 30)
    assert polls_within(grows, 0.0) == 0


def test_requests_follow_adaptive_polls_and_webhooks() -> None:
    # 25 runs/s of ~48 s: some 1,200 in flight, packed at the top of the run list. The shared scan reads down
    # to all of them (6 pages of 200 cost less than polling 240 batches), once a second while runs are open.
    stages = [{"duration": "60s", "rate": "5/s"}]
    common = {"batch": {"runs": 5, "stagger": "1s"}, "mean_call_duration": "45s"}
    fixed, _ = estimate(profile_of(stages, target={"poll_interval": "1s", "poll_interval_max": "1s"}, **common))
    adaptive, _ = estimate(profile_of(stages, target={"poll_interval": "1s", "poll_interval_max": "10s"}, **common))
    assert fixed[0].requests == 300 + (60 + 48) * 6
    # Adaptive polls see a run end later: 2 s offset + 45 s + a 4.7 s interval at age 47 s, for 25 runs/s.
    assert adaptive[0].peak_in_flight == pytest.approx(25 * (2 + 45 + 4.7))
    # The plan counts a scan every shortest interval down to the oldest run, as if every batch were due: a
    # bound (older batches are polled less often, and the scan reads only as deep as those due).
    assert adaptive[0].requests == 300 + math.ceil(60 + 51.7) * math.ceil(25 * 51.7 / 200)
    # A fifth of the load: one scan a second (2 pages) serves every batch.
    near, _ = estimate(profile_of([{"duration": "60s", "rate": "1/s"}], target={"poll_interval": "1s"}, **common))
    assert near[0].requests == 60 + math.ceil(60 + 2 + 45 + 4.7) * 2
    hooks, _ = estimate(profile_of(stages, webhooks={"enabled": True}, **common))
    # Webhooks end the runs: one POST per batch, no polls before the fallback (2 x 45 s + 4 s of stagger).
    assert hooks[0].requests == 300
    assert hooks[0].peak_in_flight == pytest.approx(25 * (2 + 45))
    early, _ = estimate(
        profile_of(
            stages,
            webhooks={"enabled": True, "fallback": "30s"},
            target={"poll_interval": "1s", "poll_interval_max": "1s"},
            **common,
        )
    )
    # A fallback at 30 s polls every late batch from then until its last run ends (19 s, and one more poll):
    # late runs are few and far apart in the list, so each batch is polled on its own.
    assert early[0].requests == 300 * (1 + 20 + 5)


def test_call_logs_and_transcripts_add_a_get_per_run_each_grades_one_without_webhooks() -> None:
    stages = [{"duration": "60s", "rate": "1/s"}]
    common = {"batch": {"runs": 5}, "mean_call_duration": "45s", "webhooks": {"enabled": True}}
    (hooks,), _ = estimate(profile_of(stages, **common))
    (logs,), _ = estimate(profile_of(stages, calls={"fetch": True}, **common))
    (said,), _ = estimate(profile_of(stages, calls={"transcripts": True}, grades={"fetch": True}, **common))
    assert hooks.requests == 60  # one POST a batch, webhooks end the runs
    assert logs.requests == 60 + 300  # a call log per run
    assert said.requests == 60 + 2 * 300  # and its transcript; webhooks bring the grades
    polled = {"batch": {"runs": 5}, "mean_call_duration": "45s"}
    (plain,), _ = estimate(profile_of(stages, **polled))
    (graded,), _ = estimate(profile_of(stages, calls={"fetch": True}, grades={"fetch": True}, **polled))
    assert graded.requests == plain.requests + 2 * 300


def test_single_submits_post_once_per_run_and_share_the_list_reads() -> None:
    profile = profile_of(
        [{"duration": "60s", "rate": "2/s"}],
        target={"submit": "single", "poll_interval": "1s", "poll_interval_max": "1s"},
        mean_call_duration="45s",
    )
    stages, _ = estimate(profile)
    assert stages[0].runs == 120
    assert stages[0].requests == 120 + math.ceil((60 + 46) / 1)


def test_plan_document_states_its_assumptions() -> None:
    profile = profile_of(
        [{"duration": "10s", "rate": "1/s"}, {"duration": "5s", "pause": True}, {"duration": "10s", "in_flight": 4}],
        target={"poll_interval": "2s", "poll_interval_max": "20s"},
        mean_call_duration="30s",
        grace="1m",
        cost={"cost_per_run_cents": 5, "charge_multiplier": 3},
    )
    document = plan_document(profile)
    assert document["assumptions"] == {
        "mean_call_duration_s": 30.0,
        "poll_interval_s": 2.0,
        "poll_interval_max_s": 20.0,
        "webhooks": False,
        "webhook_fallback_s": None,
        "cost_per_run_cents": 5.0,
        "charge_multiplier": 3.0,
        "run_cost_cents": 15.0,
        "grace_s": 60.0,
    }
    assert [s["model"] for s in document["stages"]] == ["open", "pause", "closed"]
    assert [s["batches"] for s in document["stages"]] == [10, 0, 4]
    assert [s["runs"] for s in document["stages"]] == [10, 0, 4]
    assert [s["cost_cents"] for s in document["stages"]] == [150.0, 0.0, 60.0]
    # 10 runs, each still in flight at the end of the open stage (30 s call + a 3 s poll at age 30 s).
    assert [s["peak_in_flight"] for s in document["stages"]] == pytest.approx([10, 10, 10])
    assert document["total"]["runs"] == 14
    assert document["total"]["duration_s"] == 25.0
    assert document["total"]["requests"] == sum(s["requests"] for s in document["stages"])


def test_the_assumptions_head_the_plan() -> None:
    stages = [{"duration": "10s", "rate": "1/s"}]
    adaptive = profile_of(stages, target={"poll_interval": "1s"}, mean_call_duration="55s")
    assert assumptions_line(adaptive) == (
        "mean call duration 55s (profile: mean_call_duration), poll interval 1s growing to 10s, "
        "16 cents per run (8 x 2)"
    )
    fixed = profile_of(stages, target={"poll_interval": "2s", "poll_interval_max": "2s"})
    assert "poll interval 2s, " in assumptions_line(fixed)
    hooks = profile_of(stages, webhooks={"enabled": True, "fallback": "2m"})
    assert "runs end by webhook, late ones polled after 2m00.0s" in assumptions_line(hooks)
    silent = profile_of(stages, webhooks={"enabled": True, "fallback": "off"})
    assert "runs end by webhook, never polled" in assumptions_line(silent)
