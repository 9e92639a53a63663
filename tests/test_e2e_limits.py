"""End to end against a misbehaving simulator (in memory, on virtual time): its rate limit obeyed, faults
survived, no run billed twice, the breaker stopping a run that cannot succeed."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from sessions import drive, profile_of
from support.cli import stressor_here
from support.virtual import clock, run

from stressor.engine import EngineResult
from stressor.metrics import Measure, Outcome
from stressor.report.results import offered_load

LIMIT = 20.0


class Arrivals(httpx.AsyncBaseTransport):
    """Around the client's transport, noting when each request (a create: a POST; else a poll) went out, what
    status came back and when: the requests the simulator saw (refused ones included) and when."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, int, str]] = []
        self.refusals_received: dict[str, list[float]] = {"create": [], "poll": []}
        self._inner: httpx.AsyncBaseTransport | None = None

    def around(self, inner: httpx.AsyncBaseTransport) -> Arrivals:
        self._inner = inner
        return self

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self._inner is not None
        now = clock()
        sent = now.now_ns() / 1e9
        response = await self._inner.handle_async_request(request)
        kind = "create" if request.method == "POST" else "poll"
        self.sent.append((sent, response.status_code, kind))
        if response.status_code == 429:
            self.refusals_received[kind].append(now.now_ns() / 1e9)
        return response

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def every_run_completed_once(result: EngineResult, truth: list) -> None:
    assert result.metrics.outcomes[Outcome.OPEN] == 0
    assert result.metrics.outcomes[Outcome.ERRORED] == 0
    assert {r.run_id for r in result.records} == {t.id for t in truth}
    assert len(truth) == result.metrics.planned_runs  # one run on the server per planned run: none billed twice


def busiest_second(times: list[float]) -> int:
    """The most requests in any sliding 1-second window (times sorted)."""
    busiest, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


# Requests the client had already let through when the first 429 came back (sent an instant later, on their way
# through the HTTP client): they could not know. Everything after them must keep to the limit.
IN_FLIGHT_ALLOWANCE = 2
# Refusals of a kind sent after that kind heard its first 429: a pause's end, or the learned rate's slow growth,
# may meet the server's limit again now and then, but a client that kept sending blindly would be refused dozens
# of times.
REFUSED_AGAIN = 5


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ("ietf", "seconds"),
        ("x-ratelimit", "seconds"),
        ("none", "seconds"),
        ("none", "http-date"),
        ("none", "none"),
    ],
)
def test_the_servers_rate_limit_is_obeyed_and_every_run_still_completes(headers: str, retry_after: str) -> None:
    # Offered: 25 batches/s, each a POST, and the polls every 25 ms: each kind alone over 20 requests/s.
    profile = profile_of(
        {
            "grace": "30s",
            "target": {"poll_interval": "25ms"},
            "batch": {"runs": 2},
            "stages": [{"duration": "3s", "rate": "25/s"}],
            "limits": {"max_start_delay": "60s"},
        }
    )
    arrivals = Arrivals()
    simulator = {"rate_limit": LIMIT, "retry_after": retry_after, "rate_limit_headers": headers}
    result, truth, stats = run(drive, profile, simulator, arrivals.around)
    every_run_completed_once(result, truth)
    sent = sorted(arrivals.sent)
    refused = [t for t, status, _ in sent if status == 429]
    assert len(refused) == stats["faults"]["rate_limited"]
    assert result.governor.responses["429"] == len(refused)
    if headers == "ietf":
        # Told the quota up front (RateLimit-Policy): paced to it from the start, no 429 needed, full use.
        assert result.governor.server_rate == LIMIT
        assert not refused
        during_stage = [t for t, _, _ in sent if t < sent[0][0] + 3.0]
        assert 0.9 * LIMIT <= len(during_stage) / 3.0 <= 1.1 * LIMIT
        return
    # Told by 429s (and, for x-ratelimit, a remaining count): each kind of request refused pauses (for the time
    # the server named, or a backoff when it named none) and then goes at a rate learned from its own refusals,
    # not in a burst of everything held by the pause. Whatever the client offers, the server refuses a request
    # of a kind again only rarely once that kind has heard its first 429 (and what was then in flight came back).
    refusals = arrivals.refusals_received
    refused_kinds = {kind for kind, times in refusals.items() if times}
    assert refused and set(result.governor.learned_rates) == refused_kinds
    if retry_after != "none":  # a pause of a second or more: requests were held by it (a backoff may hold none)
        assert result.governor.server_pause_s > 0
    for kind in refused_kinds:
        told = min(refusals[kind])
        refused_later = [t for t, status, k in sent if k == kind and status == 429 and t >= told]
        assert len(refused_later) <= REFUSED_AGAIN, (kind, refused_later)
    if headers == "none":
        # Told only by 429s, on a limit that covers every request: both kinds are refused, each learns its own
        # rate, and from then on every second of the rest of the run keeps to the limit.
        assert refused_kinds == {"create", "poll"}
        told = max(min(times) for times in refusals.values())
        after = [t for t, _, _ in sent if t >= told]
        assert len(after) > LIMIT  # the check below covers more than a second of traffic, not a quiet tail
        assert busiest_second(after[IN_FLIGHT_ALLOWANCE:]) <= 1.1 * LIMIT
    # Offered 50 runs/s for 3 s; the limit stretched the creates, so fewer were submitted per second.
    load = offered_load(result.metrics, profile, result.elapsed_s).to_json()
    assert load["offered_runs_per_s"] == pytest.approx(50.0)
    assert load["achieved_runs_per_s"] < load["offered_runs_per_s"]


