"""The live dashboard of a run (``stressor run --dashboard``): a page on loopback with the HTML report's charts,
updated once per interval by server-sent events, served with uvicorn in the run's own event loop
(``stressor.asgi_server``) and stopped with the run. What it shows: docs/reports.md#live-dashboard.
"""

from __future__ import annotations

import functools
import html
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_process
import orjson
from anyio import BrokenWorkerProcess

from stressor.asgi_server import base_url_of, serve_asgi
from stressor.loopback import is_loopback
from stressor.progress import Progress, ProgressWindow
from stressor.report.html import CSS
from stressor.report.live import MAX_POINTS, Frame, LivePoint, draw, live_point
from stressor.report.results import plan_stages
from stressor.timestamps import NS_PER_S

if TYPE_CHECKING:
    from stressor.clock import Clock
    from stressor.profile import Profile
    from stressor.session import Runner, Session
    from stressor.thresholds import Threshold

# The page runs its one script (served here, not inline), reaches back only to this server, and loads nothing else.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'self'; connect-src 'self'"
WAIT_FOR_START_S = 0.1  # how often the dashboard looks whether the run has started
END_WAIT_S = 2.0  # the most the end of a run waits for open pages to take its last event
SAMPLE_AFTER_S = 0.05  # how long after an interval's end it is sampled (at most a 20th of the interval)
SLIVER = 0.1  # a last interval shorter than this share of the interval is not drawn (its rates divide by ~0)
_EXTRA_CSS = """
pre.progress{font:12.5px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--panel);
border:1px solid var(--line);border-radius:6px;padding:10px 14px;overflow-x:auto;max-width:100%}
.callout.ended{border-color:var(--ok);background:var(--okbg)}
.s-bold{font-weight:700}.s-green{color:#2f855a}.s-cyan{color:#2b6cb0}.s-yellow{color:#b7791f}.s-red{color:#c53030}
.s-dim{color:#a0aec0}
"""
SCRIPT = b"""\"use strict\";
const live = document.getElementById("live");
const source = new EventSource("events");
let shown = 0;
function show(message) {
  const data = JSON.parse(message.data);
  live.innerHTML = data.html;
  document.title = data.title;
  shown += 1;
  document.body.dataset.events = String(shown);
}
source.addEventListener("update", show);
source.addEventListener("end", (message) => {
  show(message);
  source.close();
  document.body.dataset.ended = "yes";
});
source.addEventListener("error", () => {
  const state = document.getElementById("state");
  if (document.body.dataset.ended !== "yes" && state) {
    state.textContent = "connection lost: the run is over or stressor is unreachable; retrying";
  }
});
"""

