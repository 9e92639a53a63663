"""The simulator's fault injection: the pure decisions with a fake clock and a seeded rng, then the app through
httpx's ASGI transport with a fake clock and a fake sleep (no sockets, no real waiting)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from stressor.limits.signals import parse_retry_after, read_signal
from stressor.sim.app import DROPPED, DropConnection, SimApp, create_app
from stressor.sim.config import Distribution, SimConfig
from stressor.sim.faults import (
    FaultLayer,
    FaultPlan,
    RateLimiter,
    quota_headers,
    quota_policy,
    retry_after,
)
from stressor.sim.model import SimModel
from stressor.sim.windows import ErrorBurst, Stall
from stressor.timestamps import parse_iso

pytestmark = pytest.mark.anyio

WALL = 1_800_000_000.0
AUTH = {"Authorization": "Bearer sk_live_test"}
RUN = {"target_type": "agent", "target_id": 7, "consent_to_charge": True, "scenario_prompt": "hi"}


def plan(**settings: Any) -> FaultPlan:
    return FaultPlan(SimConfig(**settings), started_at=100.0, rng=random.Random(1))


# -- the rate limiter --------------------------------------------------------------------------------------


def test_limiter_admits_evenly_spaced_requests_and_refuses_one_too_early() -> None:
    limiter = RateLimiter(rate=10, burst=1)
    # exactly one interval apart, as floats add up: none may be refused by rounding
    assert all(limiter.admit(i * 0.1) == 0.0 for i in range(200))
    assert limiter.admit(19.95) == pytest.approx(0.05)  # the next one is due at 20.0
    assert limiter.admit(20.0) == 0.0


def test_limiter_allows_a_burst_then_paces() -> None:
    limiter = RateLimiter(rate=2, burst=3)
    assert limiter.remaining(0.0) == 3
    assert [limiter.admit(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.remaining(0.0) == 0
    assert limiter.admit(0.0) == pytest.approx(0.5)  # refused: one interval until a slot frees
    assert limiter.reset_after(0.0) == pytest.approx(1.5)  # the whole burst is back after 3 intervals
    assert limiter.remaining(0.5) == 1
    assert limiter.admit(0.5) == 0.0 and limiter.admit(0.5) > 0
    assert limiter.remaining(10.0) == 3


@pytest.mark.parametrize(("rate", "expected"), [(10, (10, 1)), (0.5, (1, 2)), (2.5, (5, 2)), (1 / 3, (1, 3))])
def test_quota_policy_is_whole_requests_per_whole_seconds(rate: float, expected: tuple[int, int]) -> None:
    assert quota_policy(rate) == expected


@pytest.mark.parametrize(("wait", "expected"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (2.0, "2"), (7.9, "8")])
def test_retry_after_in_seconds_is_the_wait_rounded_up(wait: float, expected: str) -> None:
    assert retry_after("seconds", wait, WALL) == expected


@pytest.mark.parametrize("wait", [0.01, 0.5, 1.0, 3.3])
@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.999])
def test_retry_after_http_date_is_at_least_the_wait_and_one_second_ahead(wait: float, fraction: float) -> None:
    now = WALL + fraction
    value = retry_after("http-date", wait, now)
    assert value is not None and value.endswith(" GMT") and "," in value  # IMF-fixdate
    date = parsedate_to_datetime(value).timestamp()
    assert date.is_integer()
    assert date >= now + wait and date >= now + 1
    assert date < now + max(wait, 1.0) + 1  # rounded up, not further
    # the client's parser reads it back as a wait no shorter than the server's
    parsed = parse_retry_after(value, now)
    assert parsed is not None and parsed >= wait


def test_retry_after_none_writes_no_header() -> None:
    assert retry_after("none", 1.0, WALL) is None


def test_quota_headers_in_both_forms_are_read_by_the_client() -> None:
    limiter = RateLimiter(rate=5, burst=5)
    for _ in range(5):
        limiter.admit(0.0)
    assert quota_headers("none", limiter, 0.0) == ()
    x_headers = dict(quota_headers("x-ratelimit", limiter, 0.0))
    assert x_headers == {"x-ratelimit-limit": "5", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
    ietf = dict(quota_headers("ietf", limiter, 0.0))
    assert ietf == {"ratelimit-policy": '"default";q=5;w=1', "ratelimit": '"default";r=0;t=1'}
    for headers, source in ((x_headers, "x-ratelimit"), (ietf, "ratelimit")):
        signal = read_signal(200, headers, now_mono=0.0, now_wall=WALL)
        assert signal is not None and signal.source == source
        assert (signal.remaining, signal.retry_at) == (0, 1.0)  # exhausted: pause until the reset
    assert read_signal(200, dict(quota_headers("ietf", limiter, 0.0)), 0.0, WALL).window_s == 1.0  # type: ignore[union-attr]


# -- decisions ---------------------------------------------------------------------------------------------


def test_no_fault_configured_means_an_inactive_plan() -> None:
    assert not plan().active
    decision = plan().decide(100.0, WALL, creates=True)
    assert decision.fault is None and decision.latency == 0.0 and decision.headers == ()


def test_rate_limit_refusal_carries_retry_after_and_never_creates() -> None:
    faults = plan(rate_limit=1.0, fault_after_create=1.0, retry_after="seconds", rate_limit_headers="x-ratelimit")
    first = faults.decide(100.0, WALL, creates=True)
    assert first.fault is None and dict(first.headers)["x-ratelimit-remaining"] == "0"
    refused = faults.decide(100.4, WALL, creates=True)
    assert refused.fault is not None and refused.fault.kind == "rate_limited" and refused.fault.status == 429
    assert refused.fault.after_create is False  # whatever fault_after_create says
    assert dict(refused.fault.headers) == {"retry-after": "1"}
    assert refused.fault.wait == pytest.approx(0.6)
    assert refused.fault.response().status == 429
    assert b"Expected available in 1 second." in refused.fault.response().body


def test_rate_limit_can_answer_503() -> None:
    faults = plan(rate_limit=1.0, rate_limit_status=503)
    faults.decide(0.0, WALL, creates=False)
    refused = faults.decide(0.0, WALL, creates=False)
    assert refused.fault is not None and refused.fault.status == 503


def test_rate_limit_scope_create_counts_only_run_creating_posts() -> None:
    faults = plan(rate_limit=1.0, rate_limit_scope="create", rate_limit_headers="ietf")
    reads = [faults.decide(100.0, WALL, creates=False) for _ in range(20)]
    assert all(d.fault is None and d.headers == () for d in reads)  # not counted, no quota headers
    assert faults.decide(100.0, WALL, creates=True).fault is None
    assert faults.decide(100.0, WALL, creates=True).fault is not None


def test_error_burst_windows_fail_every_request_and_say_when_they_end() -> None:
    burst = ErrorBurst.parse("every=5s,length=1s,status=503")
    faults = plan(error_burst=burst, retry_after="seconds")
    # windows open one period after start: [105, 106), [110, 111), ...
    for now, failing in [(100.0, False), (104.99, False), (105.0, True), (105.9, True), (106.0, False),
                         (110.5, True), (111.2, False)]:  # fmt: skip
        decision = faults.decide(now, WALL, creates=False)
        assert (decision.fault is not None) is failing, now
    in_window = faults.decide(105.2, WALL, creates=False).fault
    assert in_window is not None and in_window.kind == "burst" and in_window.status == 503
    assert dict(in_window.headers) == {"retry-after": "1"}  # 0.8 s left, rounded up
    five_hundreds = plan(error_burst=ErrorBurst.parse("every=5s,length=1s,status=500")).decide(
        105.0, WALL, creates=False
    )
    assert five_hundreds.fault is not None and five_hundreds.fault.status == 500 and five_hundreds.fault.headers == ()


def test_error_rate_is_respected_and_mixed_gives_both_statuses() -> None:
    faults = plan(error_rate=0.3)
    decisions = [faults.decide(100.0 + i, WALL, creates=False) for i in range(2000)]
    failed = [d.fault for d in decisions if d.fault is not None]
    assert 0.26 <= len(failed) / 2000 <= 0.34
    assert {f.kind for f in failed} == {"error"} and {f.status for f in failed} == {500, 503}
    only_500 = plan(error_rate=1.0, error_status="500")
    assert {only_500.decide(100.0, WALL, creates=False).fault.status for _ in range(50)} == {500}  # type: ignore[union-attr]


def test_reset_rate_is_respected() -> None:
    faults = plan(reset_rate=0.1)
    resets = [faults.decide(100.0, WALL, creates=False).fault for _ in range(3000)]
    hits = [f for f in resets if f is not None]
    assert 0.08 <= len(hits) / 3000 <= 0.12
    assert all(f.kind == "reset" and f.status is None for f in hits)
    with pytest.raises(ValueError, match="no answer"):
        hits[0].response()


def test_fault_after_create_applies_only_to_run_creating_posts_answered_500_or_reset() -> None:
    faults = plan(error_rate=1.0, reset_rate=0.5, fault_after_create=0.5)  # mixed: 500 or 503
    creating = [faults.decide(100.0, WALL, creates=True).fault for _ in range(4000)]
    may_create = [f for f in creating if f is not None and f.status != 503]
    after = [f for f in creating if f is not None and f.after_create]
    assert {f.kind for f in after} == {"error", "reset"} and {f.status for f in after} == {500, None}
    assert 0.45 <= len(after) / len(may_create) <= 0.55
    reads = [faults.decide(100.0, WALL, creates=False).fault for _ in range(200)]
    assert not any(f is not None and f.after_create for f in reads)


def test_a_503_never_follows_a_create() -> None:
    # like the rate limit's refusals: a client may resend a 503 without reconciling, so it must mean "nothing"
    for settings in (
        {"error_rate": 1.0, "error_status": "503"},
        {"error_burst": ErrorBurst(every=1.0, length=1.0, status="503", start=0.0)},
    ):
        faults = plan(fault_after_create=1.0, **settings)
        decisions = [faults.decide(100.0 + i * 0.01, WALL, creates=True).fault for i in range(100)]
        assert all(f is not None and f.status == 503 and not f.after_create for f in decisions)


def test_latency_is_drawn_for_every_answer_and_stalls_hold_until_their_end() -> None:
    faults = plan(latency=Distribution.uniform(0.1, 0.2), stall=Stall.parse("at=2s,for=3s"))
    assert all(0.1 <= faults.decide(100.0, WALL, creates=False).latency <= 0.2 for _ in range(100))
    assert faults.stall_hold(101.9) == 0.0
    assert faults.stall_hold(102.0) == pytest.approx(3.0)
    assert faults.stall_hold(104.5) == pytest.approx(0.5)
    assert faults.stall_hold(105.0) == 0.0


def test_same_seed_same_faults() -> None:
    def run(seed: int) -> list[object]:
        faults = FaultPlan(
            SimConfig(error_rate=0.3, reset_rate=0.2, fault_after_create=0.5, latency=Distribution.exponential(0.1)),
            started_at=0.0,
            rng=random.Random(seed),
        )
        return [faults.decide(i * 0.01, WALL, creates=i % 2 == 0) for i in range(200)]

    assert run(4) == run(4)
    assert run(4) != run(5)


# -- windows as text ---------------------------------------------------------------------------------------


def test_windows_parse_and_print_back() -> None:
    burst = ErrorBurst.parse(" every = 5s , length = 250ms , status = Mixed , start = 0 ")
    assert burst == ErrorBurst(every=5.0, length=0.25, status="mixed", start=0.0)
    assert ErrorBurst.parse(str(burst)) == burst
    assert ErrorBurst.parse("every=2,length=1").status == "503"
    assert ErrorBurst.parse("every=2,length=1").first == 2.0
    odd = ErrorBurst(every=0.00001, length=0.000005)
    assert ErrorBurst.parse(str(odd)) == odd
    stall = Stall.parse("at=1.5s,for=500ms")
    assert stall == Stall(at=1.5, duration=0.5) and Stall.parse(str(stall)) == stall


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("every=5s", "lacks length="),
        ("every=5s,length=6s", "length <= every"),
        ("every=5s,length=1s,status=404", "not 500, 503 or mixed"),
        ("every=5s,length=1s,colour=red", "unknown key 'colour'"),
        ("every=5s,length=soon", "not a duration"),
        ("every=5s,every=4s,length=1s", "twice"),
        ("every=0s,length=0s", "every above 0"),
        ("", "not a window"),
    ],
)
def test_bad_error_bursts_are_one_clear_sentence(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=r"error burst|every=|window") as caught:
        ErrorBurst.parse(text)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("text", "fragment"), [("at=2s", "lacks for="), ("at=2s,for=0s", "more than 0"), ("for=1s,at=x", "not a duration")]
)
def test_bad_stalls_are_one_clear_sentence(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        Stall.parse(text)
    assert fragment in str(caught.value)


# -- through the app -----------------------------------------------------------------------------------------


class FakeClock:
    """Monotonic seconds that move only when the test (or the fake sleep) says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@asynccontextmanager
