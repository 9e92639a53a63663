"""The simulator's HTTP face: a raw ASGI 3 app with a small router over ``SimModel``.

Requests are handled in one place, ``SimApp.handle(request) -> Response``, on plain values; middleware (the
fault layer) wraps it, and every request is counted outside it. Bad clients, the ``Date`` header and auth:
docs/internals.md#simulator-http-app.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import re
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import anyio
import orjson

from stressor.sim.model import SimModel
from stressor.sim.records import Id, Run
from stressor.sim.validation import (
    FieldErrors,
    parse_batch_request,
    parse_page_query,
    parse_run_list_query,
    parse_run_request,
)
from stressor.sim.views import (
    batch_json,
    call_json,
    calls_page_json,
    config_json,
    grade_json,
    run_json,
    transcript_json,
    truth_json,
)

MAX_BODY_BYTES = 1024 * 1024
BODY_TIMEOUT_S = 30.0
RUN_BODY_CACHE = 50_000  # runs whose JSON is kept made
UNMATCHED = "<unmatched>"
DROPPED = 0
"""The status a request is counted with when its connection was dropped without an answer."""
CLIENT_GONE = 499
"""The status a request is counted with when its client disconnected before its body was complete (nginx's
"client closed request"): nothing is done for it and nothing is sent."""

_DISCONNECT_WAIT_S = 1.0
_CLOSE = (("connection", "close"),)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the handler sees it; ``route`` is the matched template or ``<unmatched>``."""

    method: str
    path: str
    route: str
    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    created: tuple[Id, ...] = ()  # ids of the runs this answer created (for the ground truth)


Handler = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Handler], Handler]
Endpoint = Callable[[Request], Response]
StatsSource = Callable[[], object]


class DropConnection(Exception):
    """Raised by a handler (the fault layer) to close the connection without answering.

    Under uvicorn the socket is reset (RST), so the client sees a reset or a "server disconnected" error. Under
    any other ASGI server, or httpx's ASGI transport, the exception propagates out of the app: a test client
    then sees this exception, a server answers 500.
    """


@dataclass(frozen=True, slots=True)
class _ClientGone:
    """The client disconnected before its request body was complete."""


@dataclass(frozen=True, slots=True)
class _BodyTimeout:
    """The request body stopped arriving before its end."""


class _BodyError(Exception):
    """The body is not JSON or not a JSON object (400 with ``detail``)."""


