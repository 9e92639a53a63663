"""The live dashboard (``stressor run --dashboard``): its server-sent events arrive once per interval while the run
goes, parse, carry the report's charts drawn from the figures so far, and end with the run (with where its report
is). In this process on virtual time (a session against the simulator in memory, the dashboard's ASGI app called
as a server would), then once for real: ``stressor run --dashboard`` in its own process, read over its socket.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sessions import profile_of
from support.cli import stressor_here
from support.memory import MemorySurroundings
from support.virtual import clock, run

from stressor.asgi_server import bind
from stressor.report.dashboard import CSP, Dashboard, DashboardApp, ending_note
from stressor.report.live import Frame, draw
from stressor.session import Session, SessionResult, Where
from stressor.sim.config import SimConfig
from stressor.thresholds import Threshold, parse_thresholds

CHARTS = ("latency", "runs", "outcomes", "load", "failures", "spectrum")
PROFILE = {
    "name": "live",
    "interval": "500ms",
    "grace": "10s",
    "target": {"poll_interval": "20ms"},
    "batch": {"runs": 2},
    "stages": [{"name": "warm", "duration": "2s", "rate": "4/s"}, {"name": "push", "duration": "2s", "rate": "10/s"}],
}


@dataclass
class Event:
    kind: str
    seq: int
    data: dict[str, Any]


def parse_events(body: bytes) -> list[Event]:
    """The server-sent events of a stream: ``event:``, ``id:`` and ``data:`` fields, a blank line after each."""
    events = []
    for block in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append(Event(fields.get("event", "message"), int(fields["id"]), json.loads(fields["data"])))
    return events


@dataclass
class Page:
    """A browser's connection to ``/events``, kept open until the server ends the stream."""

    status: int | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    finished: bool = False
    arrivals: list[float] = field(default_factory=list)  # the loop's time at each chunk

    async def read(self, app: DashboardApp, path: str = "/events", host: bytes = b"127.0.0.1:8090") -> None:
        never = anyio.Event()

        async def receive() -> dict[str, Any]:
            await never.wait()  # the page stays open
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status, self.headers = message["status"], dict(message["headers"])
                return
            self.body += message.get("body", b"")
            self.arrivals.append(anyio.current_time())
            self.finished = not message.get("more_body", False)

        scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"host", host)]}
        await app(scope, receive, send)

    @property
    def events(self) -> list[Event]:
        return parse_events(self.body)


async def draw_here(frame: Frame) -> str:
    """What the dashboard draws in a worker process, drawn in this loop (a process would take real time)."""
    return draw(frame)


def live_run(
    pages: int, *, late_page_at_s: float | None = None, thresholds: tuple[Threshold, ...] = ()
) -> tuple[Dashboard, list[Page], SessionResult]:
    """A run with its dashboard beside it and ``pages`` pages open from the start (one more opened at
    ``late_page_at_s``), as ``stressor run --dashboard`` has them: the dashboard is cancelled when the run ends."""
    profile = profile_of(PROFILE)
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", "seed": 3, "failure_rate": 0.1})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config)
    opened = [Page() for _ in range(pages)]

    async def main() -> tuple[Dashboard, SessionResult]:
        session = Session(profile, where, enforce_budget=False, surroundings=MemorySurroundings(clock()))
        dashboard = Dashboard(
            profile, session.clock, ending="ENDED: see the report", draw=draw_here, thresholds=thresholds
        )
        app = DashboardApp(dashboard)
        async with anyio.create_task_group() as browsers:
            for page in opened:
                browsers.start_soon(page.read, app)
            if late_page_at_s is not None:

                async def late() -> None:
                    await anyio.sleep(late_page_at_s)
                    opened.append(Page())
                    await opened[-1].read(app)

                browsers.start_soon(late)
            async with anyio.create_task_group() as beside:
                beside.start_soon(dashboard.follow, session)
                result = await session.run()
                beside.cancel_scope.cancel()
        return dashboard, result

    dashboard, result = run(main)
    return dashboard, opened, result