Message = dict[str, Any]
Draw = Callable[[Frame], Awaitable[str]]
# Drawing takes milliseconds, more as the run grows: never in the run's event loop, where it would delay the
# batches that fall due meanwhile, but in a worker process (started when the first page opens).
IN_A_PROCESS: Draw = functools.partial(anyio.to_process.run_sync, draw)
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class Dashboard:
    """Samples a run once per interval and hands its figures to every open page. The figures are drawn once per
    interval, and only while a page is open, however many are: nothing is added to the run's own work."""

    def __init__(
        self,
        profile: Profile,
        clock: Clock,
        ending: str,
        *,
        draw: Draw = IN_A_PROCESS,
        thresholds: Sequence[Threshold] = (),
    ) -> None:
        self.profile = profile
        self.thresholds = tuple(thresholds)  # the run's, -t included: lines on the charts
        self.clock = clock
        self.ending = ending  # markup, said once the run is over
        self.renders = 0  # how many times the figures were drawn
        self._draw = draw
        self._window = ProgressWindow()
        self._points: deque[LivePoint] = deque(maxlen=MAX_POINTS)
        self._sampled = 0  # intervals sampled, those no longer kept included
        self._last: Progress | None = None  # the snapshot the last interval ends at
        self._now: Progress | None = None  # the latest snapshot (the last one, when the run is over)
        self._tick = 0  # the last interval sampled (1: the first)
        self._drawn_tick = -1  # the interval the last event was drawn at
        self._body: str | None = None  # the last event's page body
        self._event: bytes | None = None  # the last event, encoded
        self._seq = 0
        self._changed = anyio.Event()
        self._ended = False
        self._pages = 0
        self._nap_scope: anyio.CancelScope | None = None
        self._draw_now = False
        self._stages = plan_stages(profile)

    # ------------------------------------------------------------------------------------------ sampling

    async def follow(self, session: Session) -> None:
        """Sample the session's run every interval until cancelled (the run is over), then send the last figures
        and wait (a moment at most) for the pages to take them."""
        try:
            await self._sample_every_interval(session)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(END_WAIT_S):
                await self._finish(session.engine)
                while self._pages:
                    await self._changed.wait()

    async def _sample_every_interval(self, session: Session) -> None:
        interval_ns = round(self.profile.interval_s * NS_PER_S)
        # Just after each interval's end rather than on it: a batch due on the boundary (as with most rates) is
        # then always in the interval that ends there, never in one or the other by a race with the pacer, and
        # its create is answered by then (else "achieved" drops to 0 in one interval and doubles in the next).
        after_ns = min(round(SAMPLE_AFTER_S * NS_PER_S), interval_ns // 20)
        while True:
            runner = session.engine
            if runner is None or not runner.t0_ns:
                if self._draw_now and self._pages and self._event is None:
                    await self._publish(None)
                self._draw_now = False
                await self._nap(self.clock.now_ns() + round(WAIT_FOR_START_S * NS_PER_S))
                continue
            tick = (self.clock.now_ns() - runner.t0_ns - after_ns) // interval_ns
            if tick > self._tick:
                self._tick = tick
                self._sample(runner)
                if self._pages:
                    await self._publish(runner)
            elif self._draw_now and self._pages and self._drawn_tick != self._tick:
                await self._publish(runner)  # a page opened since the last drawing: it gets figures at once
            self._draw_now = False
            await self._nap(runner.t0_ns + (self._tick + 1) * interval_ns + after_ns)

    async def _nap(self, until_ns: int) -> None:
        """Sleep until ``until_ns``, or until a new page asks for figures."""
        with anyio.CancelScope() as scope:
            self._nap_scope = scope
            await self.clock.sleep_until(until_ns)
        self._nap_scope = None

    def _sample(self, runner: Runner) -> None:
        snapshot = self._now = self._window.read(runner)
        last = self._last
        if last is not None and snapshot.elapsed_s - last.elapsed_s < SLIVER * self.profile.interval_s:
            return  # shown, not drawn as an interval
        self._points.append(live_point(last, snapshot))
        self._sampled += 1
        self._last = snapshot

    async def _finish(self, runner: Runner | None) -> None:
        if runner is not None and runner.t0_ns:
            self._sample(runner)  # the last, partial interval
        if self._pages:
            await self._publish(runner, final=True)

    # ------------------------------------------------------------------------------------------ publishing

    async def _publish(self, runner: Runner | None, *, final: bool = False) -> None:
        """Draw the figures so far into the event every open page gets next."""
        self.renders += 1
        name = self.profile.name
        if runner is None or not runner.t0_ns:
            note = "The run ended before it started: stressor says why on stderr."
            note = note if final else "Waiting for the run to start."
            body = f'<header><h1>stressor live: {_e(name)}</h1></header><p class="callout warn">{note}</p>'
        else:
            points = tuple(self._points)
            frame = Frame(
                name=name,
                elapsed_s=runner.elapsed_s(),
                interval_s=self.profile.interval_s,
                points=points,
                earlier=self._sampled - len(points),
                progress=self._now,
                ending=self.ending if final else None,
                stages=self._stages,
                thresholds=self.thresholds,
            )
            try:
                body = await self._draw(frame)
            except BrokenWorkerProcess:
                if not final:
                    return  # the pages keep the figures they have; the next interval tries again
                body = f'<p class="callout ended" id="ending">{self.ending}</p>{self._body or ""}'

        self._seq += 1
        self._body = body
        self._drawn_tick = self._tick
        state = "ended" if final else f"{self._now.elapsed_s:.0f}s" if self._now is not None else "starting"
        data = orjson.dumps({"seq": self._seq, "html": body, "title": f"stressor live: {name} ({state})"})
        kind = b"end" if final else b"update"
        self._event = b"event: " + kind + b"\nid: " + str(self._seq).encode() + b"\ndata: " + data + b"\n\n"
        self._ended = final
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def stream(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """One page's events: the latest figures at once (drawn now if they are older than this interval), then
        each interval's, until the run's last."""
        self._pages += 1
        try:
            if self._drawn_tick != self._tick or self._event is None:
                self._draw_now = True
                if self._nap_scope is not None:
                    self._nap_scope.cancel()
            seen = 0
            while True:
                changed = self._changed
                if self._seq != seen and self._event is not None:
                    seen = self._seq
                    await write(self._event)
                elif self._ended:
                    return
                else:
                    await changed.wait()
        finally:
            self._pages -= 1
            self._notify()

    def page(self) -> bytes:
        """The page: its latest figures (the script replaces them as events come)."""
        waiting = '<p class="meta">Waiting for the first figures.</p>'
        body = self._body or f"<header><h1>stressor live: {_e(self.profile.name)}</h1></header>{waiting}"
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>stressor live: {_e(self.profile.name)}</title><style>{CSS}{_EXTRA_CSS}</style></head>"
            f'<body><main id="live">{body}</main><script src="dashboard.js"></script></body></html>\n'
        ).encode()


class DashboardApp:
    """The dashboard over HTTP, a raw ASGI 3 app: ``/`` the page, ``/dashboard.js`` its script, ``/events`` the
    server-sent events. Only GET, and only for a loopback Host (a page elsewhere cannot rebind a name to it)."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not is_loopback(name.strip("[]")):
            await _answer(send, 403, b"the dashboard answers only on loopback\n", b"text/plain")
        elif scope["method"] != "GET":
            await _answer(send, 405, b"only GET\n", b"text/plain")
        elif scope["path"] == "/":
            await _answer(send, 200, self.dashboard.page(), b"text/html; charset=utf-8")
        elif scope["path"] == "/dashboard.js":
            await _answer(send, 200, SCRIPT, b"text/javascript; charset=utf-8")
        elif scope["path"] == "/events":
            await self._events(receive, send)
        else:
            await _answer(send, 404, b"not found\n", b"text/plain")

    async def _events(self, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )

        async def write(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        gone = False
        async with anyio.create_task_group() as tasks:

            async def until_gone() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                tasks.cancel_scope.cancel()

            tasks.start_soon(until_gone)
            await write(b"retry: 2000\n\n")  # reconnect after 2 s if the stream breaks mid-run
            await self.dashboard.stream(write)
            tasks.cancel_scope.cancel()
        if not gone:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _answer(send: Send, status: int, body: bytes, kind: bytes) -> None:
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def ending_note(report: Path | None, results: Path) -> str:
    """What the page says once the run is over (markup): where its HTML report is, or how to draw one."""
    if report is not None:
        where = report.resolve()
        return (
            f'The run has ended. Its HTML report is written to <a href="{_e(where.as_uri())}">{_e(where)}</a> '
            "as stressor exits; this page no longer updates."
        )
    return (
        f"The run has ended; this page no longer updates. No HTML report was asked for (<code>--html</code>): "
        f"<code>stressor report {_e(results)} --html report.html</code> draws these charts from its results."
    )


async def serve_dashboard(
    session: Session,
    host: str,
    port: int,
    *,
    ending: str,
    say: Callable[[str], None],
    thresholds: Sequence[Threshold] = (),
) -> None:
    """Serve the dashboard of ``session``'s run on host:port (loopback) until the run is over; says its URL, or
    why it could not be served (the run goes on without it)."""
    dashboard = Dashboard(session.profile, session.clock, ending, thresholds=thresholds)
    async with AsyncExitStack() as stack:
        try:
            bound_host, bound_port = await stack.enter_async_context(
                serve_asgi(DashboardApp(dashboard), host, port, what="the dashboard")
            )
        except (OSError, RuntimeError) as exc:
            say(f"the dashboard could not be served on {host}:{port} ({exc}); the run goes on without it")
            return
        say(f"live dashboard at {base_url_of(bound_host, bound_port)}/ until the run ends")
        await dashboard.follow(session)
