"""The simulator as the API reference describes it: the call object, ``GET /v1/calls`` and its envelope, product
tiers that differ, transcripts that follow the prompt and the tier, and an agent version that stands for a prompt
change. Through the app's handler (httpx's ASGI transport, a hand-driven clock) and the pure model."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import typer
from typer.testing import CliRunner

from stressor.cli.sim import sim
from stressor.sim.agents import REGRESSED_GRADE_SHIFT, prompt_change
from stressor.sim.app import SimApp, create_app
from stressor.sim.config import Distribution, SimConfig, SimConfigError
from stressor.sim.model import FAILURES, SimModel
from stressor.sim.records import BatchRequest, Run, RunRequest, SimEvent
from stressor.sim.tiers import PRODUCTS, TIERS
from stressor.sim.transcripts import caller_sentences, lay_out, script
from stressor.sim.views import grade_object, transcript_json, truth_from_json, truth_json
from stressor.sim.webhooks import webhook_for
from stressor.timestamps import parse_iso

pytestmark = pytest.mark.anyio

WALL = 1_800_000_000.0
AUTH = {"Authorization": "Bearer sk_live_test"}
CALL_FIELDS = {
    "call_id", "start_time", "end_time", "duration_seconds", "status", "end_reason", "product", "billable_minutes",
    "billing_total_cents", "grade_score", "grade_status",
}  # fmt: skip
PROMPTS = (
    "You are a customer who wants to know whether the store is open on Saturday afternoon.",
    "You booked an appointment for Tuesday at 10am and need to move it to Thursday, any time after 2pm.",
    "You are upset: your last invoice charged you twice. Ask for a refund of the duplicate charge.",
    "You ordered headphones five days ago and have no shipping notice. Give order number 48213 when asked.",
    "You want to cancel your monthly subscription today. Decline the first retention offer politely.",
    "You have a complicated warranty question and insist on speaking to a human.",
    "You want to add a second driver to your car insurance policy from next month.",
    "You lost your card yesterday and want it blocked and replaced.",
    "You are moving house and want your internet service moved to the new address.",
)
TIERED = {"201": "spark", "202": "bolt", "203": "storm-base", "204": "storm-extra", "205": "storm-base-with-ack"}


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def simulated(clock: FakeClock, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, SimApp]]:
    config = SimConfig.from_mapping({"seed": 5, "call_duration": "fixed(30)", "time_scale": 0.01, **settings})
    app = create_app(SimModel(config, wall_at_zero=WALL), clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=AUTH) as client:
        yield client, app


def run_body(agent: int = 201, prompt: str = PROMPTS[0], **fields: Any) -> dict[str, Any]:
    return {"target_type": "agent", "target_id": agent, "scenario_prompt": prompt, "consent_to_charge": True, **fields}


def corpus_model(runs_per_prompt: int, targets: tuple[int, ...], **settings: Any) -> SimModel:
    """A model that ran every prompt ``runs_per_prompt`` times against each agent, one batch per round and agent
    (as a corpus run or a tier benchmark sends them), until every run ended and was graded."""
    config = SimConfig.from_mapping({"seed": 11, "slots": 1000, "time_scale": 0.001, **settings})
    model = SimModel(config, wall_at_zero=WALL)
    for _ in range(runs_per_prompt):
        for agent in targets:
            request = BatchRequest(
                run=RunRequest(target_type="agent", target_id=agent),
                run_count=len(PROMPTS),
                stagger_seconds=0,
                scenario_prompts=PROMPTS,
            )
            model.create_batch(request, now=0.0)
    model.advance(1_000.0)
    assert all(run.ended for run in model.runs())
    return model


def by_product(model: SimModel) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for run in model.runs():
        runs.setdefault(run.product, []).append(run)
    return runs


def ended_transcript(run: Run) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = transcript_json(run, now=math.inf, time_scale=0.001)["transcripts"]
    return turns


# -- the call object ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "score_type"), [(100, int), (1, float)])
async def test_the_call_object_has_the_references_fields_and_their_meaning(scale: int, score_type: type) -> None:
    clock = FakeClock()
    async with simulated(clock, agents={"203": "storm-base"}, grade_scale=scale) as (client, _):
        await client.post("/v1/test-calls", json=run_body(agent=203))
        clock.now = 0.01
        run = (await client.get("/v1/test-calls")).json()[0]
        started = (await client.get(f"/v1/calls/{run['call_id']}")).json()
        clock.now = 5.0
        call = (await client.get(f"/v1/calls/{run['call_id']}")).json()
        grade = (await client.get(f"/v1/calls/{run['call_id']}/grade")).json()
    assert set(started) == set(call) == CALL_FIELDS  # the reference's names, none of the old id/started_at/ended_at
    assert started["status"] == "in_progress" and started["start_time"] is not None
    assert [started[k] for k in ("end_time", "duration_seconds", "end_reason", "billable_minutes")] == [None] * 4
    assert (started["billing_total_cents"], started["grade_score"], started["grade_status"]) == (None, None, "pending")
    assert call["call_id"] == run["call_id"] and call["status"] == "completed" and call["product"] == "storm-base"
    # 30 API seconds on storm-base (x1.04) are 31 whole seconds: end minus start, in API seconds
    seconds = (parse_iso(call["end_time"]) - parse_iso(call["start_time"])) / 0.01
    assert call["duration_seconds"] == 31 == round(seconds)
    assert call["billable_minutes"] == 1 and call["billing_total_cents"] == 16
    assert call["grade_status"] == grade["status"] == "completed"
    assert type(call["grade_score"]) is score_type and call["grade_score"] == grade["score"]
    assert call["end_reason"] == ("completed" if grade["call_outcome"] == "success" else "caller_hung_up")


async def test_a_long_call_bills_every_started_minute() -> None:
    clock = FakeClock()
    async with simulated(clock, call_duration="fixed(125)") as (client, _):
        await client.post("/v1/test-calls", json=run_body())
        clock.now = 10.0
        (call,) = (await client.get("/v1/calls")).json()["results"]
    assert (call["duration_seconds"], call["billable_minutes"], call["billing_total_cents"]) == (125, 3, 48)


async def test_failed_calls_say_why_they_ended() -> None:
    clock = FakeClock()
    async with simulated(clock, failure_rate=1.0, slots=50) as (client, _):
        await client.post("/v1/test-call-batches", json={**run_body(), "run_count": 20, "stagger_seconds": 0})
        clock.now = 10.0
        runs = {run["call_id"]: run for run in (await client.get("/v1/test-calls")).json()}
        calls = (await client.get("/v1/calls")).json()["results"]
        transcripts = {c["call_id"]: (await client.get(f"/v1/calls/{c['call_id']}/transcript")).json() for c in calls}
    reasons = dict(FAILURES)
    assert {call["end_reason"] for call in calls} == {"no_answer", "error"}  # both kinds among 20 failures
    for call in calls:
        run = runs[call["call_id"]]
        assert call["status"] == "failed" and call["end_reason"] == reasons[run["error_message"]]
        assert (call["grade_status"], call["grade_score"]) == ("failed", None)
        turns = transcripts[call["call_id"]]["transcripts"]
        # nobody answered: nothing was said; an error cut the call short of its goodbye
        assert not turns if call["end_reason"] == "no_answer" else 0 < len(turns) < 8


# -- GET /v1/calls ----------------------------------------------------------------------------------------


async def started_calls(client: httpx.AsyncClient, clock: FakeClock, count: int) -> list[Any]:
    """``count`` runs whose calls start 10 ms apart, then one more left queued (no call yet); call ids in start
    order."""
    for _ in range(count):
        await client.post("/v1/test-calls", json=run_body())
        clock.now += 0.01
    records = (await client.get("/_sim/truth")).json()["runs"]
    return [int(record["call_id"]) for record in sorted(records, key=lambda record: record["started"])]


async def test_the_calls_list_pages_newest_first_in_its_envelope() -> None:
    clock = FakeClock()
    async with simulated(clock, slots=7) as (client, _):
        call_ids = await started_calls(client, clock, 7)
        await client.post("/v1/test-calls", json=run_body())  # queued: all 7 slots are busy, it has no call
        first = (await client.get("/v1/calls", params={"limit": 3})).json()
        second = (await client.get("/v1/calls", params={"limit": 3, "offset": 3})).json()
        last = (await client.get("/v1/calls", params={"limit": 3, "offset": 6})).json()
        everything = (await client.get("/v1/calls")).json()
        most = (await client.get("/v1/calls", params={"limit": 500})).json()
        refused = [
            (await client.get("/v1/calls", params=params)).status_code
            for params in ({"limit": 0}, {"limit": "x"}, {"offset": -1})
        ]
        anonymous = await client.get("/v1/calls", headers={"Authorization": ""})
    assert set(first) == {"results", "total", "limit", "offset"}
    assert (first["total"], first["limit"], first["offset"]) == (7, 3, 0)
    newest = call_ids[::-1]
    assert [call["call_id"] for call in first["results"]] == newest[:3]
    assert [call["call_id"] for call in second["results"]] == newest[3:6] and second["offset"] == 3
    assert [call["call_id"] for call in last["results"]] == newest[6:]
    assert (everything["limit"], len(everything["results"])) == (50, 7)
    assert most["limit"] == 200
    assert all(set(call) == CALL_FIELDS for call in everything["results"])
    assert refused == [400, 400, 400] and anonymous.status_code == 401


@pytest.mark.parametrize(
    ("settings", "pages"),
    [
        ({"list_order": "oldest"}, [[0, 1, 2], [3, 4, 5]]),
        ({"list_offset": "ignored"}, [[6, 5, 4], [6, 5, 4]]),  # every page starts at the start
        ({"page_cap": 2}, [[6, 5], [3, 2]]),  # short pages that are not the end
    ],
)
async def test_the_calls_list_follows_the_switches_for_what_the_docs_leave_open(
    settings: dict[str, Any], pages: list[list[int]]
) -> None:
    clock = FakeClock()
    async with simulated(clock, slots=7, **settings) as (client, _):
        call_ids = await started_calls(client, clock, 7)
        answers = [(await client.get("/v1/calls", params={"limit": 3, "offset": at})).json() for at in (0, 3)]
    for answer, expected, offset in zip(answers, pages, (0, 3), strict=True):
        assert [call["call_id"] for call in answer["results"]] == [call_ids[i] for i in expected]
        assert (answer["total"], answer["limit"], answer["offset"]) == (7, 3, offset)  # the query, as asked


# -- tiers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_tiers_differ_in_call_length_time_to_first_audio_and_grades(seed: int) -> None:
    model = corpus_model(12, (201, 202, 203, 204, 205), agents=TIERED, seed=seed)
    runs = by_product(model)
    assert set(runs) == set(TIERED.values()) and all(len(tier) == 12 * len(PROMPTS) for tier in runs.values())
    p50 = {product: statistics.median(run.duration_seconds or 0 for run in tier) for product, tier in runs.items()}
    mean = {product: statistics.mean(run.duration_seconds or 0 for run in tier) for product, tier in runs.items()}
    grades = {product: statistics.median(run.grade.score for run in tier) for product, tier in runs.items()}  # type: ignore[union-attr,misc]
    ttfa = {
        product: statistics.median(t["ttfa_ms"] for run in tier for t in ended_transcript(run) if "ttfa_ms" in t)
        for product, tier in runs.items()
    }
    # whole seconds blur sub-second steps at p50, not in the mean
    assert p50["spark"] <= p50["bolt"] <= p50["storm-base"] <= p50["storm-base-with-ack"] <= p50["storm-extra"]
    assert mean["spark"] < mean["bolt"] < mean["storm-base"] < mean["storm-base-with-ack"] < mean["storm-extra"]
    assert 1 <= p50["storm-base"] - p50["spark"] <= 2.5
    assert 1.5 <= mean["storm-base"] - mean["spark"] <= 2.1  # ~45 s calls, 4 % longer
    assert grades["spark"] < grades["bolt"] < grades["storm-base"] < grades["storm-base-with-ack"]
    assert grades["storm-base-with-ack"] < grades["storm-extra"]
    assert 0.04 <= grades["storm-base"] - grades["spark"] <= 0.08
    assert ttfa["spark"] < ttfa["bolt"] < ttfa["storm-base"] < ttfa["storm-extra"]
    assert ttfa["storm-base-with-ack"] < ttfa["bolt"]  # the acknowledgement comes at once
    for product, tier in runs.items():
        assert abs(ttfa[product] - TIERS[product].ttfa_ms) <= 0.1 * TIERS[product].ttfa_ms
        # a distribution, not one value: calls of ~45 s, spread as lognormal(45,0.3) spreads them
        durations = sorted(run.duration_seconds or 0 for run in tier)
        assert 38 <= statistics.median(durations) <= 52 and durations[-10] > 1.4 * durations[9]


def test_the_kth_call_of_a_scenario_draws_alike_on_every_tier_so_tiers_differ_by_their_effect_alone() -> None:
    model = corpus_model(3, (201, 203), agents=TIERED)
    pairs: dict[tuple[str, int], dict[str, Run]] = {}
    seen: dict[tuple[str, str], int] = {}
    for run in model.runs():
        k = seen[(run.product, run.scenario_prompt)] = seen.get((run.product, run.scenario_prompt), -1) + 1
        pairs.setdefault((run.scenario_prompt, k), {})[run.product] = run
    assert len(pairs) == 3 * len(PROMPTS)
    for pair in pairs.values():
        spark, storm = pair["spark"], pair["storm-base"]
        assert storm.duration_seconds == pytest.approx(1.04 * (spark.duration_seconds or 0), abs=1)
        assert storm.grade.score == pytest.approx(min(1, spark.grade.score + 0.06), abs=0.011)  # type: ignore[union-attr,operator]
    # and the draws differ from call to call
    assert len({run.duration_seconds for run in model.runs()}) > len(PROMPTS)


def test_the_same_seed_gives_the_same_draws_and_another_seed_others() -> None:
    def drawn(seed: int) -> list[tuple[Any, ...]]:
        model = corpus_model(2, (201, 203), agents=TIERED, seed=seed, failure_rate=0.2)
        return [(r.duration_seconds, r.status, r.end_reason, r.grade.score) for r in model.runs()]  # type: ignore[union-attr]

    assert drawn(3) == drawn(3)
    assert drawn(3) != drawn(4)


def test_time_scale_scales_a_slower_tier_in_real_time_too() -> None:
    model = corpus_model(1, (201, 204), agents=TIERED, call_duration="fixed(50)", time_scale=0.01)
    real = {run.product: (run.completed or 0) - (run.started or 0) for run in model.runs()}
    assert real["spark"] == pytest.approx(0.5) and real["storm-extra"] == pytest.approx(0.535)


@pytest.mark.parametrize(
    ("text", "u", "expected"),
    [
        ("fixed(30)", 0.9, 30),
        ("uniform(10,20)", 0.25, 12.5),
        ("lognormal(45,0.3)", 0.5, 45),
        ("lognormal(45,0.3)", 0.841345, 45 * math.exp(0.3)),  # one sigma up
        ("exponential(12)", 1 - math.exp(-1), 12),
    ],
)
def test_calls_are_drawn_at_the_quantile_of_their_uniform(text: str, u: float, expected: float) -> None:
    assert Distribution.parse(text).quantile(u) == pytest.approx(expected, rel=1e-5)


# -- transcripts -------------------------------------------------------------------------------------------


def test_the_callers_lines_follow_the_scenario_prompt() -> None:
    assert caller_sentences(PROMPTS[2]) == (
        "I'm upset: my last invoice charged me twice.",
        "I'd like to ask for a refund of the duplicate charge.",
    )
    assert caller_sentences(PROMPTS[1])[0].startswith("I booked an appointment for Tuesday at 10am")
    lines = script(PROMPTS[2], "spark", 1)
    said = [line.content for line in lines if line.role == "user"]
    assert said[:3] == ["I'm upset: my last invoice charged me twice.", "Jordan Lee.", caller_sentences(PROMPTS[2])[1]]


def test_turns_fit_the_call_whatever_its_length() -> None:
    lines = script(PROMPTS[3], "storm-extra-with-ack", 1)
    for total_ms in (5, 200, 3_000, 45_000, 600_000):
        turns = lay_out(lines, total_ms)
        assert all(0 <= t.start_ms < t.end_ms <= total_ms for t in turns)
        assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(turns))
        assert len(turns) in (0, len(lines))
    # on a call long enough, an agent's turn starts its time to first audio after the caller stopped
    turns = lay_out(lines, 45_000)
    for before, turn in itertools.pairwise(turns):
        if turn.line.ttfa_ms is not None:
            assert turn.start_ms - before.end_ms == pytest.approx(turn.line.ttfa_ms, abs=1)


def test_a_version_rewords_every_agent_line_of_the_scenarios_it_changes_and_no_line_of_the_others() -> None:
    kinds: dict[str, int] = {}
    for i in range(60):
        prompt = f"You want to change order {i}. Ask for a confirmation by email."
        for product in PRODUCTS:
            before = [line.content for line in script(prompt, product, 1) if line.role == "assistant"]
            for version in (2, 3):
                change = prompt_change(prompt, version)
                kinds[change] = kinds.get(change, 0) + 1
                after = [line.content for line in script(prompt, product, version) if line.role == "assistant"]
                if change == "unchanged":
                    assert after == before
                else:
                    assert all(old != new for old, new in zip(before, after, strict=False)), (prompt, product)
    assert min(kinds.values()) > 0.25 * sum(kinds.values())  # about a third each


async def transcripts_of(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each prompt sent once to agent 201 and 203 (spark and storm-base); the transcripts once ended, by agent
    and prompt."""
    clock = FakeClock()
    found: dict[str, list[dict[str, Any]]] = {}
    async with simulated(clock, agents=TIERED, call_duration="lognormal(45,0.3)", slots=100, **settings) as (c, _):
        for agent in (201, 203):
            body = {**run_body(agent), "run_count": len(PROMPTS), "scenario_prompts": list(PROMPTS)}
            await c.post("/v1/test-call-batches", json={**body, "stagger_seconds": 0})
        clock.now = 10.0
        for run in (await c.get("/v1/test-calls")).json():
            answer = (await c.get(f"/v1/calls/{run['call_id']}/transcript")).json()
            assert answer["call_id"] == run["call_id"]
            found[f"{run['target_id']}:{run['scenario_prompt']}"] = answer["transcripts"]
    return found


