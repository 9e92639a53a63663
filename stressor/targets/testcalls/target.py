"""The test-calls API as a target: submit batches (or single runs), follow every run to its end.

Runs are followed in the run list through a shared ``RunLister``; a run-creating POST is never sent twice
blindly: a create whose answer was lost is reconciled, and what cannot be settled is ``unknown``. See
docs/internals.md#test-calls-target and docs/servers.md.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import orjson

from stressor.clock import SYSTEM, Clock
from stressor.governor import Governor
from stressor.http.client import ShardedClient
from stressor.limits import Decision
from stressor.limits.decisions import TRANSPORT_CAUSES
from stressor.polling import SCAN_PAGE_SIZE, PollSchedule, scan_reach, within_reach
from stressor.profile import Limits, RunRequest
from stressor.scores import BadEvent, CallGraded, parse_grade
from stressor.secrets import mask_secret, redact
from stressor.targets.base import (
    BatchOrder,
    RequestLog,
    RunEnd,
    Submission,
    SubmitError,
    TargetUnavailable,
)
from stressor.targets.inbox import CompletionInbox
from stressor.targets.ledger import CreationLedger
from stressor.targets.server_clock import ClockOffset, ServerClock
from stressor.targets.testcalls.answers import (
    ERROR_MESSAGE_LIMIT,
    MISSING,
    Finding,
    Read,
    RunView,
    bad_shape,
    read_batch_poll,
    read_batch_submission,
    read_list,
    read_run_page,
    read_run_submission,
)
from stressor.targets.testcalls.calls import TRANSCRIPT_BODY_LIMIT, read_call_log, read_transcript
from stressor.targets.testcalls.failures import ANOMALIES, FATAL_STATUSES, why_unreachable
from stressor.targets.testcalls.follow import Follow, PollBatch
from stressor.targets.testcalls.lister import LIST_PAGE_SIZE, RunLister, skip_start
from stressor.targets.testcalls.listing import ListFacts, ListLearner, Order, name_matches
from stressor.targets.testcalls.preflight import Inspection, Preflight, probe_lists, rate_limit_headers
from stressor.targets.testcalls.reconcile import (
    Absent,
    Found,
    Reconciliation,
    Reorder,
    Unknown,
    Unproven,
    Unread,
    Wait,
    Walk,
)
from stressor.targets.testcalls.requests import LIST_BODY_LIMIT, ApiRequests, Failed, header_date, server_words
from stressor.timestamps import NS_PER_S

MIN_SLEEP_S = 0.001  # shorter sleeps spin under uvloop (engineering notes)
# How long a reconciliation may keep trying to read the lists (a 5xx burst, a stall) before it gives up and
# the create's runs are counted ``unknown``.
RECONCILE_DEADLINE_S = 60.0
RUN_TOKEN_BYTES = 3  # the random token in this target's batch names (6 hex digits)
KNOWN_RUNS_HORIZON_S = 50.0  # how long a created run id is remembered (a reconciliation never adopts it again)
WITNESSES = 1000  # this client's latest creates kept to show a reconciliation where to look
# Scans of the run list, each read back past a run's creation time, that must all miss it before it counts as
# ``unknown`` (one miss could be a list that lags its batch's counters).
MISSES_FOR_UNKNOWN_RUN = 3
CHECK_ATTEMPTS = 3  # tries of each preflight GET before the target counts as unreachable
HTTP_SHARDS = 8
logger = logging.getLogger("stressor.targets.testcalls")


def _seconds(value: float) -> int | float:
    """Whole seconds as an integer (``2``, not ``2.0``): the API documents ``stagger_seconds`` as 0..60 and an
    integer field would refuse ``2.0``; only a fraction (which the simulator takes) goes out as a float."""
    return int(value) if float(value).is_integer() else value


def _in_path(value: str) -> str:
    """An id from an answer as one URL path segment: ``/``, ``?``, ``#`` or controls cannot escape it."""
    return quote(value, safe="", errors="surrogatepass")


