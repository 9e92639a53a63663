"""The test-calls API as a target: submit batches (or single runs), follow every run to its end by polling.

Polling is two-tier because the API has no per-run GET and its batch detail carries counters, not runs:
each batch's follower polls ``GET /v1/test-call-batches/{id}`` (one cheap request for up to 20 runs) and,
only when the counters say that runs have ended, asks a shared ``RunLister`` which ones. The lister pages
through ``GET /v1/test-calls`` newest first, once for every follower waiting at that moment (single-flight),
so the list endpoint is read about once per poll interval however many batches are open.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson

from stressor.profile import RunRequest
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
from stressor.timestamps import NS_PER_S, parse_iso

LIST_PAGE_SIZE = 200  # the API's maximum
MIN_SLEEP_S = 0.001  # shorter sleeps spin under uvloop (engineering notes)
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


def classify_exception(exc: httpx.TransportError) -> str:
    """A stable outcome class for a transport failure."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "transport"


def _outcome(status: int) -> str:
    return "ok" if 200 <= status < 300 else f"http_{status}"


def _stamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


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
    error = item.get("error_message")
    return RunView(
        run_id=str(run_id),
        status=status,
        seen_ns=seen_ns,
        created_at=_stamp(item.get("created_at")),
        started_at=_stamp(item.get("started_at")),
        completed_at=_stamp(item.get("completed_at")),
        error_message=error if isinstance(error, str) else "",
    )


class RunLister:
    """Finds runs by id on the list endpoint, one scan for all callers waiting at that moment."""

    def __init__(self, get: Callable[..., Any], max_pages: int = 10) -> None:
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