def words(turns: list[dict[str, Any]], role: str | None = None) -> list[str]:
    return [t["content"] for t in turns if role is None or t["role"] == role]


async def test_transcripts_stay_the_same_for_a_configuration_and_follow_the_tier() -> None:
    first = await transcripts_of({"seed": 1})
    again = await transcripts_of({"seed": 1})
    other_seed = await transcripts_of({"seed": 2})
    assert first == again  # the same words at the same times
    assert all(words(first[key]) == words(other_seed[key]) for key in first)  # the words do not depend on the seed
    assert any(first[key] != other_seed[key] for key in first)  # the timings follow each call's drawn length
    for prompt in PROMPTS:
        spark, storm = first[f"201:{prompt}"], first[f"203:{prompt}"]
        assert spark[1]["content"] == storm[1]["content"] == caller_sentences(prompt)[0]  # the caller, alike
        assert words(spark, "assistant") != words(storm, "assistant")  # the agents, each in its tier's style
        spark_ttfa = statistics.median(t["ttfa_ms"] for t in spark if "ttfa_ms" in t)
        storm_ttfa = statistics.median(t["ttfa_ms"] for t in storm if "ttfa_ms" in t)
        assert spark_ttfa < 600 and storm_ttfa > 900
        assert all(t["role"] in ("assistant", "user") and t["start_ms"] < t["end_ms"] for t in spark + storm)