def test_5xx_and_resets_after_creating_never_bill_a_run_twice() -> None:
    # A third of the requests fail (500/503 or a dropped connection), and most failed creates (500s, resets)
    # had made their runs first: only reconciliation can tell; a blind retry would create a second, billed batch.
    profile = profile_of(
        {
            "grace": "20s",
            # a lost answer is reconciled after a settle delay of the request timeout: keep it short
            "target": {"poll_interval": "50ms", "request_timeout": "1s"},
            "batch": {"runs": 3},
            "stages": [{"duration": "3s", "rate": "10/s"}],
            "limits": {
                "backoff_base": "10ms",
                "backoff_cap": "100ms",
                "retry_ratio": 0.5,
                "breaker_failure_ratio": 0.9,
                # A third of the answers failing is overload to the AIMD limit, which would hold most batches back;
                # this test is about billing each planned run once, so every batch must start.
                "adaptive": False,
            },
        }
    )
    # 500s, not 503s: a 503 is a refusal (nothing was created, a retry is safe) and slows the whole client,
    # which other tests cover; 500s and resets after creating are what only reconciliation can resolve.
    simulator = {"error_rate": 0.2, "error_status": "500", "reset_rate": 0.15, "fault_after_create": 0.8}
    result, truth, stats = run(drive, profile, simulator)
    assert stats["faults"]["after_create"] > 0 and stats["faults"]["reset"] > 0
    created = {t.id for t in truth}
    ours = [r.run_id for r in result.records if r.run_id is not None]
    assert len(ours) == len(set(ours))
    assert set(ours) <= created
    batches = {t.batch_id for t in truth}
    assert len(batches) == len({r.batch_id for r in result.records if r.batch_id})  # each batch created once
    assert len(truth) == result.metrics.planned_runs  # exactly one run on the server per planned run
    # Every planned run is accounted for: completed, or errored with a cause (a create that stayed unknown).
    counted = sum(result.metrics.outcomes.values())
    assert counted == result.metrics.planned_runs == 90
    assert result.metrics.requests["submit reconciled"] > 0
    orphans = created - set(ours)  # created on the server but unknown to us: must be none
    assert not orphans


def test_the_breaker_stops_a_run_the_server_keeps_failing_and_says_why() -> None:
    profile = profile_of(
        {
            "grace": "5s",
            "target": {"poll_interval": "50ms"},
            "stages": [{"duration": "20s", "rate": "10/s"}],
            "limits": {"breaker_window": "2s", "breaker_min_requests": 10, "max_retries": 1},
        }
    )
    result, truth, _ = run(drive, profile, {"error_rate": 1.0, "error_status": "503", "retry_after": "none"})
    assert result.stop_cause == "breaker"
    assert result.stop_reason is not None and "requests failed" in result.stop_reason
    assert result.elapsed_s < 10  # stopped early, not after the 20 s of the plan
    assert result.metrics.not_started["breaker"] > 100
    assert result.metrics.outcomes[Outcome.REJECTED] > 0
    assert not truth  # 503 created nothing
    # The plan's rest, cut off by the breaker, was never offered: the offered load is the plan's 10/s.
    load = offered_load(result.metrics, profile, result.elapsed_s).to_json()
    assert 7.0 <= load["offered_runs_per_s"] <= 13.0