def test_events_arrive_once_per_interval_with_the_charts_and_end_with_the_run() -> None:
    dashboard, [page], result = live_run(1)
    assert page.status == 200 and page.headers[b"content-type"].startswith(b"text/event-stream")
    events = page.events
    waiting, updates, last = events[0], events[1:-1], events[-1]
    # The page opened before the run started: it is told so at once. Then a 4 s plan in 500 ms intervals: an
    # event per interval (each taken just after the interval's end), and at the end of the run (4 s, the last
    # runs end at once), the last.
    assert "Waiting for the run to start." in waiting.data["html"]
    assert len(updates) == 7, [e.seq for e in events]
    assert {e.kind for e in events[:-1]} == {"update"} and last.kind == "end"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert page.finished, "the stream did not end with the run"
    arrivals = page.arrivals[2:-2]  # after the stream's retry line and the first event; before the end
    assert [round(b - a, 3) for a, b in itertools.pairwise(arrivals)] == [0.5] * 6
    for event in events[1:]:
        markup = event.data["html"]
        assert all(f'data-chart="{chart}"' in markup for chart in CHARTS), event.seq
        assert 'id="progress"' in markup
    # The figures grow as the run goes: runs ended, and points drawn on the load chart.
    ended = [int(re.search(r"ended (\d+)", e.data["html"])[1]) for e in updates[1:]]  # type: ignore[index]
    assert ended == sorted(ended) and ended[-1] > ended[0]
    # The last event has the run's final figures, and says where the report is.
    final = last.data["html"]
    assert 'data-state="ended"' in final and "ENDED: see the report" in final
    metrics = result.engine.metrics
    settled = sum(metrics.outcomes[o] for o in ("completed", "failed", "errored", "rejected"))
    assert f"ended {settled}" in final
    assert dashboard.renders == len(events)


def test_figures_are_drawn_once_per_interval_however_many_pages_are_open() -> None:
    one, _, _ = live_run(1)
    dashboard, pages, _ = live_run(3)
    assert dashboard.renders == one.renders
    assert pages[0].body == pages[1].body == pages[2].body  # the same events, drawn once


def test_without_a_page_nothing_is_drawn() -> None:
    dashboard, _, result = live_run(0)
    assert dashboard.renders == 0 and result.engine.metrics.submitted_runs > 0


def test_a_page_opened_mid_run_gets_the_figures_at_once_then_each_interval() -> None:
    _, pages, _ = live_run(1, late_page_at_s=2.2)
    early, late = pages
    first = late.events[0]
    assert first.kind == "update" and late.arrivals[1] == pytest.approx(early.arrivals[0] + 2.2, abs=0.01)
    assert late.events[-1].kind == "end" and late.finished
    assert late.events[-1].data == early.events[-1].data


def test_the_page_loads_its_script_under_a_policy_and_refuses_other_hosts() -> None:
    profile = profile_of(PROFILE)

    async def main() -> dict[str, Page]:
        dashboard = Dashboard(profile, clock(), ending="", draw=draw_here)
        app = DashboardApp(dashboard)
        pages = {path: Page() for path in ("/", "/dashboard.js", "/nothing")}
        for path, page in pages.items():
            await page.read(app, path)
        pages["rebound"] = Page()
        await pages["rebound"].read(app, "/", host=b"attacker.example:8090")
        return pages

    pages = run(main)
    page = pages["/"]
    assert page.status == 200 and page.finished
    text = page.body.decode()
    assert f'content="{CSP}"' in text and '<script src="dashboard.js"></script>' in text
    assert "<script>" not in text  # no inline script: the policy allows only the dashboard's own file
    assert "Waiting for the first figures." in text
    assert pages["/dashboard.js"].status == 200 and b'new EventSource("events")' in pages["/dashboard.js"].body
    assert pages["/nothing"].status == 404
    assert pages["rebound"].status == 403


def test_the_ending_names_the_report_or_says_how_to_draw_one(tmp_path: Path) -> None:
    with_report = ending_note(tmp_path / "report.html", tmp_path / "results.json")
    assert f'href="{(tmp_path / "report.html").as_uri()}"' in with_report
    without = ending_note(None, Path("out/results.json"))
    assert "stressor report out/results.json --html report.html" in without


# ------------------------------------------------------------------------------------------------ the command