async def test_a_prompt_change_changes_the_transcripts_of_the_scenarios_it_changes_and_no_other() -> None:
    before = await transcripts_of({"seed": 1})
    after = await transcripts_of({"seed": 1, "agent_versions": {"201": 2}})
    changes = {prompt: prompt_change(prompt, 2) for prompt in PROMPTS}
    assert set(changes.values()) == {"unchanged", "reworded", "regressed"}  # these prompts show every kind
    for prompt, change in changes.items():
        key = f"201:{prompt}"
        if change == "unchanged":
            assert after[key] == before[key]
        else:
            assert words(after[key], "assistant") != words(before[key], "assistant")
            assert after[key][1]["content"] == before[key][1]["content"]  # the caller opens the same way
        assert after[f"203:{prompt}"] == before[f"203:{prompt}"]  # agent 203 was not changed


# -- the prompt-change switch and grades -------------------------------------------------------------------


def test_a_prompt_change_flips_the_outcomes_of_the_scenarios_it_breaks_and_keeps_the_others() -> None:
    before = corpus_model(8, (201,), agents=TIERED)
    after = corpus_model(8, (201,), agents=TIERED, agent_versions={"201": 2})

    def per_prompt(model: SimModel) -> dict[str, list[Run]]:
        runs: dict[str, list[Run]] = {}
        for run in model.runs():
            runs.setdefault(run.scenario_prompt, []).append(run)
        return runs

    old, new = per_prompt(before), per_prompt(after)
    truth = {record.scenario_prompt: record for record in after.truth()}
    for prompt in PROMPTS:
        change = prompt_change(prompt, 2)
        assert truth[prompt].prompt_change == change and truth[prompt].agent_version == 2
        old_outcomes = [run.grade.call_outcome for run in old[prompt]]  # type: ignore[union-attr]
        new_outcomes = [run.grade.call_outcome for run in new[prompt]]  # type: ignore[union-attr]
        old_scores = [run.grade.score for run in old[prompt]]  # type: ignore[union-attr]
        new_scores = [run.grade.score for run in new[prompt]]  # type: ignore[union-attr]
        assert old_outcomes.count("success") >= 7  # mostly success before the change
        if change == "regressed":
            assert new_outcomes.count("failure") >= 6
            drop = statistics.mean(old_scores) - statistics.mean(new_scores)  # type: ignore[arg-type]
            assert drop == pytest.approx(-REGRESSED_GRADE_SHIFT, abs=0.05)
            failed = [run for run in new[prompt] if run.grade.call_outcome == "failure"]  # type: ignore[union-attr]
            assert all(run.end_reason == "agent_hung_up" for run in failed)
        else:  # the same draws as before the change: the same grades and outcomes exactly
            assert (new_outcomes, new_scores) == (old_outcomes, old_scores)