BREAKER_PROFILE = """
name = "brk"
grace = "3s"
[target]
poll_interval = "50ms"
[limits]
breaker_window = "2s"
breaker_min_requests = 10
max_retries = 1
[simulator]
error_rate = 1.0
error_status = "503"
retry_after = "none"
seed = 1
[[stages]]
duration = "15s"
rate = "10/s"
"""


def test_a_breaker_stop_through_the_cli_says_why_and_exits_4(tmp_path: Path) -> None:
    profile = tmp_path / "brk.toml"
    profile.write_text(BREAKER_PROFILE)
    out = tmp_path / "results.json"
    done = stressor_here("run", str(profile), "--out", str(out))
    assert done.returncode == 4, done.stderr[-2000:]  # README, exit codes: 4 = the breaker stopped the run
    lines = done.stdout.splitlines()
    breaker = [line for line in lines if line.startswith("BREAKER: stopped submitting: ")]
    assert breaker and "requests failed" in breaker[0]
    assert any(line.startswith("STOPPED EARLY: stopped submitting: ") for line in lines)
    limits = next(line for line in lines if line.startswith("limits (obey): "))
    assert "refused 503 x" in limits
    results = orjson.loads(out.read_bytes())
    assert results["limits"]["breaker"] == breaker[0].removeprefix("BREAKER: ")
    assert results["limits"]["responses"]["503"] > 0
    assert results["limits"]["responses"]["429"] == 0
    assert results["runs"]["not_started"]["breaker"] > 50


MIXED_503_PROFILE = """
name = "mixed503"
grace = "60s"  # virtual time: long enough for the creates the server's pauses pushed past the plan to end
[target]
poll_interval = "20ms"
[batch]
runs = 5
stagger = "10ms"
[simulator]
seed = 3
error_rate = 0.3
error_status = "503"
retry_after = "none"
latency = "uniform(0.01,0.1)"
[[stages]]
duration = "4s"
rate = "20/s"
"""


def test_bare_503s_mixed_with_successes_end_in_a_results_file_not_a_traceback(tmp_path: Path) -> None:
    # Issue 15: with many requests in flight, an answer accepted during a 503's pause and a 503 just after it
    # crashed the run (exit 1, no results) instead of pausing again.
    profile = tmp_path / "mixed503.toml"
    profile.write_text(MIXED_503_PROFILE)
    out = tmp_path / "results.json"
    done = stressor_here("run", str(profile), "--out", str(out))
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    results = orjson.loads(out.read_bytes())
    assert results["limits"]["responses"]["503"] > 0
    assert results["runs"]["planned"] == 400
    assert results["runs"]["open"] == 0


def test_a_limit_on_creates_alone_never_slows_the_polls() -> None:
    # Issue 15: a server that rate-limits only run-creating requests. Its 429s slow the creates; polls, never
    # refused, keep their interval, so every run is seen to end within about one poll interval of its end.
    poll_s = 0.2
    profile = profile_of(
        {
            "grace": "20s",
            "target": {"poll_interval": f"{poll_s}s"},
            "batch": {"runs": 2},
            "stages": [{"duration": "1s", "rate": "10/s"}],  # 10 creates at once: the limit stretches them
            "limits": {"max_start_delay": "60s"},
        }
    )
    simulator = {"rate_limit": 4.0, "rate_limit_scope": "create", "rate_limit_burst": 1, "retry_after": "seconds"}
    arrivals = Arrivals()
    result, truth, stats = run(drive, profile, simulator, arrivals.around)
    assert stats["faults"]["rate_limited"] > 0 and not arrivals.refusals_received["poll"]
    every_run_completed_once(result, truth)
    detection = result.metrics.recorders[Measure.DETECTION_DELAY].summary()
    assert detection.count == len(truth)
    assert detection.percentiles_s[90.0] <= poll_s + 0.05
    assert set(result.governor.learned_rates) == {"create"}  # the creates alone were slowed
