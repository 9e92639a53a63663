"""The test-calls API as a target: submit batches (or single runs), follow every run to its end by polling.

Polling is two-tier because the API has no per-run GET and its batch detail carries counters, not runs:
each batch's follower polls ``GET /v1/test-call-batches/{id}`` (one cheap request for up to 20 runs) and,
only when the counters say that runs have ended, asks a shared ``RunLister`` which ones. The lister pages
through ``GET /v1/test-calls`` newest first, once for every follower waiting at that moment (single-flight),
so the list endpoint is read about once per poll interval however many batches are open.

Every request goes through the run's ``Governor`` (client-side rates, the server's Retry-After and rate-limit
headers, backoff, breaker). A run-creating POST is never sent twice blindly: it is retried only when it
provably created nothing (429/503, no connection), and after an answer that leaves it open (a timeout, a
reset, a 5xx, an unreadable 2xx) the target first *reconciles*: it looks for the batch by its unique name,
or for the run by target, prompt and time, and adopts what it finds. Only a proven absence allows a retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson

from stressor.governor import Governor, RequestKind
from stressor.limits import Decision, HttpOutcome, TransportFailure
from stressor.profile import Limits, RunRequest
from stressor.secrets import mask_secret
from stressor.targets.base import (
    BatchOrder,
    RequestLog,
    RunEnd,
    Submission,
    SubmitError,
    SubmittedRun,
    TargetUnavailable,
)
from stressor.targets.http import ShardedClient
from stressor.targets.inbox import CompletionInbox
from stressor.timestamps import NS_PER_S, parse_iso_or_none
from stressor.webhooks.events import BadEvent, CallGraded, parse_grade

LIST_PAGE_SIZE = 200  # the API's maximum
MIN_SLEEP_S = 0.001  # shorter sleeps spin under uvloop (engineering notes)
RECONCILE_WINDOW_S = 5.0  # a reconciled single run must have been created at most this long before the POST
KNOWN_RUNS_KEPT = 100_000
HTTP_SHARDS = 8
MISSING = object()
TERMINAL = ("completed", "failed")
# Answers that mean no later request can succeed either: the run stops and says why.
FATAL_STATUSES = {
    400: "the server refused the run request as invalid",
    401: "the API key was refused (401 Unauthorized); check THUNDERPHONE_API_KEY",
    402: "the org's balance is at zero (402 Payment Required)",
    403: "the API key may not create test calls for this target (403 Forbidden)",
    404: "the endpoint does not exist (404); check the base URL",
}


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as one answer of the list endpoint showed it, and when that answer arrived."""

    run_id: str
    status: str
    seen_ns: int
    created_at: float | None
    started_at: float | None
    completed_at: float | None
    error_message: str
    call_id: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def as_end(self) -> RunEnd:
        """The run's end as the engine takes it (only for a run that has ended)."""
        return RunEnd(
            run_id=self.run_id,
            status=self.status,  # type: ignore[arg-type]
            detected_ns=self.seen_ns,
            started_at=self.started_at,
            completed_at=self.completed_at,
            error_message=self.error_message,
            call_id=self.call_id,
        )


def transport_failure(exc: httpx.TransportError) -> TransportFailure:
    """What an httpx exception says about whether the request reached the server."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect_timeout"  # no connection was ever given to this request: nothing was sent
    if isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol | httpx.ProxyError):
        return "connect_error"
    if isinstance(exc, httpx.TimeoutException):
        return "read_timeout"
    if isinstance(exc, httpx.WriteError):
        return "write_error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "remote_protocol"
    return "reset"  # ReadError and the rest: the connection broke after the request may have gone


def _outcome(status: int) -> str:
    return "ok" if 200 <= status < 300 else f"http_{status}"


def _detail(response: httpx.Response) -> str:
    """The server's own words about an error, short."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200].strip()
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return orjson.dumps(body).decode()[:200]


def parse_run(item: object, seen_ns: int) -> RunView | None:
    """A run object of the API, or None when the item is not one (the caller counts it)."""
    if not isinstance(item, dict):
        return None
    run_id, status = item.get("id"), item.get("status")
    if not isinstance(run_id, str | int) or isinstance(run_id, bool) or not isinstance(status, str):
        return None
    error, call_id = item.get("error_message"), item.get("call_id")
    return RunView(
        run_id=str(run_id),
        status=status,
        seen_ns=seen_ns,
        created_at=parse_iso_or_none(item.get("created_at")),
        started_at=parse_iso_or_none(item.get("started_at")),
        completed_at=parse_iso_or_none(item.get("completed_at")),
        error_message=error if isinstance(error, str) else "",
        call_id=str(call_id) if isinstance(call_id, str | int) and not isinstance(call_id, bool) else None,
    )