async def faulty(clock: FakeClock, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, SimApp, FaultLayer]]:
    config = SimConfig(**{"seed": 3, "call_duration": Distribution.fixed(100), "time_scale": 0.01, **settings})
    model = SimModel(config, wall_at_zero=WALL)
    layer = FaultLayer.for_model(model, clock, sleep=clock.sleep)
    app = create_app(model, clock, middleware=[layer], stats={"faults": layer.snapshot})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as c:
        yield c, app, layer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize("form", ["seconds", "http-date", "none"])
async def test_app_answers_429_with_each_retry_after_form_and_creates_nothing(clock: FakeClock, form: str) -> None:
    async with faulty(clock, rate_limit=2.0, rate_limit_burst=1, retry_after=form) as (client, app, _):
        assert (await client.post("/v1/test-calls", json=RUN)).status_code == 201
        clock.now = 0.1
        refused = await client.post("/v1/test-calls", json=RUN)
        assert refused.status_code == 429
        assert "throttled" in refused.json()["detail"]
        value = refused.headers.get("retry-after")
        if form == "seconds":
            assert value == "1"  # 0.4 s rounded up
        elif form == "http-date":
            assert value is not None
            assert parsedate_to_datetime(value).timestamp() >= WALL + clock.now + 1
        else:
            assert value is None
        assert len(app.model.truth()) == 1  # the refused POST created nothing
        clock.now = 0.5
        assert (await client.post("/v1/test-calls", json=RUN)).status_code == 201
        stats = (await client.get("/_sim/stats")).json()
    assert stats["faults"]["rate_limited"] == 1
    assert stats["requests"]["POST /v1/test-calls"] == {"201": 2, "429": 1}