def test_a_dashboard_elsewhere_than_loopback_is_refused_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('[[stages]]\nduration = "1s"\nrate = "1/s"\n')
    done = stressor_here("run", str(tmp_path / "p.toml"), "--out", str(tmp_path / "r.json"),
                         "--dashboard-listen", "0.0.0.0:8090")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "stressor: --dashboard-listen 0.0.0.0:8090: the dashboard serves on loopback only (127.0.0.1, ::1 or "
        "localhost), not on 0.0.0.0"
    )
    assert not (tmp_path / "r.json").exists()


def test_a_dashboard_port_in_use_is_refused_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('[[stages]]\nduration = "1s"\nrate = "1/s"\n')
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        done = stressor_here("run", str(tmp_path / "p.toml"), "--out", str(tmp_path / "r.json"),
                             "--dashboard-listen", f"127.0.0.1:{port}")  # fmt: skip
    finally:
        taken.close()
    assert done.returncode == 2
    assert re.fullmatch(rf"stressor: --dashboard-listen 127\.0\.0\.1:{port}: cannot listen there \(.+\)\n", done.stderr)


@pytest.mark.e2e
def test_stressor_run_dashboard_serves_live_events_on_loopback_and_stops_with_the_run(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE_TOML)
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "run", str(profile), "--out", str(tmp_path / "r.json"), "--progress", "0",
         "--dashboard", "--html", str(tmp_path / "report.html")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        said = process.stderr.readline()
        found = re.fullmatch(r"stressor: live dashboard at (http://127\.0\.0\.1:(\d+)/) until the run ends\n", said)
        assert found, said
        url, port = found[1], int(found[2])
        with httpx.Client(timeout=30) as client:
            page = client.get(url)
            assert page.status_code == 200 and "stressor live: real" in page.text
            with client.stream("GET", url + "events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                body = b"".join(stream.iter_bytes())  # until the server ends it, with the run
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.wait()
    events = parse_events(body)
    assert len(events) >= 3 and events[-1].kind == "end"
    assert all(e.kind == "update" for e in events[:-1])
    assert (tmp_path / "report.html").as_uri() in events[-1].data["html"]
    with socket.socket() as probe:  # the server stopped with the run
        assert probe.connect_ex(("127.0.0.1", port)) != 0


PROFILE_TOML = """
name = "real"
interval = "500ms"
grace = "10s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
[[stages]]
duration = "3s"
rate = "4/s"
"""


def test_achieved_load_does_not_drop_to_zero_when_creates_take_a_few_ms() -> None:
    # One batch due on each interval's boundary, its create answered 20 ms later: sampled on the boundary, an
    # interval would see the batch due but not created (0/s), and the next one two batches created.
    profile = profile_of({**PROFILE, "stages": [{"duration": "4s", "rate": "2/s"}]})
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", "seed": 3, "latency": 0.02})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config)

    async def main() -> Dashboard:
        session = Session(profile, where, enforce_budget=False, surroundings=MemorySurroundings(clock()))
        dashboard = Dashboard(profile, session.clock, ending="", draw=draw_here)
        async with anyio.create_task_group() as beside:
            beside.start_soon(dashboard.follow, session)
            await session.run()
            beside.cancel_scope.cancel()
        return dashboard

    dashboard = run(main)
    during = [point for point in dashboard._points if point.end < 3.6]  # whole intervals with batches due
    assert len(during) == 7 and all(point.offered_per_s > 0 for point in during)
    assert [p.achieved_per_s for p in during] == pytest.approx([p.offered_per_s for p in during]), during


def test_the_runs_thresholds_are_drawn_live_as_lines_judged_at_the_end() -> None:
    thresholds = tuple(parse_thresholds(["queue_to_completion.p95 < 2s", "failure_rate < 5%", "open == 0"]))
    _, [page], _ = live_run(1, thresholds=thresholds)
    markup = page.events[-2].data["html"]  # an update while the run goes
    charts = {m[1]: m[2] for m in re.finditer(r'data-chart="(\w+)"(.*?)</figure>', markup, re.S)}
    for chart, text in (("latency", "queue_to_completion.p95 &lt; 2s"), ("spectrum", "queue_to_completion.p95 &lt; 2s"),
                        ("failures", "failure_rate &lt; 5%")):  # fmt: skip
        assert f"threshold {text} (whole run): checked at the end" in charts[chart], chart
    assert "open == 0" not in markup  # a count is no line on a time chart