class RunLister:
    """Finds runs by id on the list endpoint, one scan for all callers waiting at that moment."""

    def __init__(self, get: Callable[..., Any], max_pages: int = 10) -> None:
        # ``get(purpose, path, params)`` -> (decoded JSON or None, monotonic ns of the answer)
        self._get = get
        self._max_pages = max_pages
        self._wanted: dict[str, float | None] = {}
        self._found: dict[str, RunView] = {}
        self._lock = anyio.Lock()
        self._scans_started = 0

    async def lookup(self, wanted: Mapping[str, float | None]) -> dict[str, RunView]:
        """The current view of these runs (id -> created_at); ids the scan did not reach are left out."""
        self._wanted.update(wanted)
        ticket = self._scans_started
        try:
            async with self._lock:
                if self._scans_started == ticket:  # no scan began since we asked: run one for everybody
                    self._scans_started += 1
                    await self._scan()
            return {run_id: self._found.pop(run_id) for run_id in wanted if run_id in self._found}
        finally:
            for run_id in wanted:
                self._wanted.pop(run_id, None)
                self._found.pop(run_id, None)

    async def _scan(self) -> None:
        wanted = dict(self._wanted)
        times = [t for t in wanted.values() if t is not None]
        oldest = min(times) - 1.0 if len(times) == len(wanted) else None
        for page in range(self._max_pages):
            body, seen_ns = await self._get(
                "list_runs",
                "/v1/test-calls",
                params={"limit": LIST_PAGE_SIZE, "offset": page * LIST_PAGE_SIZE},
            )
            if not isinstance(body, list):
                return
            for item in body:
                view = parse_run(item, seen_ns)
                if view is not None and view.run_id in wanted:
                    self._found[view.run_id] = view
                    del wanted[view.run_id]
            last = parse_run(body[-1], seen_ns) if body else None
            page_is_older = (
                oldest is not None and last is not None and last.created_at is not None and (last.created_at < oldest)
            )
            if not wanted or len(body) < LIST_PAGE_SIZE or page_is_older:
                return


@dataclass(frozen=True, slots=True)
class _Absent:
    """Reconciliation proved that a create made nothing: it may be sent again."""


@dataclass(frozen=True, slots=True)
class _Unknown:
    """Reconciliation could not tell whether a create made runs: it must not be sent again."""

    why: str


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """When a batch is polled: ``interval`` at first, then a ``growth`` fraction of the batch's age, at most
    ``max_interval`` (long calls do not need a poll a second from their first second)."""

    interval_s: float
    max_interval_s: float
    growth: float = 0.1

    def next_interval(self, age_s: float) -> float:
        return min(self.max_interval_s, max(self.interval_s, age_s * self.growth))