class TestCallsTarget:
    """The test-calls API (or its simulator) at ``base_url``, driven with one pooled httpx client."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(
        self,
        base_url: str,
        api_key: str,
        requests: RequestLog,
        *,
        submit_mode: str = "batch",
        poll_interval_s: float = 1.0,
        timeout_s: float = 10.0,
        max_connections: int = 256,
        consent_to_charge: bool = True,
        clock: Callable[[], int] = time.perf_counter_ns,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._requests = requests
        self._submit_mode = submit_mode
        self._poll_interval_s = poll_interval_s
        self._consent = consent_to_charge
        self._clock = clock
        # Keep-alive as large as the pool: with the default 20, connections churn above 20 in flight.
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            limits=limits,
            transport=transport,
        )
        self._lister = RunLister(self._get_json)

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

    # ------------------------------------------------------------------------------------------ submit

    def _run_fields(self, request: RunRequest) -> dict[str, object]:
        fields: dict[str, object] = {
            "target_type": request.target_type,
            "target_id": request.target_id,
            "direction": request.direction,
            "mode": request.mode,
            "consent_to_charge": self._consent,
        }
        if request.target_number:
            fields["target_number"] = request.target_number
        return fields

    async def submit(self, order: BatchOrder) -> Submission:
        if self._submit_mode == "single":
            body = {**self._run_fields(order.request), "scenario_prompt": order.prompts[0]}
            answer = await self._post("/v1/test-calls", body)
            return Submission(batch_id=None, runs=(self._submitted_run(answer, 0),))
        body = {
            **self._run_fields(order.request),
            "name": order.name,
            "run_count": len(order.prompts),
            "stagger_seconds": order.stagger_s,
            "scenario_prompts": list(order.prompts),
        }
        answer = await self._post("/v1/test-call-batches", body)
        batch_id, run_ids = answer.get("id"), answer.get("run_ids")
        if not isinstance(batch_id, str | int) or not isinstance(run_ids, list) or len(run_ids) != len(order.prompts):
            raise SubmitError("bad_response", "the batch answer lacks an id or the right number of run_ids")
        created_at = _stamp(answer.get("created_at"))
        total_cost = answer.get("estimated_cost_cents")
        per_run = total_cost / len(run_ids) if isinstance(total_cost, int | float) and run_ids else None
        runs = tuple(SubmittedRun(str(run_id), i, created_at, per_run) for i, run_id in enumerate(run_ids))
        return Submission(batch_id=str(batch_id), runs=runs)

    def _submitted_run(self, answer: dict[str, Any], index: int) -> SubmittedRun:
        run_id, cost = answer.get("id"), answer.get("estimated_cost_cents")
        if not isinstance(run_id, str | int):
            raise SubmitError("bad_response", "the run answer has no id")
        return SubmittedRun(
            str(run_id),
            index,
            _stamp(answer.get("created_at")),
            cost if isinstance(cost, int | float) else None,
        )

    async def _post(self, path: str, body: dict[str, object]) -> dict[str, Any]:
        # Never retried here: after a timeout or a 5xx the run may exist, and a second POST bills twice.
        try:
            response = await self._client.post(path, content=orjson.dumps(body), headers=_JSON)
        except httpx.TransportError as exc:
            cause = classify_exception(exc)
            self._requests.record_request("submit", cause)
            raise SubmitError(cause, f"{cause} on POST {path}: {exc or type(exc).__name__}") from None
        self._requests.record_request("submit", _outcome(response.status_code))
        if response.status_code in FATAL_STATUSES:
            reason = FATAL_STATUSES[response.status_code]
            raise SubmitError(f"http_{response.status_code}", f"{reason}: {_detail(response)}", fatal=True)
        if not 200 <= response.status_code < 300:
            raise SubmitError(f"http_{response.status_code}", f"POST {path} answered {response.status_code}")
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SubmitError("bad_response", f"POST {path} answered {response.status_code} with non-JSON") from None
        if not isinstance(answer, dict):
            raise SubmitError("bad_response", f"POST {path} answered with JSON that is not an object")
        return answer

    # ------------------------------------------------------------------------------------------ follow

    async def _get_json(self, kind: str, path: str, params: dict[str, object] | None = None) -> tuple[Any, int]:
        """GET and decode; ``(None, t)`` on any failure (counted), since polls are simply tried again."""
        try:
            response = await self._client.get(path, params=params)
        except httpx.TransportError as exc:
            self._requests.record_request(kind, classify_exception(exc))
            return None, self._clock()
        seen_ns = self._clock()
        self._requests.record_request(kind, _outcome(response.status_code))
        if response.status_code != 200:
            return None, seen_ns
        try:
            return orjson.loads(response.content), seen_ns
        except orjson.JSONDecodeError:
            self._requests.record_request(kind, "bad_response")
            return None, seen_ns

    async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        open_runs = {run.run_id: run.created_at for run in submission.runs}
        interval_ns = round(self._poll_interval_s * NS_PER_S)
        next_poll_ns = self._clock() + interval_ns
        while open_runs:
            # A fixed cadence, not a sleep after each poll: the time a poll takes must not stretch the
            # interval, or detection would lag by more than one interval.
            await anyio.sleep(max((next_poll_ns - self._clock()) / NS_PER_S, MIN_SLEEP_S))
            next_poll_ns = max(next_poll_ns + interval_ns, self._clock())
            if submission.batch_id is not None:
                ended = await self._batch_ended_count(submission.batch_id)
                known_ended = len(submission.runs) - len(open_runs)
                if ended is None or ended <= known_ended:
                    continue  # nothing new: the list endpoint is not asked
            for view in self._ended((await self._lister.lookup(open_runs)).values()):
                del open_runs[view.run_id]
                on_end(
                    RunEnd(
                        run_id=view.run_id,
                        status=view.status,  # type: ignore[arg-type]
                        detected_ns=view.seen_ns,
                        started_at=view.started_at,
                        completed_at=view.completed_at,
                        error_message=view.error_message,
                    )
                )

    @staticmethod
    def _ended(views: Iterable[RunView]) -> list[RunView]:
        return [view for view in views if view.status in TERMINAL]

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