async def test_grades_say_the_same_in_call_graded_webhooks_and_the_grade_endpoint() -> None:
    clock = FakeClock()
    graded: list[SimEvent] = []
    async with simulated(clock, agent_versions={"201": 3}, grade_twice=True, grade_delay=0.05) as (client, app):
        app.model.add_listener(lambda event: graded.append(event) if event.kind == "call.graded" else None)
        body = {**run_body(), "run_count": len(PROMPTS), "scenario_prompts": list(PROMPTS), "stagger_seconds": 0}
        await client.post("/v1/test-call-batches", json=body)
        clock.now = 30.0
        runs = (await client.get("/v1/test-calls")).json()
        answers = {run["call_id"]: (await client.get(f"/v1/calls/{run['call_id']}/grade")).json() for run in runs}
    latest: dict[Any, dict[str, Any]] = {}
    for event in graded:
        webhook = webhook_for(event)
        assert webhook is not None and event.run is not None
        data = orjson.loads(webhook.body)["data"]
        assert data["grade"] == grade_object(event.run.grade)  # type: ignore[arg-type]
        latest[data["call_id"]] = data["grade"]
    assert len(graded) == 2 * len(PROMPTS)  # fast, then full
    for call_id, answer in answers.items():
        assert {key: value for key, value in answer.items() if key != "call_id"} == latest[call_id]
        assert set(answer) == {"call_id", "score", "status", "call_outcome", "goal_achievement", "summary",
                               "grader_model", "graded_at"}  # fmt: skip
    outcomes = {run["scenario_prompt"]: answers[run["call_id"]]["call_outcome"] for run in runs}
    for prompt, outcome in outcomes.items():
        assert outcome in ("success", "failure")
        if prompt_change(prompt, 3) != "regressed":
            assert outcome == "success"