@dataclass(frozen=True, slots=True)
class _UnknownBatch:
    """A batch poll answered 404: the batch id the server gave is not one it knows."""


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
        clock: Clock = SYSTEM,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        inbox: CompletionInbox | None = None,
        webhook_fallback_s: float | None = None,
        reconcile_settle_s: float | None = None,
        reconcile_deadline_s: float = RECONCILE_DEADLINE_S,
        run_token: str | None = None,
        trust_env: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._requests = requests
        self._governor = governor if governor is not None else Governor(Limits())
        self._submit_mode = submit_mode
        self._polls = PollSchedule(poll_interval_s, max(poll_max_interval_s or poll_interval_s, poll_interval_s))
        self.clock = clock
        self._clock = clock.now_ns  # for SYSTEM, time.perf_counter_ns itself
        self._wall = clock.wall
        self._timeout_s = timeout_s
        # One pool of about max_connections (split into HTTP_SHARDS clients only over httpx's own transport).
        client = ShardedClient(
            shards=HTTP_SHARDS,
            connections_per_shard=max(1, max_connections // HTTP_SHARDS),
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            trust_env=trust_env,  # proxies from the environment; off for the embedded simulator (our own child)
        )
        self._api = ApiRequests(
            client,
            self.base_url,
            api_key,
            requests,
            self._governor,
            timeout_s=timeout_s,
            clock=clock.now_ns,
            wall=clock.wall,
        )
        self._created = CreationLedger()
        self._learner = ListLearner()
        self._lister = RunLister(
            self._get_run_page, page_size=SCAN_PAGE_SIZE, ledger=self._created, learner=self._learner
        )
        self.server_clock = ServerClock()
        self.preflight: Preflight | None = None
        # With an inbox, webhooks end the runs; a run still open ``webhook_fallback_s`` after its submission
        # is polled (None: never, every run waits for its webhook).
        self._inbox = inbox
        self._webhook_fallback_s = webhook_fallback_s
        self.late_polls = 0  # batches that had to fall back to polling
        self.unknown_runs = 0  # runs created and then no longer found in the run list (counted ``unknown``)
        # Run ids this target created recently: a reconciliation must never adopt one of them twice.
        # Remembered for KNOWN_RUNS_HORIZON_S, oldest first, so memory stays flat however long the run.
        self._known_runs: OrderedDict[str, float] = OrderedDict()
        # Run ids being followed now: a create answering one of them again would make two runs one.
        self._following: set[str] = set()
        # This client's latest creates (batch ids, or run ids when runs are created one by one), numbered in
        # the order their answers came: a reconciliation's witnesses (see stressor.targets.testcalls.reconcile).
        self._witnesses: OrderedDict[str, int] = OrderedDict()
        self._answered = 0
        # Runs of creates sent and not answered yet: the server may have made them, above every run the ledger
        # counts, so a scan looks that much deeper before it calls a run unreached.
        self._creating = 0
        self._run_floors: dict[str, int] = {}  # oldest-first run list: where each new run's search starts
        # Batches being polled whose runs the shared scan could follow: (the ledger's count when they were
        # created, their runs), oldest first; the scan's reach is chosen from them once a tick (``_reach``).
        self._scannable: dict[int, tuple[int, int]] = {}
        self._follows = 0  # numbers the entries of ``_scannable``
        # The reach as the ledger count above which a batch is within it: runs created since it was chosen sink
        # every batch alike, and the batches it took in stay in until it is chosen again.
        self._reach_floor = 0
        self._reach_due_ns: int | None = None  # when the reach is chosen again
        self._rng = rng if rng is not None else random.Random()  # each batch's phase of polls
        # A create that timed out may still be held by the server and be handled later: it is looked for only
        # after this delay (at least the whole-request deadline), and twice, before it may be sent again.
        self._settle_s = timeout_s * 1.1 if reconcile_settle_s is None else reconcile_settle_s
        self._reconcile_deadline_s = reconcile_deadline_s
        # Batch names repeat from one stressor run to the next: this target's own token, first in each name
        # (names may come back cut short), keeps a reconciliation from adopting another run's batch.
        self.run_token = run_token if run_token is not None else secrets.token_hex(RUN_TOKEN_BYTES)

    def __repr__(self) -> str:
        return f"TestCallsTarget({self.base_url!r}, api_key={mask_secret(self._api_key)!r})"

    @property
    def facts(self) -> ListFacts:
        """What the run list was seen to do so far."""
        return self._learner.facts

    def clock_offset(self) -> ClockOffset | None:
        """The server's clock minus this client's, as far as its stamps and Date headers tell."""
        return self.server_clock.estimate()

    def server_json(self) -> dict[str, object]:
        """What this target learned of the server where the docs are silent, for the results."""
        offset = self.clock_offset()
        return {
            "preflight": self.preflight.to_json() if self.preflight is not None else None,
            "run_list": self.facts.to_json(),
            "clock_offset": offset.to_json() if offset is not None else None,
            "runs_not_found": self.unknown_runs,
        }

    async def aclose(self) -> None:
        await self._api.client.aclose()

    # ------------------------------------------------------------------------------------------ check

    async def inspect(self) -> Inspection:
        """Health, key and lists, as ``stressor check`` shows them: ``/v1/healthz``, an authenticated list
        request, then a few reads of the lists (nothing billable). Never raises for what the server answers."""
        health = await self._check_request("/v1/healthz", None)
        if isinstance(health, Failed):
            return Inspection(unreachable=why_unreachable(health.error, self._timeout_s))
        if health.status_code != 200:
            return Inspection(health_status=health.status_code)
        probe = await self._check_request("/v1/test-calls", {"limit": 1})
        if isinstance(probe, Failed):
            return Inspection(unreachable=why_unreachable(probe.error, self._timeout_s))
        headers = rate_limit_headers(health.headers) | rate_limit_headers(probe.headers)
        if probe.status_code in FATAL_STATUSES:
            return Inspection(key_status=probe.status_code, rate_headers=tuple(sorted(headers)))
        self.preflight = await probe_lists(self._probe_page, self._learner)
        if self.preflight.run_length is not None:
            self._lister.length = self.preflight.run_length
        return Inspection(
            key_status=probe.status_code,
            preflight=self.preflight,
            clock=self.clock_offset(),
            rate_headers=tuple(sorted(headers)),
        )

    async def check(self) -> Preflight:
        """``inspect`` before any load. Raises TargetUnavailable with one sentence when the target cannot be
        used (unreachable, not healthy, the key refused, a run list its runs could not be followed in); notes
        on stderr what the run adapts to."""
        inspection = await self.inspect()
        if inspection.unreachable is not None:
            raise TargetUnavailable(f"cannot reach {self.base_url}: {inspection.unreachable}")
        if inspection.health_status is not None:
            raise TargetUnavailable(f"{self.base_url}/v1/healthz answered {inspection.health_status}, not 200")
        if inspection.key_status in FATAL_STATUSES:
            raise TargetUnavailable(FATAL_STATUSES[inspection.key_status])
        preflight = inspection.preflight
        assert preflight is not None  # every answer but a fatal one goes on to the lists
        refusal = preflight.refusal()
        if refusal is not None:
            raise TargetUnavailable(f"{self.base_url}: {refusal}")
        for line in preflight.adaptations():
            logger.warning("stressor: %s", line)
        return preflight

    async def _check_request(self, path: str, params: dict[str, object] | None) -> httpx.Response | Failed:
        """A GET of the preflight, tried again after a transport failure or a 5xx (it changes nothing)."""
        for attempt in range(CHECK_ATTEMPTS):
            if attempt:
                await anyio.sleep(max(self._governor.backoff_delay(attempt), MIN_SLEEP_S))
            sent_wall = self._wall()
            answer = await self._api.send("GET", path, {"params": params} if params else {})
            if isinstance(answer, Failed):
                self._requests.record_request("check", answer.label or TRANSPORT_CAUSES[answer.failure])
            else:
                self._requests.record_request("check", "ok" if answer.is_success else f"http_{answer.status_code}")
                if answer.status_code < 500:
                    break
        if isinstance(answer, Failed):
            return answer
        if (date := header_date(answer)) is not None:
            self.server_clock.observe_date(sent_wall, self._wall(), date)
        return answer

    async def _probe_page(self, path: str, limit: int, offset: int) -> list[Any] | None:
        body, _ = await self._api.get_json(
            "check", path, {"limit": limit, "offset": offset}, read=read_list, limit=LIST_BODY_LIMIT, retry=True
        )
        return body

    async def _get_run_page(
        self, purpose: str, path: str, params: dict[str, object] | None = None
    ) -> tuple[list[Any] | None, int]:
        """A page of the run list, for the lister."""
        return await self._api.get_json(purpose, path, params, read=read_run_page, limit=LIST_BODY_LIMIT)

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

    def batch_name(self, order: BatchOrder) -> str:
        """The name this target gives the order's batch: what tells it apart first (this target's token and
        the order's number), then the engine's name, so that a name cut short still tells it apart."""
        return f"#{order.seq}~{self.run_token} {order.name}"

    def _order_body(self, order: BatchOrder) -> tuple[str, dict[str, object]]:
        if self._submit_mode == "single":
            return "/v1/test-calls", {**self._run_fields(order.request), "scenario_prompt": order.prompts[0]}
        return "/v1/test-call-batches", {
            **self._run_fields(order.request),
            "name": self.batch_name(order),
            "run_count": len(order.prompts),
            "stagger_seconds": _seconds(order.stagger_s),
            "scenario_prompts": list(order.prompts),
        }

    async def submit(self, order: BatchOrder) -> Submission:
        path, body = self._order_body(order)
        content = orjson.dumps(body)
        # Every attempt of this order is looked for from the first one on (a batch an earlier attempt created
        # after its listings had shown nothing is still this order's), beyond the creates answered before it.
        witnessed = self._answered
        floor = self._lister.length or 0  # oldest first: this order's runs lie at or after the list's length now
        self._creating += len(order.prompts)
        try:
            return await self._submit(order, path, content, witnessed, floor)
        finally:
            self._creating -= len(order.prompts)

    async def _submit(self, order: BatchOrder, path: str, content: bytes, witnessed: int, floor: int) -> Submission:
        while True:
            reply = await self._api.request(
                "create", "submit", "POST", path, read=self._submission_reader(order), content=content, headers=_JSON
            )
            decision = reply.decision
            # the errored runs' cause says what went wrong as precisely as the request's count does
            cause = reply.label if reply.label in ANOMALIES else decision.cause
            if decision.action == "done":
                if reply.value is not None:
                    created = reply.value.runs[0].created_at if reply.value.runs else None
                    if created is not None:
                        self.server_clock.observe_stamp(reply.sent_wall, reply.answered_wall, created)
                    return self._remember(reply.value, floor)
                # a 2xx we cannot read: the runs exist but their ids are unknown, reconcile
            elif decision.action == "fail":
                raise self._failure(path, decision, reply.response, cause)
            # Without an answer (a timeout, a reset) or with a 5xx (a gateway's 504 while the API goes on),
            # the server may still hold the request and create the runs later; a 2xx was handled in full.
            found = await self._reconcile(order, witnessed, in_doubt=decision.action != "done")
            if isinstance(found, Submission):
                self._requests.record_request("submit", "reconciled")
                return self._remember(found, floor)
            if isinstance(found, Unknown):
                raise SubmitError(
                    "unknown", f"POST {path} ended in {cause} and {found.why}: not sent again, its runs may exist"
                )
            delay = self._governor.note_reconcile_retry(self._api.now_s())
            if delay is None:
                raise SubmitError(cause, f"POST {path} ended in {cause}; the retry budget is spent")
            await anyio.sleep(delay)

    def _failure(self, path: str, decision: Decision, response: httpx.Response | None, cause: str) -> SubmitError:
        if response is not None and response.status_code in FATAL_STATUSES:
            reason = FATAL_STATUSES[response.status_code]
            detail = server_words(response, self._api_key)
            return SubmitError(f"http_{response.status_code}", f"{reason}: {detail}", fatal=True)
        if response is not None:
            return SubmitError(decision.cause, f"POST {path} answered {response.status_code}")
        return SubmitError(cause, f"POST {path} failed ({cause})")

    def _submission_reader(self, order: BatchOrder) -> Callable[[Any], Read[Submission]]:
        """How the answer to this order's create is read: the runs it made, with ids not seen before."""

        def read(answer: Any) -> Read[Submission]:
            try:
                if self._submit_mode == "single":
                    submission = Submission(batch_id=None, runs=(read_run_submission(answer),))
                else:
                    submission = read_batch_submission(answer, len(order.prompts))
                    self._learner.saw_name(self.batch_name(order), answer.get("name"))
            except SubmitError as bad:
                return Read(None, bad_shape(bad.message))
            reused = [run.run_id for run in submission.runs if self._is_known(run.run_id)]
            if reused:
                # a run id already followed for another order: the two could not be told apart
                return Read(None, bad_shape(f"run id {reused[0]!r} was already given to an earlier create"))
            return Read(submission)

        return read

    def _is_known(self, run_id: str) -> bool:
        return run_id in self._known_runs or run_id in self._following

    def _remember(self, submission: Submission, floor: int) -> Submission:
        now = self._wall()
        for run in submission.runs:
            self._known_runs[run.run_id] = now
            self._run_floors[run.run_id] = floor
        for created_at, runs in Counter(run.created_at for run in submission.runs).items():
            self._created.add(created_at, runs)  # a batch's runs share their creation time: one entry
        # insertion order is time order: forget from the oldest end (OrderedDict pops it in O(1))
        horizon = now - KNOWN_RUNS_HORIZON_S
        while self._known_runs and next(iter(self._known_runs.values())) < horizon:
            self._known_runs.popitem(last=False)
        witness = submission.batch_id if submission.batch_id is not None else submission.runs[0].run_id
        self._answered += 1
        self._witnesses[witness] = self._answered
        if len(self._witnesses) > WITNESSES:
            self._witnesses.popitem(last=False)
        return submission

    # ------------------------------------------------------------------------------------------ reconcile

    async def _reconcile(
        self, order: BatchOrder, witnessed: int, *, in_doubt: bool = True
    ) -> Submission | Absent | Unknown:
        """Find out whether a create that ended without a readable answer made its runs: the lists are read as
        ``Reconciliation`` says (settle delays, listings, backoff, deadline), each time by ``_look_for``. The
        answer is never a guess, and never a second POST."""
        loop = Reconciliation(
            in_doubt=in_doubt,
            settle_s=self._settle_s,
            deadline_s=self._reconcile_deadline_s,
            now=self._api.now_s(),
            backoff=self._governor.backoff_delay,
        )
        while True:
            step = loop.next(self._api.now_s())
            if isinstance(step, Unknown):
                return step
            if isinstance(step, Wait):
                await anyio.sleep(step.seconds)
                continue
            found = await self._look_for(order, witnessed)
            if not isinstance(found, Absent | Unproven | Unread):
                return found  # found, or settled as unknown
            verdict = loop.looked(found)
            if verdict is not None:
                return verdict

    async def _look_for(self, order: BatchOrder, witnessed: int) -> Submission | Absent | Unknown | Unproven | Unread:
        """One listing, looking for the lost create beyond what existed before it was sent."""
        preflight = self.preflight
        if self._submit_mode == "single":
            request = order.request
            wanted = (request.target_type, request.target_id, order.prompts[0])

            def like_it(item: dict[str, Any]) -> bool | None:
                # a run has no name: one like it cannot be proven this client's, only its absence can
                same = (item.get("target_type"), item.get("target_id"), item.get("scenario_prompt")) == wanted
                return None if same else False

            before = (preflight.run_anchors, preflight.run_length) if preflight else (frozenset(), None)
            walked = await self._walk("/v1/test-calls", "the run list", witnessed, like_it, *before)
            if isinstance(walked, Found):  # cannot happen: no run is ever sure
                return Unknown("a run like it is listed")
            return walked
        name = self.batch_name(order)
        prompts = list(order.prompts)

        def candidate(item: dict[str, Any]) -> bool | None:
            if any(self._is_known(str(run)) for run in item.get("run_ids") or () if isinstance(run, str | int)):
                return False
            named = name_matches(self.facts, name, item.get("name"))
            if named is not None:
                return named
            shown = item.get("scenario_prompts")
            alike = item.get("run_count") in (None, len(prompts)) and (shown is None or shown == prompts)
            return None if alike else False

        before = (preflight.batch_anchors, preflight.batch_length) if preflight else (frozenset(), None)
        walked = await self._walk("/v1/test-call-batches", "the batch list", witnessed, candidate, *before)
        if not isinstance(walked, Found):
            return walked
        try:
            found = read_batch_submission(walked.item, len(order.prompts))
        except SubmitError:
            return Unknown("its batch was found but could not be read")
        if any(self._is_known(run.run_id) for run in found.runs):
            return Unknown("its batch was found with run ids already given to an earlier create")
        return found

    async def _walk(
        self,
        path: str,
        what: str,
        witnessed: int,
        candidate: Callable[[dict[str, Any]], bool | None],
        listed_before: frozenset[str],
        length_before: int | None,
    ) -> Found | Absent | Unknown | Unproven | Unread:
        """Walk a list (in the order it was seen to have; once more if a page shows the other order). Anchors:
        this client's creates answered before the lost one was sent, and what the preflight listed."""
        if self.facts.offset == "ignored":
            return Unknown(f"{what} ignores `offset`, so it cannot be read back to the create")
        anchors = listed_before.union(key for key, n in self._witnesses.items() if n <= witnessed)
        order: Order = self.facts.order if self.facts.order != "unknown" else "newest_first"
        for _ in range(2):
            walk = Walk(
                order=order,
                anchors=anchors,
                own=self._witnesses,
                candidate=candidate,
                open_end=length_before is not None,
                start=length_before or 0,
                what=what,
            )
            while (offset := walk.next_offset()) is not None:
                params = {"limit": LIST_PAGE_SIZE, "offset": offset}
                body, _ = await self._api.get_json(
                    "reconcile", path, params, read=read_list, limit=LIST_BODY_LIMIT, retry=True
                )
                if body is None:
                    return Unread(f"{what} could not be read")
                walk.feed(body)
            verdict = walk.verdict
            assert verdict is not None
            if not isinstance(verdict, Reorder):
                return verdict
            self._learner.saw_order(verdict.order)
            order = verdict.order
        return Unknown(f"{what} showed its pages in both orders")

    # ------------------------------------------------------------------------------------------ follow

    async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        run_ids = [run.run_id for run in submission.runs]
        self._following.update(run_ids)
        try:
            await self._follow(submission, on_end)
        finally:
            self._following.difference_update(run_ids)

    async def _follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        open_runs = {run.run_id: run.created_at for run in submission.runs}
        mark = self._created.total  # how deep the runs will sink in the list: what this client creates later
        # Oldest first, where the search for each run starts: its place once seen, before that the list's
        # length when its create was sent.
        floors = {run.run_id: self._run_floors.pop(run.run_id, 0) for run in submission.runs}
        if self._inbox is None:
            await self._poll(submission, open_runs, on_end, mark, floors)
            return
        # Webhooks end the runs; polling starts only for runs whose event is late (or never, when off).
        all_ended = anyio.Event()

        def pushed(end: RunEnd) -> None:
            if open_runs.pop(end.run_id, MISSING) is not MISSING:
                on_end(self._masked(end))
            if not open_runs:
                all_ended.set()

        for run in submission.runs:
            self._inbox.expect(run.run_id, pushed)
        try:
            async with anyio.create_task_group() as fallback:
                if self._webhook_fallback_s is not None:
                    fallback.start_soon(self._poll_late, submission, open_runs, on_end, all_ended, mark, floors)
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
        mark: int,
        floors: dict[str, int],
    ) -> None:
        assert self._webhook_fallback_s is not None
        await anyio.sleep(self._webhook_fallback_s)
        if open_runs:
            self.late_polls += 1
            await self._poll(submission, open_runs, on_end, mark, floors)
        all_ended.set()

    async def _poll(
        self,
        submission: Submission,
        open_runs: dict[str, float | None],
        on_end: Callable[[RunEnd], None],
        mark: int,
        floors: dict[str, int],
    ) -> None:
        """Poll until every run in ``open_runs`` has ended (removing them from it, whoever saw the end), when
        and how ``Follow`` says: within the shared scan's reach, on the scan's tick; deeper, by the batch's own
        counters at its own random phase (batches submitted together, after a stall say, must not poll in
        lockstep), asking the list only when they moved. Either way a run's end is seen within one interval and
        the scan's own time (which grows once scans queue, at high run rates: benchmarks/README.md)."""
        size = len(submission.runs)
        token = self._follows
        self._follows += 1
        if None not in open_runs.values():  # a scan could not tell where to stop looking for the others
            self._scannable[token] = (mark, size)
        try:
            await self._poll_batch(submission, open_runs, on_end, mark, floors)
        finally:
            self._scannable.pop(token, None)

    async def _poll_batch(
        self,
        submission: Submission,
        open_runs: dict[str, float | None],
        on_end: Callable[[RunEnd], None],
        mark: int,
        floors: dict[str, int],
    ) -> None:
        size = len(submission.runs)
        reach = self._reach()
        near = self._near_top(open_runs, mark, size, reach)
        schedule = Follow(
            self._polls,
            started_ns=self._clock(),
            near=near,
            first_offset_s=0.0 if near else self._rng.uniform(0, self._polls.interval_s),
            batch_known=submission.batch_id is not None,
            backoff=self._governor.backoff_delay,
        )
        batch_id = submission.batch_id  # None once the server has said it does not know the batch
        run_ids = tuple(run.run_id for run in submission.runs)
        misses: dict[str, int] = {}  # complete scans in a row that did not find a run
        while open_runs:
            next_poll_ns = schedule.next_poll_ns(self._clock())
            await anyio.sleep(max((next_poll_ns - self._clock()) / NS_PER_S, MIN_SLEEP_S))
            reach = self._reach()
            step = schedule.woke(self._near_top(open_runs, mark, size, reach))
            if isinstance(step, PollBatch):
                assert batch_id is not None
                ended = await self._batch_ended_count(batch_id, run_ids)
                if isinstance(ended, _UnknownBatch):
                    batch_id = None
                    step = schedule.batch_unknown()
                else:
                    scan = schedule.counted(ended, size - len(open_runs))
                    if scan is None:
                        continue
                    step = scan
            # its runs lie at least this deep: below those this client created after them
            depth = self._created.total - mark + size
            # the reach counts runs from the newest end: an oldest-first list is read from each run's place
            newest_first = self.facts.order != "oldest_first"
            below = round(reach * self._lister.spread) + self._creating  # in list places
            within = within_reach(below) if step.near and newest_first else None
            seen = await self._lister.lookup_all(open_runs, within=within, depth=depth, floors=floors)
            floors.update(seen.places)
            for view in seen.found.values():
                if view.ended and open_runs.pop(view.run_id, MISSING) is not MISSING:
                    on_end(self._masked(view.as_end()))
            # A list that ignores ``offset`` shows one page: a run below it can never be reached again.
            unreachable = seen.unreached if self.facts.offset == "ignored" else frozenset()
            for run_id in self._note_missing(misses, seen.found, seen.missing | unreachable):
                if open_runs.pop(run_id, MISSING) is not MISSING:
                    on_end(RunEnd(run_id, "unknown", self._clock(), None, None, "run_not_found"))
            schedule.scanned(unreached=bool(seen.unreached))
            del seen  # not held while the batch sleeps: at 10,000 runs in flight, views of all of them

    def _reach(self) -> int:
        """How deep the shared scan reads this tick (runs from the list's top, as the ledger counts): chosen once
        a tick from the batches being polled, by what costs fewer requests (``stressor.polling.scan_reach``)."""
        now = self._clock()
        total = self._created.total
        if self._reach_due_ns is None or now >= self._reach_due_ns:
            bottoms = [total - mark + size for mark, size in self._scannable.values()]
            # the scan starts below the runs created after the newest of them (the lister's own rule)
            newest = min(((total - mark) for mark, _ in self._scannable.values()), default=0)
            # pages hold fewer of this client's runs where other clients' runs lie between them
            page = max(1, int(self._lister.page_items / self._lister.spread))
            self._reach_floor = total - scan_reach(bottoms, page, skip_start(newest))
            self._reach_due_ns = now + round(self._polls.interval_s * NS_PER_S) // 2
        return total - self._reach_floor

    def _near_top(self, open_runs: Mapping[str, float | None], mark: int, size: int, reach: int) -> bool:
        """Whether these runs are within the shared scan's reach this tick: their batch's deepest run lies no
        deeper than ``reach`` (runs this client created since ``mark``, its ledger's count when they were
        created, and the batch's own). Other clients' runs may sink them deeper: a scan that does not reach
        them says so."""
        if self.facts.order == "oldest_first" or self.facts.offset == "ignored":
            return True  # runs keep their place, or only the first page can be read: the shared scan it is
        if None in open_runs.values():
            return False  # a scan could not tell where to stop looking for them
        return self._created.total - mark + size <= reach

    def _note_missing(self, misses: dict[str, int], found: Mapping[str, RunView], missing: frozenset[str]) -> list[str]:
        """The runs that ``MISSES_FOR_UNKNOWN_RUN`` complete scans in a row have missed: lost, ``unknown``."""
        for run_id in found:
            misses.pop(run_id, None)
        lost = []
        for run_id in missing:
            misses[run_id] = misses.get(run_id, 0) + 1
            if misses[run_id] == MISSES_FOR_UNKNOWN_RUN:
                self.unknown_runs += 1
                self._api.note(Finding("unknown_run", f"run id {run_id!r}"), "GET", "/v1/test-calls")
                lost.append(run_id)
        return lost

    def _masked(self, end: RunEnd) -> RunEnd:
        """The end with the key masked in its server-written ``error_message``, which goes into the records,
        the runs log and the summary (a server may echo the Authorization header it got)."""
        if not end.error_message:
            return end
        masked = redact(end.error_message, self._api_key)[:ERROR_MESSAGE_LIMIT]  # masked whole, then cut
        return end if masked == end.error_message else replace(end, error_message=masked)

    async def fetch_grade(self, call_id: str) -> CallGraded | None:
        """The current grade of a call (``GET /v1/calls/{id}/grade``), or None when unreadable or pending."""

        def read(body: Any) -> Read[CallGraded]:
            grade = parse_grade(call_id, body)
            return Read(None, bad_shape(grade.message)) if isinstance(grade, BadEvent) else Read(grade)

        grade, _ = await self._api.get_json("grade", f"/v1/calls/{_in_path(call_id)}/grade", read=read)
        return grade if grade is not None and grade.score is not None else None

    async def fetch_call_log(self, call_id: str) -> tuple[dict[str, Any] | None, str]:
        """A call's log (``GET /v1/calls/{id}``): its documented fields (``calls.CALL_LOG_FIELDS``), or None when
        no usable answer came; and the class the request was counted under (``ok``, ``http_404``...). A GET:
        retried as the governor says, never anything billed."""
        reply = await self._api.request(
            "poll", "call_log", "GET", f"/v1/calls/{_in_path(call_id)}", read=lambda body: read_call_log(body, call_id)
        )
        return reply.value, reply.label

    async def fetch_transcript(self, call_id: str) -> tuple[list[dict[str, Any]] | None, str]:
        """A call's transcript turns (``GET /v1/calls/{id}/transcript``), or None; and the class counted."""
        reply = await self._api.request(
            "poll",
            "transcript",
            "GET",
            f"/v1/calls/{_in_path(call_id)}/transcript",
            read=read_transcript,
            limit=TRANSCRIPT_BODY_LIMIT,
        )
        return reply.value, reply.label

    async def _batch_ended_count(self, batch_id: str, run_ids: tuple[str, ...]) -> int | _UnknownBatch | None:
        """How many of the batch's runs have ended; None when the poll failed or could not be read."""
        path = f"/v1/test-call-batches/{_in_path(batch_id)}"
        reply = await self._api.request(
            "poll",
            "poll_batch",
            "GET",
            path,
            read=lambda body: read_batch_poll(body, run_ids),
            retry=False,
            status_labels=_UNKNOWN_BATCH,  # counted under the class its log line names
        )
        if reply.response is not None and reply.response.status_code == 404:
            self._api.note(Finding("unknown_batch", f"batch id {batch_id!r}"), "GET", path)
            return _UnknownBatch()
        return reply.value


_JSON = {"Content-Type": "application/json"}
_UNKNOWN_BATCH: Mapping[int, str] = {404: "unknown_batch"}