def json_response(status: int, data: object, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON answer (orjson, compact)."""
    return Response(status, orjson.dumps(data), (("content-type", "application/json"), *headers))


def detail(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """An error answer ``{"detail": message}``."""
    return json_response(status, {"detail": message}, headers)


class RequestStats:
    """How many requests the app answered, by method, route template and status (``DROPPED``, 0, for a
    connection dropped without an answer)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def record(self, method: str, route: str, status: int) -> None:
        """Count one answered request."""
        self._counts[(method, route, status)] += 1

    def count(self, method: str | None = None, route: str | None = None, status: int | None = None) -> int:
        """Requests matching every given criterion (None matches anything)."""
        return sum(
            n
            for (m, r, s), n in self._counts.items()
            if (method is None or m == method) and (route is None or r == route) and (status is None or s == status)
        )

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{"GET /v1/test-calls": {"200": 12}, ...}``."""
        out: dict[str, dict[str, int]] = {}
        for (method, route, status), n in sorted(self._counts.items()):
            out.setdefault(f"{method} {route}", {})[str(status)] = n
        return out


@dataclass(frozen=True, slots=True)
class Route:
    """A path template, the endpoint per method, and whether it needs the API key."""

    template: str
    methods: Mapping[str, Endpoint]
    public: bool = False
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


class Router:
    """Finds the route of a path (a trailing slash is ignored)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = tuple(routes)

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and path parameters of ``path``, or None."""
        path = path.rstrip("/") or "/"
        for route in self._routes:
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None


class SimApp:
    """ASGI 3 app serving the test-calls API from a ``SimModel``; see docs/internals.md#simulator-http-app."""

    def __init__(
        self,
        model: SimModel,
        clock: Callable[[], float],
        *,
        middleware: Sequence[Middleware] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
        stats: Mapping[str, StatsSource] | None = None,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        self.model = model
        self.clock = clock
        self.stats = RequestStats()
        self.stats_sources: dict[str, StatsSource] = dict(stats or {})
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self._run_bodies: dict[Id, tuple[Run, bytes]] = {}  # run id -> (the version of the run, its JSON)
        self._date: tuple[int, str] = (-1, "")  # the Date header of the current second, made once a second
        self.router = Router(
            [
                Route("/v1/healthz", {"GET": self._healthz}, public=True),
                Route("/v1/test-calls", {"POST": self._create_run, "GET": self._list_runs}),
                Route("/v1/test-call-batches", {"POST": self._create_batch, "GET": self._list_batches}),
                Route("/v1/test-call-batches/{batch_id}", {"GET": self._get_batch}),
                Route("/v1/calls", {"GET": self._list_calls}),
                Route("/v1/calls/{call_id}", {"GET": self._get_call}),
                Route("/v1/calls/{call_id}/transcript", {"GET": self._get_transcript}),
                Route("/v1/calls/{call_id}/grade", {"GET": self._get_grade, "POST": self._get_grade}),
                Route("/_sim/truth", {"GET": self._truth}, public=True),
                Route("/_sim/stats", {"GET": self._stats}, public=True),
            ]
        )
        handler: Handler = self.handle
        for wrap in reversed(middleware):
            handler = wrap(handler)
        self.handler = handler

    # -- the one place requests are handled ----------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Answer one request: advance the model to now, route, authenticate, dispatch."""
        self.model.advance(self.clock())
        matched = self.router.match(request.path)
        if matched is None:
            return detail(404, "Not found.")
        route, _ = matched
        if not route.public:
            refused = self._authenticate(request.headers.get("authorization"))
            if refused is not None:
                return refused
        endpoint = route.methods.get(request.method)
        if endpoint is None:
            allowed = ", ".join(sorted(route.methods))
            return detail(405, f'Method "{request.method}" not allowed.', (("allow", allowed),))
        try:
            return endpoint(request)
        except FieldErrors as bad:
            return json_response(400, bad.errors)
        except _BodyError as bad:
            return detail(400, str(bad))

    def _authenticate(self, header: str | None) -> Response | None:
        challenge = (("www-authenticate", 'Bearer realm="api"'),)
        if not header:
            return detail(401, "Authentication credentials were not provided.", challenge)
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return detail(401, "Invalid authorization header; expected 'Bearer <api key>'.", challenge)
        expected = self.model.config.api_key
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            return detail(401, "Invalid API key.", challenge)
        return None

    # -- ASGI plumbing -------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point (http; lifespan answered trivially; websockets refused)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})
            return
        arrived = self.clock()
        method: str = scope["method"]
        path: str = scope["path"]
        matched = self.router.match(path)
        template = matched[0].template if matched else UNMATCHED
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        body = await self._read_body(headers, receive)
        if isinstance(body, _ClientGone):
            self.stats.record(method, template, CLIENT_GONE)
            return
        # Both leave the rest of the body unread on the connection: it must close, not carry a next request.
        if isinstance(body, _BodyTimeout):
            message = f"The request body did not arrive within {self.body_timeout_s:g} seconds."
            response = detail(408, message, _CLOSE)
        elif body is None:
            response = detail(413, f"Request body is larger than {self.max_body_bytes} bytes.", _CLOSE)
        else:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
            request = Request(
                method=method,
                path=path,
                route=template,
                params=matched[1] if matched else {},
                query=query,
                headers=headers,
                body=body,
            )
            try:
                response = await self.handler(request)
            except DropConnection:
                self.stats.record(method, template, DROPPED)
                if not await _drop_connection(send, receive):
                    raise
                return
        # counted before the answer leaves, so a client that got it can already see it in the stats
        self.stats.record(method, template, response.status)
        now = self.clock()
        if response.created and response.status == 201:
            self.model.record_submit(response.created, arrived, now)
        await _send_response(send, response, self._date_header(now))

    def _date_header(self, now: float) -> str:
        """``Date`` at monotonic ``now`` on the server's clock (one-second resolution, as HTTP has)."""
        second = math.floor(self.model.wall(now))
        if self._date[0] != second:
            self._date = (second, formatdate(second, usegmt=True))
        return self._date[1]

    async def _read_body(
        self, headers: Mapping[str, str], receive: Receive
    ) -> bytes | _ClientGone | _BodyTimeout | None:
        """The request body; None when it exceeds the cap (then the rest is not read); ``_ClientGone`` when the
        client disconnected before the end of it; ``_BodyTimeout`` when it stopped arriving."""
        declared = headers.get("content-length", "")
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message | None = None
            with anyio.move_on_after(self.body_timeout_s):
                message = await receive()
            if message is None:
                return _BodyTimeout()
            if message["type"] == "http.disconnect":
                # what arrived is a fragment: acting on it could create a run its client gave up on
                return _ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    # -- endpoints -----------------------------------------------------------------------------------------

    def _healthz(self, request: Request) -> Response:
        return json_response(200, {"ok": True})

    @property
    def _scale(self) -> int:
        return self.model.config.grade_scale

    def _create_run(self, request: Request) -> Response:
        run = self.model.create_run(parse_run_request(_json_object(request.body)), self.clock())
        return replace(json_response(201, run_json(run, self._scale)), created=(run.id,))

    def _list_runs(self, request: Request) -> Response:
        query = parse_run_list_query(request.query)
        runs = self.model.list_runs(
            limit=query.limit,
            offset=query.offset,
            target_type=query.target_type,
            status=query.status,
            agent_id=query.agent_id,
        )
        self.model.record_shown(runs, self.clock())
        body = b"[" + b",".join(self._run_body(run) for run in runs) + b"]"
        return Response(200, body, (("content-type", "application/json"),))

    def _run_body(self, run: Run) -> bytes:
        """The run's JSON, made once per version of the run (a ``Run`` is replaced when it changes): list pages
        show the same runs again and again, and building each anew made the simulator the benchmarks' limit."""
        bodies = self._run_bodies
        cached = bodies.get(run.id)
        if cached is None or cached[0] is not run:
            if len(bodies) >= RUN_BODY_CACHE:
                del bodies[next(iter(bodies))]  # the oldest made: lists are read newest first
            cached = bodies[run.id] = (run, orjson.dumps(run_json(run, self._scale)))
        return cached[1]

    def _create_batch(self, request: Request) -> Response:
        batch = self.model.create_batch(parse_batch_request(_json_object(request.body)), self.clock())
        return replace(json_response(201, batch_json(batch)), created=batch.run_ids)

    def _list_batches(self, request: Request) -> Response:
        page = parse_page_query(request.query)
        batches = self.model.list_batches(limit=page.limit, offset=page.offset)
        return json_response(200, [batch_json(batch) for batch in batches])

    def _get_batch(self, request: Request) -> Response:
        batch = self.model.get_batch(request.params["batch_id"])
        return json_response(200, batch_json(batch)) if batch else detail(404, "Not found.")

    def _list_calls(self, request: Request) -> Response:
        page = parse_page_query(request.query)
        runs, total = self.model.list_calls(limit=page.limit, offset=page.offset)
        calls = [call_json(run, self._scale) for run in runs]
        return json_response(200, calls_page_json(calls, total=total, limit=page.limit, offset=page.offset))

    def _get_call(self, request: Request) -> Response:
        run = self.model.run_for_call(request.params["call_id"])
        return json_response(200, call_json(run, self._scale)) if run else detail(404, "Not found.")

    def _get_transcript(self, request: Request) -> Response:
        run = self.model.run_for_call(request.params["call_id"])
        if run is None:
            return detail(404, "Not found.")
        now = self.model.wall(self.clock())
        return json_response(200, transcript_json(run, now=now, time_scale=self.model.config.time_scale))

    def _get_grade(self, request: Request) -> Response:
        # POST asks for a re-grade; the simulator grades on its own schedule, so both answer the latest grade
        # (the one the last call.graded webhook carried)
        run = self.model.run_for_call(request.params["call_id"])
        return json_response(200, grade_json(run, self._scale)) if run else detail(404, "Not found.")

    def _truth(self, request: Request) -> Response:
        model = self.model
        return json_response(
            200,
            {
                "runs": [truth_json(record) for record in model.truth()],
                "config": config_json(model.config, model.seed),
                "now": model.true_wall(self.clock()),
            },
        )

    def _stats(self, request: Request) -> Response:
        model = self.model
        return json_response(
            200,
            {
                "requests": self.stats.snapshot(),
                "total": self.stats.count(),
                "runs": model.status_counts(),
                "in_progress": model.in_progress_count,
                "queued": model.queued_count,
                "slots": model.config.slots,
                **{name: source() for name, source in self.stats_sources.items()},
            },
        )


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise _BodyError("Request body is empty; expected a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as bad:
        raise _BodyError(f"JSON parse error: {bad}.") from None
    if not isinstance(data, dict):
        raise _BodyError(f"Expected a JSON object, got {type(data).__name__}.")
    return data


async def _send_response(send: Send, response: Response, date: str) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    headers.append((b"date", date.encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _drop_connection(send: Send, receive: Receive) -> bool:
    """Reset the connection of this request without answering; False when the server does not allow it.

    ASGI has no message for "close without a response": a server answers 500 when the app raises before
    starting a response. uvicorn's ``send`` is a method of its request cycle, which holds the asyncio
    transport; closing that with SO_LINGER 0 sends a TCP RST. The app then waits for the disconnect message, so
    uvicorn has seen the connection go before the app returns (else it would try to write a 500 into it).
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.BaseTransport):
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # a closed or odd socket only loses the RST: the close below still drops the connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()
    with anyio.move_on_after(_DISCONNECT_WAIT_S):
        while (await receive())["type"] != "http.disconnect":
            pass  # a body chunk still in flight: keep reading until the server reports the disconnect
    return True


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    model: SimModel,
    clock: Callable[[], float],
    *,
    middleware: Sequence[Middleware] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    stats: Mapping[str, StatsSource] | None = None,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> SimApp:
    """The ASGI app over ``model``; ``clock`` gives the model's monotonic seconds (``time.perf_counter``).

    ``middleware`` wraps the handler, first item outermost (for fault injection). ``stats`` adds entries to
    ``GET /_sim/stats``: each name maps to a function returning a JSON-ready value (e.g. fault counters).
    """
    return SimApp(
        model, clock, middleware=middleware, max_body_bytes=max_body_bytes, stats=stats, body_timeout_s=body_timeout_s
    )