# -- settings and ground truth -----------------------------------------------------------------------------


def test_agents_and_versions_are_read_from_a_table_or_a_flags_text() -> None:
    from_table = SimConfig.from_mapping({"agents": {"202": "bolt", "201": "Spark"}, "agent_versions": {"201": 2}})
    from_text = SimConfig.from_mapping({"agents": "201=spark, 202=bolt", "agent_versions": "201=2"})
    assert from_table == from_text
    assert from_table.agents == ((201, "spark"), (202, "bolt")) and from_table.agent_versions == ((201, 2),)
    assert from_table.tier_of("agent", 202).product == "bolt"
    assert from_table.tier_of("agent", 999).product == "spark"  # not named: on `product`
    assert from_table.tier_of("phone_number", 202).product == "spark"  # only agents are mapped
    assert (from_table.version_of("agent", 201), from_table.version_of("agent", 202)) == (2, 1)
    assert hash(from_table) == hash(from_text)  # still a value


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"agents": {"201": "lightning"}}, "agents: agent 201 names 'lightning', which is not one of spark,"),
        ({"agents": {"two": "spark"}}, "agents: 'two' is not an agent id (a whole number of at least 1)."),
        ({"agents": "201:spark"}, "agents: '201:spark' is not agent=value (e.g. 201=spark,202=bolt)."),
        ({"agent_versions": "201"}, "agent_versions: '201' is not agent=value (e.g. 201=2,202=1)."),
        ({"agent_versions": {"201": 0}}, "agent_versions: agent 201 has version 0, not a whole number of at least 1."),
        ({"agent_versions": {"201": "two"}}, "agent_versions: 'two' is not a version (a whole number of at least 1)."),
        ({"agents": 5}, "agents must map agent ids (whole numbers of at least 1) to values, not 5."),
    ],
)
def test_bad_agents_are_refused_in_one_sentence_naming_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SimConfigError) as refused:
        SimConfig.from_mapping(settings)
    assert str(refused.value).startswith(message)
    assert refused.value.setting == next(iter(settings))


def test_the_sim_command_takes_agents_and_refuses_a_bad_tier() -> None:
    cli = typer.Typer()
    cli.command()(sim)
    result = CliRunner().invoke(cli, ["--agents", "201=spark,202=thunder"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "202 names 'thunder'" in " ".join(result.output.replace("│", " ").split())


def test_by_default_every_agent_is_on_spark_at_version_1_and_the_truth_says_what_its_call_log_says() -> None:
    model = corpus_model(1, (201, 202))
    records = model.truth()
    assert {(r.product, r.agent_version, r.prompt_change) for r in records} == {("spark", 1, "unchanged")}
    for record in records:
        run = model.get_run(record.id)
        assert run is not None and run.grade is not None
        assert (record.duration_seconds, record.end_reason) == (run.duration_seconds, run.end_reason)
        assert record.billing_total_cents == run.billing_total_cents == 16 * math.ceil((run.duration_seconds or 0) / 60)
        assert record.call_outcome == run.grade.call_outcome == "success"
        assert truth_from_json(orjson.loads(orjson.dumps(truth_json(record)))) == record
    assert {p: TIERS[p].duration_factor for p in PRODUCTS}["spark"] == 1.0