@pytest.mark.parametrize(
    ("form", "names"),
    [("x-ratelimit", {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}),
     ("ietf", {"ratelimit-policy", "ratelimit"})],
)  # fmt: skip
async def test_app_puts_quota_headers_on_every_counted_answer(clock: FakeClock, form: str, names: set[str]) -> None:
    async with faulty(clock, rate_limit=3.0, rate_limit_headers=form) as (client, _, _):
        answers = [await client.get("/v1/test-calls") for _ in range(4)]
        health = await client.get("/v1/healthz")
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert all(names <= set(a.headers) for a in answers)
    assert not names & set(health.headers)  # the health check is not an API request
    remaining = [read_signal(a.status_code, a.headers, 0.0, WALL).remaining for a in answers]  # type: ignore[union-attr]
    assert remaining == [2, 1, 0, 0]


async def test_app_rate_limit_scope_create_leaves_reads_alone(clock: FakeClock) -> None:
    async with faulty(clock, rate_limit=1.0, rate_limit_scope="create") as (client, _, _):
        assert (await client.post("/v1/test-call-batches", json=RUN)).status_code == 201
        reads = [(await client.get("/v1/test-calls")).status_code for _ in range(10)]
        assert reads == [200] * 10
        assert (await client.post("/v1/test-calls", json=RUN)).status_code == 429