class TestCallsTarget:
    """The test-calls API (or its simulator) at ``base_url``, driven with one pooled httpx client."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(
        self,
        base_url: str,
        api_key: str,
        requests: RequestLog,
        *,
        governor: Governor | None = None,
        submit_mode: str = "batch",
        poll_interval_s: float = 1.0,
        poll_max_interval_s: float | None = None,
        timeout_s: float = 10.0,
        max_connections: int = 256,
        clock: Callable[[], int] = time.perf_counter_ns,
        wall: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        inbox: CompletionInbox | None = None,
        webhook_fallback_s: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._requests = requests
        self._governor = governor if governor is not None else Governor(Limits())
        self._submit_mode = submit_mode
        self._polls = PollSchedule(poll_interval_s, max(poll_max_interval_s or poll_interval_s, poll_interval_s))
        self._clock = clock
        self._wall = wall
        # Keep-alive as large as each pool: with httpx's default of 20, connections churn above 20 in flight.
        self._client = ShardedClient(
            shards=HTTP_SHARDS,
            connections_per_shard=max(1, max_connections // HTTP_SHARDS),
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )
        self._lister = RunLister(self._get_json)
        # With an inbox, webhooks end the runs; a run still open ``webhook_fallback_s`` after its submission
        # is polled (None: never, every run waits for its webhook).
        self._inbox = inbox
        self._webhook_fallback_s = webhook_fallback_s
        self.late_polls = 0  # batches that had to fall back to polling
        # Run ids this target created recently: a reconciliation must never adopt one of them twice.
        self._known_runs: dict[str, float] = {}
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"TestCallsTarget({self.base_url!r}, api_key={mask_secret(self._api_key)!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self) -> None:
        """Health and key check before any load: ``/v1/healthz``, then one authenticated list request."""
        try:
            health = await self._client.get("/v1/healthz")
            if health.status_code != 200:
                raise TargetUnavailable(f"{self.base_url}/v1/healthz answered {health.status_code}, not 200")
            probe = await self._client.get("/v1/test-calls", params={"limit": 1})
        except httpx.TransportError as exc:
            raise TargetUnavailable(f"cannot reach {self.base_url}: {exc or type(exc).__name__}") from None
        if probe.status_code in FATAL_STATUSES:
            raise TargetUnavailable(FATAL_STATUSES[probe.status_code])

    # ------------------------------------------------------------------------------------------ requests

    def _now_s(self) -> float:
        return self._clock() / NS_PER_S

    async def _request(
        self, kind: RequestKind, purpose: str, method: str, path: str, *, retry: bool = True, **options: Any
    ) -> tuple[Decision, httpx.Response | None, int]:
        """One request through the governor, retried as it decides. Returns the last decision, the last
        response (None after a transport failure) and the monotonic ns at which the answer arrived."""
        attempt = 0
        while True:
            wait = self._governor.reserve(kind, self._now_s())
            if wait > 0:
                await anyio.sleep(wait)
            response: httpx.Response | None = None
            try:
                response = await self._client.request(method, path, **options)
                outcome: HttpOutcome | TransportFailure = HttpOutcome(response.status_code, response.headers)
            except httpx.TransportError as exc:
                outcome = transport_failure(exc)
            answered_ns = self._clock()
            decision = self._governor.after_attempt(
                kind, outcome, attempt=attempt, now=answered_ns / NS_PER_S, now_wall=self._wall(), retry=retry
            )
            label = _outcome(response.status_code) if response is not None else decision.cause
            self._requests.record_request(purpose, label)
            if decision.action != "retry" or not retry:
                return decision, response, answered_ns
            await anyio.sleep(decision.delay or 0.0)
            attempt += 1

    async def _get_json(
        self, purpose: str, path: str, params: dict[str, object] | None = None, *, retry: bool = False
    ) -> tuple[Any, int]:
        """A GET decoded; ``(None, t)`` on any failure. Polls are not retried (the next poll is their retry);
        a reconciliation is, since nothing may be sent again until it has an answer."""
        decision, response, answered_ns = await self._request("poll", purpose, "GET", path, params=params, retry=retry)
        if decision.action != "done" or response is None:
            return None, answered_ns
        try:
            return orjson.loads(response.content), answered_ns
        except orjson.JSONDecodeError:
            self._requests.record_request(purpose, "bad_response")
            return None, answered_ns

    # ------------------------------------------------------------------------------------------ submit

    def _run_fields(self, request: RunRequest) -> dict[str, object]:
        fields: dict[str, object] = {
            "target_type": request.target_type,
            "target_id": request.target_id,
            "direction": request.direction,
            "mode": request.mode,
            # The API refuses runs without it; the cost guard has made sure the user consented.
            "consent_to_charge": True,
        }
        if request.target_number:
            fields["target_number"] = request.target_number
        return fields

    def _order_body(self, order: BatchOrder) -> tuple[str, dict[str, object]]:
        if self._submit_mode == "single":
            return "/v1/test-calls", {**self._run_fields(order.request), "scenario_prompt": order.prompts[0]}
        return "/v1/test-call-batches", {
            **self._run_fields(order.request),
            "name": order.name,
            "run_count": len(order.prompts),
            "stagger_seconds": order.stagger_s,
            "scenario_prompts": list(order.prompts),
        }

    async def submit(self, order: BatchOrder) -> Submission:
        path, body = self._order_body(order)
        content = orjson.dumps(body)
        while True:
            sent_wall = self._wall()
            decision, response, _ = await self._request(
                "create", "submit", "POST", path, content=content, headers=_JSON
            )
            if decision.action == "done":
                assert response is not None
                try:
                    return self._remember(self._read_submission(order, response))
                except SubmitError:
                    pass  # a 2xx we cannot read: the runs exist but their ids are unknown, reconcile
            elif decision.action == "fail":
                raise self._failure(path, decision, response)
            found = await self._reconcile(order, sent_wall)
            if isinstance(found, Submission):
                self._requests.record_request("submit", "reconciled")
                return self._remember(found)
            if isinstance(found, _Unknown):
                raise SubmitError(decision.cause, f"POST {path} ended in {decision.cause} and {found.why}: not retried")
            delay = self._governor.note_reconcile_retry(self._now_s())
            if delay is None:
                raise SubmitError(decision.cause, f"POST {path} ended in {decision.cause}; the retry budget is spent")
            await anyio.sleep(delay)

    def _failure(self, path: str, decision: Decision, response: httpx.Response | None) -> SubmitError:
        if response is not None and response.status_code in FATAL_STATUSES:
            reason = FATAL_STATUSES[response.status_code]
            return SubmitError(f"http_{response.status_code}", f"{reason}: {_detail(response)}", fatal=True)
        status = f"answered {response.status_code}" if response is not None else f"failed ({decision.cause})"
        return SubmitError(decision.cause, f"POST {path} {status}")

    def _read_submission(self, order: BatchOrder, response: httpx.Response) -> Submission:
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SubmitError("bad_response", "the answer to a create is not JSON") from None
        if not isinstance(answer, dict):
            raise SubmitError("bad_response", "the answer to a create is not a JSON object")
        if self._submit_mode == "single":
            return Submission(batch_id=None, runs=(self._submitted_run(answer, 0),))
        return self._batch_submission(answer, len(order.prompts))

    def _batch_submission(self, answer: dict[str, Any], expected_runs: int) -> Submission:
        batch_id, run_ids = answer.get("id"), answer.get("run_ids")
        if not isinstance(batch_id, str | int) or not isinstance(run_ids, list) or len(run_ids) != expected_runs:
            raise SubmitError("bad_response", "the batch answer lacks an id or the right number of run_ids")
        created_at = parse_iso_or_none(answer.get("created_at"))
        total_cost = answer.get("estimated_cost_cents")
        per_run = total_cost / len(run_ids) if isinstance(total_cost, int | float) and run_ids else None
        runs = tuple(SubmittedRun(str(run_id), i, created_at, per_run) for i, run_id in enumerate(run_ids))
        return Submission(batch_id=str(batch_id), runs=runs)

    def _submitted_run(self, answer: dict[str, Any], index: int) -> SubmittedRun:
        run_id, cost = answer.get("id"), answer.get("estimated_cost_cents")
        if not isinstance(run_id, str | int) or isinstance(run_id, bool):
            raise SubmitError("bad_response", "the run answer has no id")
        return SubmittedRun(
            str(run_id),
            index,
            parse_iso_or_none(answer.get("created_at")),
            cost if isinstance(cost, int | float) else None,
        )

    def _remember(self, submission: Submission) -> Submission:
        now = self._wall()
        for run in submission.runs:
            self._known_runs[run.run_id] = now
        if len(self._known_runs) > KNOWN_RUNS_KEPT:
            horizon = now - RECONCILE_WINDOW_S * 10
            self._known_runs = {run_id: t for run_id, t in self._known_runs.items() if t >= horizon}
        return submission

    async def _reconcile(self, order: BatchOrder, sent_wall: float) -> Submission | _Absent | _Unknown:
        """Find out whether a create that ended without a readable answer made its runs."""
        if self._submit_mode == "single":
            return await self._reconcile_run(order, sent_wall)
        body, _ = await self._get_json(
            "reconcile", "/v1/test-call-batches", params={"limit": LIST_PAGE_SIZE}, retry=True
        )
        if not isinstance(body, list):
            return _Unknown("the batch list could not be read")
        matches = [item for item in body if isinstance(item, dict) and item.get("name") == order.name]
        if not matches:
            return _Absent()
        if len(matches) > 1:
            return _Unknown(f"{len(matches)} batches carry its name")
        try:
            return self._batch_submission(matches[0], len(order.prompts))
        except SubmitError:
            return _Unknown("its batch was found but could not be read")

    async def _reconcile_run(self, order: BatchOrder, sent_wall: float) -> Submission | _Absent | _Unknown:
        body, seen_ns = await self._get_json(
            "reconcile", "/v1/test-calls", params={"limit": LIST_PAGE_SIZE}, retry=True
        )
        if not isinstance(body, list):
            return _Unknown("the run list could not be read")
        request = order.request
        matches = []
        for item in body:
            view = parse_run(item, seen_ns)
            if view is None or view.run_id in self._known_runs or not isinstance(item, dict):
                continue
            if view.created_at is None or view.created_at < sent_wall - RECONCILE_WINDOW_S:
                continue
            if (item.get("target_type"), item.get("target_id"), item.get("scenario_prompt")) == (
                request.target_type,
                request.target_id,
                order.prompts[0],
            ):
                matches.append(SubmittedRun(view.run_id, 0, view.created_at, None))
        if not matches:
            return _Absent()
        if len(matches) > 1:
            return _Unknown(f"{len(matches)} runs match its target and prompt")
        return Submission(batch_id=None, runs=(matches[0],))

    # ------------------------------------------------------------------------------------------ follow

    async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        open_runs = {run.run_id: run.created_at for run in submission.runs}
        if self._inbox is None:
            await self._poll(submission, open_runs, on_end)
            return
        # Webhooks end the runs; polling starts only for runs whose event is late (or never, when off).
        all_ended = anyio.Event()

        def pushed(end: RunEnd) -> None:
            if open_runs.pop(end.run_id, MISSING) is not MISSING:
                on_end(end)
            if not open_runs:
                all_ended.set()

        for run in submission.runs:
            self._inbox.expect(run.run_id, pushed)
        try:
            async with anyio.create_task_group() as fallback:
                if self._webhook_fallback_s is not None:
                    fallback.start_soon(self._poll_late, submission, open_runs, on_end, all_ended)
                if open_runs:
                    await all_ended.wait()
                fallback.cancel_scope.cancel()
        finally:
            for run in submission.runs:
                self._inbox.forget(run.run_id)

    async def _poll_late(
        self,
        submission: Submission,
        open_runs: dict[str, float | None],
        on_end: Callable[[RunEnd], None],
        all_ended: anyio.Event,
    ) -> None:
        assert self._webhook_fallback_s is not None
        await anyio.sleep(self._webhook_fallback_s)
        if open_runs:
            self.late_polls += 1
            await self._poll(submission, open_runs, on_end)
        all_ended.set()

    async def _poll(
        self, submission: Submission, open_runs: dict[str, float | None], on_end: Callable[[RunEnd], None]
    ) -> None:
        """Poll until every run in ``open_runs`` has ended (removing them from it, whoever saw the end)."""
        started_ns = self._clock()
        # The first poll comes at a random point of the first interval: batches submitted together (after a
        # stall, say) must not poll in lockstep. The error bound stays one interval.
        first_offset_s = self._rng.uniform(0, self._polls.interval_s)
        next_poll_ns = started_ns + round(first_offset_s * NS_PER_S) - round(self._polls.interval_s * NS_PER_S)
        failures = 0
        while open_runs:
            # A fixed cadence, not a sleep after each poll: the time a poll takes must not stretch the
            # interval, or detection would lag by more than one interval.
            age_s = (next_poll_ns - started_ns) / NS_PER_S
            interval_s = self._polls.next_interval(age_s) + self._governor.backoff_delay(failures)
            next_poll_ns = max(next_poll_ns + round(interval_s * NS_PER_S), self._clock())
            await anyio.sleep(max((next_poll_ns - self._clock()) / NS_PER_S, MIN_SLEEP_S))
            if submission.batch_id is not None:
                ended = await self._batch_ended_count(submission.batch_id)
                failures = failures + 1 if ended is None else 0
                known_ended = len(submission.runs) - len(open_runs)
                if ended is None or ended <= known_ended:
                    continue  # nothing new: the list endpoint is not asked
            for view in (await self._lister.lookup(open_runs)).values():
                if view.ended and open_runs.pop(view.run_id, MISSING) is not MISSING:
                    on_end(view.as_end())

    async def fetch_grade(self, call_id: str) -> CallGraded | None:
        """The current grade of a call (``GET /v1/calls/{id}/grade``), or None when unreadable or pending."""
        body, _ = await self._get_json("grade", f"/v1/calls/{call_id}/grade")
        grade = parse_grade(call_id, body)
        if isinstance(grade, BadEvent):
            if body is not None:
                self._requests.record_request("grade", "bad_response")
            return None
        return grade if grade.score is not None else None

    async def _batch_ended_count(self, batch_id: str) -> int | None:
        body, _ = await self._get_json("poll_batch", f"/v1/test-call-batches/{batch_id}")
        if not isinstance(body, dict):
            return None
        counts = [body.get("completed_runs"), body.get("failed_runs")]
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            self._requests.record_request("poll_batch", "bad_response")
            return None
        return counts[0] + counts[1]


_JSON = {"Content-Type": "application/json"}
