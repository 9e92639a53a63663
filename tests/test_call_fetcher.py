"""The call fetcher on virtual time, with a fake source: each ended run's call once, after the delay, bounded in
concurrency and in queue, drained within the wait, stopped by Ctrl-C; and the calls log it writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from support.virtual import VIRTUAL, clock

from stressor.calllogs import CallFetcher, CallsLog
from stressor.metrics import Outcome, RunRecord
from stressor.profile import Calls
from stressor.targets.testcalls.calls import read_call_log, read_transcript

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
}
TURNS = [
    {"role": "assistant", "content": "Hello, how can I help?", "start_ms": 550, "end_ms": 2100, "ttfa_ms": 550},
    {"role": "user", "content": "What are your opening hours?", "start_ms": 2400, "end_ms": 4000},
]


@pytest.fixture
def anyio_backend() -> object:
    return VIRTUAL


def ended(n: int, outcome: Outcome = Outcome.COMPLETED, call_id: str | None = "") -> RunRecord:
    return RunRecord(
        batch_seq=n,
        index=0,
        stage=0,
        variant="spark",
        scenario="hours",
        outcome=outcome,
        due_ns=0,
        run_id=f"r{n}",
        call_id=f"c{n}" if call_id == "" else call_id,
    )


class Source:
    """Call logs after ``latency_s`` each, failing with ``fail[call_id]`` when given; what it saw."""

    def __init__(self, latency_s: float = 0.01, fail: dict[str, str] | None = None) -> None:
        self.latency_s = latency_s
        self.fail = fail or {}
        self.asked: list[tuple[str, float]] = []
        self.transcripts_asked: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def fetch_call_log(self, call_id: str) -> tuple[dict[str, Any] | None, str]:
        self.asked.append((call_id, anyio.current_time()))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await anyio.sleep(self.latency_s)
        finally:
            self.in_flight -= 1
        if call_id in self.fail:
            return None, self.fail[call_id]
        return read_call_log({**REFERENCE_LOG, "call_id": call_id}, call_id).value, "ok"

    async def fetch_transcript(self, call_id: str) -> tuple[list[dict[str, Any]] | None, str]:
        self.transcripts_asked.append(call_id)
        await anyio.sleep(self.latency_s)
        return read_transcript({"transcripts": TURNS}).value, "ok"


async def fetched(
    source: Source,
    settings: Calls,
    offers: Callable[[CallFetcher], Any],
    *,
    log: CallsLog | None = None,
    queue_bound: int = 1000,
    warnings: list[str] | None = None,
) -> CallFetcher:
    """Run a fetcher beside ``offers`` (which offers it runs, and may sleep), then drain it."""
    fetcher = CallFetcher(
        source,
        settings,
        clock=clock(),
        log=log,
        warn=warnings.append if warnings is not None else None,
        queue_bound=queue_bound,
    )
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(fetcher.run)
        await offers(fetcher)
        await fetcher.drain(settings.wait_s)
    return fetcher


@pytest.mark.anyio
async def test_every_ended_run_with_a_call_is_fetched_once_after_the_delay_and_no_other(tmp_path: Path) -> None:
    source = Source()
    offered_at: dict[str, float] = {}

    async def offers(fetcher: CallFetcher) -> None:
        for n in range(20):
            record = ended(n, Outcome.COMPLETED if n % 4 else Outcome.FAILED)
            offered_at[record.call_id or ""] = anyio.current_time()
            fetcher.offer(record)
            await anyio.sleep(0.1)
        fetcher.offer(ended(20, Outcome.OPEN))  # still going: no call to fetch yet
        fetcher.offer(ended(21, Outcome.ERRORED, call_id=None))
        fetcher.offer(ended(22, Outcome.COMPLETED, call_id=None))  # completed, no call id given

    log = CallsLog(tmp_path / "r.calls.jsonl")
    fetcher = await fetched(source, Calls(fetch=True, delay_s=2.0, wait_s=10.0), offers, log=log)
    log.close()
    asked = [call_id for call_id, _ in source.asked]
    assert sorted(asked) == sorted(f"c{n}" for n in range(20))  # each once, and only those
    assert all(at >= offered_at[call_id] + 2.0 for call_id, at in source.asked)  # never before its delay
    assert all(at < offered_at[call_id] + 2.1 for call_id, at in source.asked)  # and soon after it
    report = fetcher.report(str(log.path))
    assert (report.fetched, dict(report.failed), report.transcripts) == (20, {}, 0)
    lines = [orjson.loads(line) for line in log.path.read_bytes().splitlines()]
    assert sorted(line["call_id"] for line in lines) == sorted(asked)
    first = next(line for line in lines if line["call_id"] == "c1")
    about = (first["run_id"], first["scenario"], first["variant"], first["outcome"])
    assert about == ("r1", "hours", "spark", "completed")
    assert first["duration_seconds"] == 55 and first["end_reason"] == "hangup" and first["error"] is None
    assert first["transcript"] is None and source.transcripts_asked == []  # transcripts only when asked


@pytest.mark.anyio
async def test_transcripts_are_fetched_when_asked_and_written_with_their_call(tmp_path: Path) -> None:
    source = Source(fail={"c2": "http_404"})

    async def offers(fetcher: CallFetcher) -> None:
        for n in range(4):
            fetcher.offer(ended(n))

    log = CallsLog(tmp_path / "r.calls.jsonl")
    fetcher = await fetched(source, Calls(fetch=True, transcripts=True), offers, log=log)
    log.close()
    assert sorted(source.transcripts_asked) == ["c0", "c1", "c3"]  # not for a call whose log could not be had
    report = fetcher.report(str(log.path))
    assert (report.fetched, dict(report.failed), report.transcripts) == (3, {"http_404": 1}, 3)
    lines = {line["call_id"]: line for line in map(orjson.loads, log.path.read_bytes().splitlines())}
    assert lines["c0"]["transcript"] == [{**TURNS[0]}, {**TURNS[1], "ttfa_ms": None}]
    assert lines["c2"]["error"] == "http_404" and lines["c2"]["transcript"] is None
    assert lines["c2"]["duration_seconds"] is None and "end_reason" in lines["c2"]  # every field, null


@pytest.mark.anyio
async def test_no_transcripts_are_fetched_where_none_would_be_written() -> None:
    source = Source()

    async def offers(fetcher: CallFetcher) -> None:
        fetcher.offer(ended(0))

    fetcher = await fetched(source, Calls(fetch=True, transcripts=True), offers)
    assert fetcher.fetched == 1 and source.transcripts_asked == []


@pytest.mark.anyio
async def test_fetches_are_bounded_by_the_concurrency() -> None:
    source = Source(latency_s=1.0)

    async def offers(fetcher: CallFetcher) -> None:
        for n in range(40):
            fetcher.offer(ended(n))

    fetcher = await fetched(source, Calls(fetch=True, concurrency=3, wait_s=60.0), offers)
    assert fetcher.fetched == 40 and source.most_in_flight == 3


@pytest.mark.anyio
async def test_a_queue_past_its_bound_counts_the_calls_it_cannot_hold_and_says_so_once() -> None:
    source = Source(latency_s=1.0)
    warnings: list[str] = []

    async def offers(fetcher: CallFetcher) -> None:
        for n in range(20):
            fetcher.offer(ended(n))  # all at once: one being fetched, 5 queued, the rest refused
        await anyio.sleep(0)

    settings = Calls(fetch=True, concurrency=1, wait_s=60.0)
    fetcher = await fetched(source, settings, offers, queue_bound=5, warnings=warnings)
    report = fetcher.report(None)
    assert report.fetched + report.failed["queue_full"] == 20
    assert 5 <= report.fetched <= 6 and len(source.asked) == report.fetched
    assert len(warnings) == 1 and "queue_full" in warnings[0]


@pytest.mark.anyio
async def test_the_calls_still_queued_when_the_wait_runs_out_are_counted_not_fetched() -> None:
    source = Source(latency_s=1.0)

    async def offers(fetcher: CallFetcher) -> None:
        for n in range(10):
            fetcher.offer(ended(n))

    began = anyio.current_time()
    fetcher = await fetched(source, Calls(fetch=True, concurrency=2, wait_s=2.5), offers)
    assert anyio.current_time() - began == pytest.approx(2.5)  # the wait bounds the drain
    report = fetcher.report(None)
    assert report.fetched == 4 and report.failed == {"not_fetched": 6}


@pytest.mark.anyio
async def test_a_stopped_fetcher_fetches_nothing_more() -> None:
    source = Source(latency_s=1.0)
    fetcher = CallFetcher(source, Calls(fetch=True, concurrency=1), clock=clock())
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(fetcher.run)
        for n in range(3):
            fetcher.offer(ended(n))
        await anyio.sleep(0.5)
        fetcher.stop()  # Ctrl-C
        await fetcher.drained()
    fetcher.offer(ended(9))  # a run that ends after the stop: not held
    assert len(source.asked) == 1 and fetcher.report(None).failed == {"not_fetched": 3, "queue_full": 1}


# -------------------------------------------------------------------------------------------- the calls log


def test_each_line_goes_to_the_file_as_it_is_written_a_large_one_at_once(tmp_path: Path) -> None:
    log = CallsLog(tmp_path / "deeper" / "r.calls.jsonl")
    assert not log.path.exists()  # made at the first line
    big = {"call_id": "c1", "transcript": [{"role": "user", "content": "x" * 100_000}]}
    log.write(big)
    # a transcript is not held until the next flush: it is in the file already
    assert orjson.loads(log.path.read_bytes()) == big
    log.write({"call_id": "c2"})
    log.flush()
    assert [orjson.loads(line)["call_id"] for line in log.path.read_bytes().splitlines()] == ["c1", "c2"]
    log.close()
    assert log.lines == 2


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="a device that is always full")
async def test_a_calls_log_that_cannot_be_written_is_said_once_and_the_fetches_go_on() -> None:
    said: list[str] = []
    log = CallsLog(Path("/dev/full"), warn=said.append)

    async def offers(fetcher: CallFetcher) -> None:
        for n in range(3):
            fetcher.offer(ended(n))
            await anyio.sleep(1.0)
            log.flush()  # as the flusher does: the disk is found full here
        fetcher.offer(ended(3, call_id="c" + "x" * 9000))  # a line longer than the buffer: full at once

    fetcher = await fetched(Source(), Calls(fetch=True, transcripts=True), offers, log=log)
    log.close()
    assert fetcher.fetched == 4 and fetcher.transcripts == 4  # the run and its fetches went on
    assert said == ["could not write the calls log /dev/full (No space left on device): later calls are not in it"]