async def test_app_error_burst_fails_every_request_in_its_window(clock: FakeClock) -> None:
    async with faulty(clock, error_burst=ErrorBurst.parse("every=1s,length=0.5s,status=503")) as (client, app, _):
        clock.now = 0.5
        assert (await client.get("/v1/test-calls")).status_code == 200
        clock.now = 1.2
        in_burst = [await client.get("/v1/test-calls"), await client.post("/v1/test-calls", json=RUN)]
        assert [a.status_code for a in in_burst] == [503, 503]
        assert in_burst[0].headers["retry-after"] == "1"
        assert in_burst[0].json() == {"detail": "Service temporarily unavailable, try again later."}
        assert app.model.truth() == []  # fault_after_create is 0: the failed POST created nothing
        assert (await client.get("/v1/healthz")).status_code == 200  # never faulted
        assert (await client.get("/_sim/truth")).status_code == 200
        clock.now = 1.6
        assert (await client.get("/v1/test-calls")).status_code == 200
        stats = (await client.get("/_sim/stats")).json()
    assert stats["faults"]["burst"] == 2


@pytest.mark.parametrize(("path", "runs"), [("/v1/test-calls", 1), ("/v1/test-call-batches", 3)])
async def test_app_fault_after_create_creates_exactly_the_requested_runs(
    clock: FakeClock, path: str, runs: int
) -> None:
    async with faulty(clock, error_rate=1.0, error_status="500", fault_after_create=1.0) as (client, app, layer):
        failed = await client.post(path, json={**RUN, "stagger_seconds": 0})
        assert failed.status_code == 500
        truth = app.model.truth()
        assert len(truth) == runs and all(record.status in ("queued", "in_progress") for record in truth)
        assert layer.snapshot()["after_create"] == 1 and layer.snapshot()["error"] == 1
        # the failed POST's runs are ordinary runs: they run to the end like any other
        app.model.advance(10.0)
        assert {record.status for record in app.model.truth()} == {"completed"}


async def test_app_faulted_post_without_after_create_creates_nothing(clock: FakeClock) -> None:
    async with faulty(clock, error_rate=1.0, error_status="500") as (client, app, layer):
        answer = await client.post("/v1/test-call-batches", json=RUN)
    assert answer.status_code == 500 and answer.json() == {"detail": "A server error occurred."}
    assert app.model.truth() == [] and layer.snapshot()["after_create"] == 0


async def test_app_503_creates_nothing_even_with_fault_after_create(clock: FakeClock) -> None:
    async with faulty(clock, error_rate=1.0, error_status="503", fault_after_create=1.0) as (client, app, layer):
        answers = [(await client.post("/v1/test-calls", json=RUN)).status_code for _ in range(5)]
    assert answers == [503] * 5
    assert app.model.truth() == []
    assert (layer.snapshot()["error"], layer.snapshot()["after_create"]) == (5, 0)


async def test_app_reset_drops_the_request_and_counts_it(clock: FakeClock) -> None:
    # under the ASGI test transport there is no connection to drop: the exception reaches the client
    async with faulty(clock, reset_rate=1.0, fault_after_create=1.0) as (client, app, layer):
        with pytest.raises(DropConnection):
            await client.post("/v1/test-calls", json=RUN)
        assert len(app.model.truth()) == 1  # created, then the connection went
        assert (await client.get("/v1/healthz")).status_code == 200
    assert app.stats.count("POST", "/v1/test-calls", DROPPED) == 1
    assert layer.snapshot()["reset"] == 1 and layer.snapshot()["after_create"] == 1


async def test_app_stall_holds_requests_until_it_ends_while_runs_keep_their_times(clock: FakeClock) -> None:
    async with faulty(clock, stall=Stall.parse("at=2s,for=2s")) as (client, _, layer):
        clock.now = 1.0
        early = (await client.post("/v1/test-calls", json=RUN)).json()  # a 1 s call: ends at 2.0, in the stall
        clock.now = 2.5
        held = await client.post("/v1/test-calls", json=RUN)
        assert held.status_code == 201  # delayed, not failed
        assert clock.slept == [pytest.approx(1.5)] and clock.now == pytest.approx(4.0)
        assert parse_iso(held.json()["created_at"]) == pytest.approx(WALL + 4.0, abs=0.001)  # handled at the end
        runs = {run["id"]: run for run in (await client.get("/v1/test-calls")).json()}
        assert parse_iso(runs[early["id"]]["completed_at"]) == pytest.approx(WALL + 2.0, abs=0.001)
        assert layer.snapshot()["stalled"] == 1
        assert len(clock.slept) == 1  # after the stall nothing is held


async def test_app_latency_delays_answers_but_not_creation(clock: FakeClock) -> None:
    async with faulty(clock, latency=Distribution.fixed(0.2)) as (client, _, layer):
        created = await client.post("/v1/test-calls", json=RUN)
        assert created.status_code == 201 and clock.slept == [0.2]
        assert parse_iso(created.json()["created_at"]) == WALL  # created on arrival, answered 0.2 s later
        await client.get("/v1/healthz")
        assert clock.slept == [0.2]  # the health check is never slowed
        assert layer.snapshot()["delayed"] == 1


async def test_no_faults_configured_leaves_the_handler_untouched(clock: FakeClock) -> None:
    model = SimModel(SimConfig(), wall_at_zero=WALL)
    layer = FaultLayer.for_model(model, clock, sleep=clock.sleep)
    app = create_app(model, clock, middleware=[layer])
    assert app.handler == app.handle  # wrapping returned the handler itself
    assert layer.snapshot() == dict.fromkeys(
        ("rate_limited", "error", "burst", "reset", "after_create", "stalled", "delayed", "slow_after_create"), 0
    )
