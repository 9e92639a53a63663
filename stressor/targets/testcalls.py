"""The test-calls API as a target: submit batches (or single runs), follow every run to its end by polling.

The API has no per-run GET, and its batch detail carries counters, not runs. So runs are followed in the
run list, ``GET /v1/test-calls``, newest first, by a shared ``RunLister`` that reads it once for every
follower waiting at that moment (single-flight). Followers poll on one shared tick, so each tick costs one
scan of the top of the list, however many batches are open: at 150 batches a second that is a few pages a
tick instead of a request per batch. A batch whose runs have sunk deeper than ``NEAR_TOP_RUNS`` (this client
created that many runs after them, or a scan did not reach them) is polled on its own instead:
``GET /v1/test-call-batches/{id}`` (one cheap request for up to 20 runs), and only when its counters say that
runs have ended does it ask the lister which ones.

Every request goes through the run's ``Governor`` (client-side rates, the server's Retry-After and rate-limit
headers, backoff, breaker). A run-creating POST is never sent twice blindly: it is retried only when it
provably created nothing (429/503, no connection), and after an answer that leaves it open (a timeout, a
reset, a 5xx, an unreadable 2xx) the target first *reconciles*: it looks for the batch by its unique name (with
this target's random run token) and creation time, or for the run by target, prompt and time, paging back to
the time of the request, and adopts what it finds. A request the server may still hold (no answer, a 5xx) is
looked for only after a settle delay, and only two listings a settle delay apart that both lack it prove its
absence, which alone allows a retry; anything unsettled after ``reconcile_deadline_s`` is ``unknown``.

Answers are not trusted to be well formed. Every request is counted once in ``requests`` under one outcome:
``ok``, ``http_<status>`` (``unknown_batch`` for a batch poll answered 404), a transport failure (``connect``,
``dns``, ``tls``, ``timeout``, ``reset``, ``protocol``, ``write``), or what was wrong with a 2xx answer:
``too_large`` (over ``BODY_LIMIT``, ``LIST_BODY_LIMIT`` for list pages, or a head over WireTransport's limit),
``cut_off`` (the body ended early), ``bad_response`` (not JSON, or undecodable), ``bad_shape`` (JSON of the
wrong shape), ``unknown_status`` (a status the API does not define: the run is still followed) or
``run_ids_changed`` (a batch poll whose ``run_ids`` differ from the batch's: only its counters are used).
The first time each of these happens, one line goes to the ``stressor`` logger (stderr by default). A whole
request, answer included, must end within ``timeout_s``: httpx's and aiohttp's read timeouts apply to each
read, so a server trickling a byte at a time would otherwise hold a request for ever.
"""

from __future__ import annotations

import logging
import random
import secrets
import socket
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import anyio
import httpx
import orjson

from stressor.governor import Governor, RequestKind
from stressor.limits import Decision, HttpOutcome, TransportFailure, classify_attempt
from stressor.profile import Limits, RunRequest
from stressor.secrets import mask_secret, redact
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
from stressor.targets.ledger import CreationLedger
from stressor.targets.wire import HEAD_TOO_LARGE
from stressor.timestamps import NS_PER_S, parse_iso_or_none
from stressor.webhooks.events import BadEvent, CallGraded, parse_grade

LIST_PAGE_SIZE = 200  # the API's maximum
# Runs per page when the lister looks for runs that ended. A page of 200 runs (~180 KiB) took ~1.2 ms to decode
# in one step of the event loop, delaying any batch due meanwhile; the runs looked for are the newest ones.
SCAN_PAGE_SIZE = 100
MAX_DATED_PAGES = 100  # how deep a scan for runs of known creation times may page (see RunLister)
SKIP_MARGIN_RUNS = 20  # runs (a batch) a scan starts above the depth the ledger gives, for ties and late notes
# How deep in the run list a batch's runs may sit and still be followed by the shared scan of the list's top
# (every tick reads down to the deepest of them); deeper ones are polled batch by batch. 1,000 runs are 10
# pages of 100, about what the ~75 batch polls of a tick at 300 batches a second cost (benchmarks/README.md).
NEAR_TOP_RUNS = 1000
# List pages read at once. Their answers arrive together and are decoded back to back (~0.15 ms a page of 100,
# benchmarks/overheads.py, then the runs looked for are parsed): ten at once put start lateness p99 at 5 ms at
# 300 batches/s, three at 1.7 ms.
PAGES_AT_ONCE = 3
SCAN_GATHER_S = 0.002  # a scan waits this long for the followers of its tick (see RunLister._scan)
MIN_SLEEP_S = 0.001  # shorter sleeps spin under uvloop (engineering notes)
RECONCILE_WINDOW_S = 5.0  # a reconciled run or batch must have been created at most this long before the POST
# How long a reconciliation may keep trying to read the lists (a 5xx burst, a stall) before it gives up and
# the create's runs are counted ``unknown``: giving up in half a second counted existing, billed runs errored.
RECONCILE_DEADLINE_S = 60.0
RECONCILE_CHECKS = 2  # listings, a settle delay apart, that must all lack a create in doubt before it is resent
RECONCILE_MAX_PAGES = 50  # pages of a list read back to the time of the create, at most
RUN_TOKEN_BYTES = 3  # the random token in this target's batch names (6 hex digits)
KNOWN_RUNS_HORIZON_S = RECONCILE_WINDOW_S * 10  # how long a created run id is remembered
# Scans of the run list, each read back past a run's creation time, that must all miss it before it counts as
# ``unknown_run`` (one miss could be a list that lags its batch's counters).
MISSES_FOR_UNKNOWN_RUN = 3
HTTP_SHARDS = 8
MISSING = object()
TERMINAL = ("completed", "failed")
RUN_STATUSES = frozenset({"queued", "in_progress", *TERMINAL})
BATCH_STATUSES = frozenset({"pending", "in_progress", "completed", "failed"})
BODY_LIMIT = 1024 * 1024  # bytes of an answer that are used; the API's objects are a few KiB
LIST_BODY_LIMIT = 8 * 1024 * 1024  # a page of 200 runs is ~200 KiB: 40 times that is not a list page
MAX_ID_LENGTH = 256  # an id longer than this is not one (and would not fit in a URL path for long)
ERROR_MESSAGE_LIMIT = 1000  # characters of a run's error_message kept in its record
DEADLINE_SLACK = 1.1  # a whole request may take this times the request timeout
URL_CACHE_SIZE = 256  # absolute URLs kept parsed (list pages, the batches being polled); bounded so memory stays flat
MAX_BODY_EXTENSION = "max_body_bytes"  # the request extension that tells the transport the body limit
logger = logging.getLogger(__name__)
# What each class of bad answer means, for the one line logged the first time it happens.
ANOMALIES: Mapping[str, str] = {
    "bad_response": "answered a body that is not JSON, or not decodable",
    "bad_shape": "answered JSON of an unexpected shape",
    "unknown_status": "answered a status the API does not define; such runs are still followed",
    "run_ids_changed": "answered run_ids that differ from the batch's own; only its counters are used",
    "unknown_batch": "answered 404 for a batch stressor created; its runs are looked for in the run list instead",
    "unknown_run": "left out of its run list a run it created (read back past its creation time); it stays open",
    "too_large": "answered a body (or a head) over the size limit; it was not used",
    "cut_off": "sent an answer whose body was cut off before its end",
    "timeout": "gave no complete answer within the request timeout",
    "reset": "reset the connection",
    "protocol": "closed the connection without a complete answer, or answered something that is not HTTP",
    "write": "closed the connection while the request was being sent",
    "connect": "could not be connected to (refused or unreachable)",
    "dns": "could not be found: its host name did not resolve (DNS)",
    "tls": "failed the TLS handshake, or its certificate was not accepted",
    "invalid_url": "could not be asked: the URL is not valid",
}
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


_CUT_OFF_WORDS = ("complete message body", "payload is not completed")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones it was raised from (or while handling), innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def body_cut_off(exc: httpx.TransportError) -> bool:
    """Whether the answer's head arrived and its body ended early (httpx: "peer closed connection without
    sending complete message body"; over aiohttp: "Response payload is not completed")."""
    if not isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return False
    return any(word in str(cause) for cause in _causes(exc) for word in _CUT_OFF_WORDS)


def failure_label(exc: httpx.TransportError) -> str | None:
    """The class a transport failure is counted under when it is more precise than the governor's cause:
    ``cut_off`` (the body ended early), ``dns`` (the name did not resolve), ``tls`` (the handshake or the
    certificate failed); None for the rest."""
    if body_cut_off(exc):
        return "cut_off"
    if isinstance(exc, httpx.RemoteProtocolError) and HEAD_TOO_LARGE in str(exc):
        return "too_large"  # an answer head over WireTransport's limit: dropped, not read to the deadline
    if isinstance(exc, httpx.ConnectError):
        for cause in _causes(exc):
            if isinstance(cause, socket.gaierror):
                return "dns"
            if isinstance(cause, ssl.SSLError):
                return "tls"
    return None


def why_unreachable(exc: BaseException | None, timeout_s: float) -> str:
    """The reason a target could not be reached, in words a user can act on (no trailing period)."""
    if exc is None or isinstance(exc, httpx.TimeoutException):
        return f"no complete answer within the request timeout ({timeout_s:g} s)"
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return f"its host name does not resolve (DNS: {cause.strerror or cause})"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"its TLS certificate was not accepted ({cause.verify_message or cause.reason or cause})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or cause}); does this port speak HTTPS?"
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused (is anything listening on that port?)"
    return str(exc) or type(exc).__name__


def _seconds(value: float) -> int | float:
    """Whole seconds as an integer (``2``, not ``2.0``): the API documents ``stagger_seconds`` as 0..60 and an
    integer field would refuse ``2.0``; only a fraction (which the simulator takes) goes out as a float."""
    return int(value) if float(value).is_integer() else value


def _outcome(status: int) -> str:
    return "ok" if 200 <= status < 300 else f"http_{status}"


def _detail(response: httpx.Response, *secrets: str) -> str:
    """The server's own words about an error, short, with any secret it echoed masked."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip()
    else:
        text = str(body["detail"]) if isinstance(body, dict) and "detail" in body else orjson.dumps(body).decode()
    return _cut(text, 200, *secrets)


def _cut(text: str, limit: int, *secrets: str) -> str:
    """Server text shortened to ``limit`` characters for a message, any secret it echoed masked first: a cut
    made before could leave part of a key that no longer matches it whole, and would be shown."""
    return redact(text, *secrets)[:limit]


def _is_id(value: object) -> bool:
    """An id as the API gives them: a non-empty string or an integer, of sane length."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _in_path(value: str) -> str:
    """An id from an answer as one URL path segment: ``/``, ``?``, ``#`` or controls cannot escape it."""
    return quote(value, safe="", errors="surrogatepass")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Finding:
    """Something wrong with an answer: ``kind`` is a key of ``ANOMALIES``, ``detail`` says what."""

    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Read(Generic[T]):
    """What a reader made of a decoded answer: the value (None when unusable) and what was wrong with it."""

    value: T | None
    findings: tuple[Finding, ...] = ()

    @property
    def label(self) -> str:
        """The request's outcome in ``requests``: the first finding, else ``ok``."""
        return self.findings[0].kind if self.findings else "ok"


def _as_is(body: Any) -> Read[Any]:
    return Read(body)


def _shape(detail: str) -> tuple[Finding, ...]:
    return (Finding("bad_shape", detail),)


def _status_text(status: str, *secrets: str) -> str:
    return repr(_cut(status, 40, *secrets))


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
        error_message=error if isinstance(error, str) else "",  # cut once the key is masked (``_masked``)
        call_id=str(call_id) if _is_id(call_id) else None,
    )


def _run_key(item: object) -> str | None:
    """The id of a list item as ``parse_run`` would give it, without parsing the rest (None: not an id)."""
    if not isinstance(item, dict):
        return None
    run_id = item.get("id")
    if isinstance(run_id, str):
        return run_id
    return str(run_id) if isinstance(run_id, int) and not isinstance(run_id, bool) else None


def read_run_page(body: Any, *secrets: str) -> Read[list[Any]]:
    """A page of ``GET /v1/test-calls``: a list of run objects. Items that are not runs are skipped by the
    lister and counted here as ``bad_shape``; statuses the API does not define as ``unknown_status`` (quoted
    with ``secrets`` masked)."""
    if not isinstance(body, list):
        return Read(None, _shape(f"expected a list of runs, got {_kind(body)}"))
    junk = 0
    unknown: set[str] = set()
    for item in body:
        if not isinstance(item, dict) or not _is_id(item.get("id")) or not isinstance(item.get("status"), str):
            junk += 1
        elif item["status"] not in RUN_STATUSES:
            unknown.add(item["status"])
    findings: list[Finding] = []
    if junk:
        findings.append(Finding("bad_shape", f"{junk} of {len(body)} items are not run objects"))
    if unknown:
        shown = ", ".join(_status_text(status, *secrets) for status in sorted(unknown)[:3])
        findings.append(Finding("unknown_status", f"run status {shown}"))
    return Read(body, tuple(findings))


def read_list(body: Any) -> Read[list[Any]]:
    """Any list endpoint's answer, for a reconciliation (which looks at each item itself)."""
    if not isinstance(body, list):
        return Read(None, _shape(f"expected a list, got {_kind(body)}"))
    return Read(body)


def read_batch_poll(body: Any, run_ids: tuple[str, ...], *secrets: str) -> Read[int]:
    """``GET /v1/test-call-batches/{id}``: how many of the batch's runs have ended (completed + failed).

    Only the counters matter for polling; ``run_ids`` that differ from the batch's own, or a status the API
    does not define, are noted but do not make the answer unusable."""
    if not isinstance(body, dict):
        return Read(None, _shape(f"expected a batch object, got {_kind(body)}"))
    counts = [body.get("completed_runs"), body.get("failed_runs")]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        shown = ", ".join(_kind(c) if not isinstance(c, int) else str(c) for c in counts)
        return Read(None, _shape(f"completed_runs and failed_runs must be counts, got {shown}"))
    findings: list[Finding] = []
    status = body.get("status")
    if isinstance(status, str) and status not in BATCH_STATUSES:
        findings.append(Finding("unknown_status", f"batch status {_status_text(status, *secrets)}"))
    answered = body.get("run_ids", MISSING)
    if answered is not MISSING and not (
        isinstance(answered, list) and [str(i) if _is_id(i) else None for i in answered] == list(run_ids)
    ):
        count = len(answered) if isinstance(answered, list) else _kind(answered)
        findings.append(Finding("run_ids_changed", f"{count} run_ids where {len(run_ids)} were created"))
    return Read(counts[0] + counts[1], tuple(findings))  # type: ignore[operator]


def read_batch_submission(answer: Any, expected_runs: int) -> Submission:
    """The batch a ``POST /v1/test-call-batches`` created (or a batch found by reconciliation).

    Raises SubmitError (``bad_shape``) unless it has an id and ``expected_runs`` distinct run ids."""
    if not isinstance(answer, dict):
        raise SubmitError("bad_shape", f"the batch answer is {_kind(answer)}, not a JSON object")
    batch_id, run_ids = answer.get("id"), answer.get("run_ids")
    if not _is_id(batch_id) or not isinstance(run_ids, list) or len(run_ids) != expected_runs:
        raise SubmitError("bad_shape", "the batch answer lacks an id or the right number of run_ids")
    if not all(_is_id(run_id) for run_id in run_ids) or len({str(r) for r in run_ids}) != len(run_ids):
        # two runs under one id could not be told apart: one of them would never be seen to end
        raise SubmitError("bad_shape", "the batch answer's run_ids are not distinct ids")
    created_at = parse_iso_or_none(answer.get("created_at"))
    total_cost = answer.get("estimated_cost_cents")
    per_run = (
        total_cost / len(run_ids)
        if isinstance(total_cost, int | float) and not isinstance(total_cost, bool) and run_ids
        else None
    )
    runs = tuple(SubmittedRun(str(run_id), i, created_at, per_run) for i, run_id in enumerate(run_ids))
    return Submission(batch_id=str(batch_id), runs=runs)


def read_run_submission(answer: Any, index: int = 0) -> SubmittedRun:
    """The run a ``POST /v1/test-calls`` created; raises SubmitError (``bad_shape``) without a run id."""
    if not isinstance(answer, dict):
        raise SubmitError("bad_shape", f"the run answer is {_kind(answer)}, not a JSON object")
    run_id, cost = answer.get("id"), answer.get("estimated_cost_cents")
    if not _is_id(run_id):
        raise SubmitError("bad_shape", "the run answer has no id")
    return SubmittedRun(
        str(run_id),
        index,
        parse_iso_or_none(answer.get("created_at")),
        cost if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
    )


class RunLister:
    """Finds runs by id on the list endpoint, one scan for all callers waiting at that moment."""

    def __init__(
        self,
        get: Callable[..., Any],
        max_pages: int = 10,
        page_size: int = LIST_PAGE_SIZE,
        max_dated_pages: int = MAX_DATED_PAGES,
        ledger: CreationLedger | None = None,
    ) -> None:
        # ``get(purpose, path, params)`` -> (decoded JSON or None, monotonic ns of the answer)
        self._get = get
        # what this client created, to start a scan below the runs created after the ones it looks for
        self._ledger = ledger
        self._max_pages = max_pages
        # When every wanted run's creation time is known, a scan stops at the first page older than them all,
        # so it may go deeper: at thousands of runs created per second, a run that ends has thousands of newer
        # runs above it, and a scan that gave up after 10 pages left every run open (benchmarks/peers.py).
        self._max_dated_pages = max(max_pages, max_dated_pages)
        self._page_size = page_size
        self._wanted: dict[str, float | None] = {}
        self._reach: dict[str, int] = {}  # wanted ids looked for only this deep in the list (runs from its top)
        self._found: dict[str, RunView] = {}
        self._missing: set[str] = set()  # wanted ids a complete scan (back past their creation) did not find
        self._unreached: set[str] = set()  # wanted ids not found within their reach
        self._lock = anyio.Lock(fast_acquire=True)  # the scan waits for its followers itself, see _scan
        self._scans_taken = 0  # scans that took the wanted ids: a caller who asked before one took them is served
        self._pages_needed = 1  # pages the last scan read before it had found or proven missing what it wanted
        self._depth = 0  # the deepest the callers waiting for the next scan expect their runs (see lookup_all)

    async def lookup(self, wanted: Mapping[str, float | None]) -> dict[str, RunView]:
        """The current view of these runs (id -> created_at); ids the scan did not reach are left out."""
        return (await self.lookup_all(wanted)).found

    async def lookup_all(self, wanted: Mapping[str, float | None], within: int | None = None, depth: int = 0) -> Lookup:
        """``lookup``, the ids the scan proved missing (it read the list to its end, or back past their
        creation time, without finding them), and, with ``within``, the ids not found in that many runs from
        the list's top (the scan goes no deeper for them). ``depth``: how deep the caller expects its runs at
        least (the scan reads the pages down to there at once)."""
        self._wanted.update(wanted)
        self._depth = max(self._depth, depth)
        if within is not None:
            self._reach.update(dict.fromkeys(wanted, within))
        ticket = self._scans_taken
        try:
            async with self._lock:
                if self._scans_taken == ticket:  # no scan took our ids since we asked: run one for everybody
                    await self._scan()
            return Lookup(
                found={run_id: self._found.pop(run_id) for run_id in wanted if run_id in self._found},
                missing=frozenset(run_id for run_id in wanted if run_id in self._missing),
                unreached=frozenset(run_id for run_id in wanted if run_id in self._unreached),
            )
        finally:
            for run_id in wanted:
                self._wanted.pop(run_id, None)
                self._reach.pop(run_id, None)
                self._found.pop(run_id, None)
                self._missing.discard(run_id)
                self._unreached.discard(run_id)

    async def _scan(self) -> None:
        # Followers on the shared tick wake within a millisecond or two of each other (each has its own timer,
        # and the loop's timers keep whole milliseconds): waiting that long lets all of them add what they want
        # before the scan takes its list, so that one scan serves them all. A single yield caught only those
        # woken in the same step: at 300 batches/s every tick took two scans of ~7 pages each.
        await anyio.sleep(SCAN_GATHER_S)
        wanted = dict(self._wanted)
        depth, self._depth = self._depth, 0
        self._scans_taken += 1
        times = [t for t in wanted.values() if t is not None]
        dated = len(times) == len(wanted)
        start = self._skippable(max(times)) if dated and times else 0
        # A list shallower than the ledger says (runs deleted, an unsorted list) shows older runs at the
        # start: then the scan begins again from the top.
        if not await self._read_pages(wanted, min(times) - 1.0 if dated else None, start, depth) and start:
            await self._read_pages(wanted, min(times) - 1.0, 0, depth)

    def _skippable(self, newest: float) -> int:
        """Runs at the top of the list that are newer than ``newest`` for sure: those this client created
        after it (other clients' runs only add to them), less a margin for creation times that tie."""
        if self._ledger is None:
            return 0
        above = self._ledger.created_after(newest)
        return max(0, above - SKIP_MARGIN_RUNS - above // 10)

    async def _read_pages(
        self, wanted: dict[str, float | None], oldest: float | None, start: int, depth: int = 0
    ) -> bool:
        """Read pages from ``start`` until every wanted run is found or proven missing; False when the first
        page, read below the top, was not all newer than the wanted runs (nothing is concluded then)."""
        size = self._page_size
        newest = max(t for t in wanted.values() if t is not None) if start else None
        limit = self._max_pages if oldest is None else self._max_dated_pages
        # Pages down to the depth the callers expect (or as deep as the last scan had to go) are read a few at
        # once: a scan slower than the tick would leave more runs open, so deeper scans.
        expected = max(self._pages_needed, -(-(depth - start) // size))
        window = range(min(limit, expected, PAGES_AT_ONCE))
        while window:
            for page, (body, seen_ns) in zip(window, await self._get_pages(start, window), strict=True):
                if page != window.start:
                    # One page's runs at a time, then the loop: a tick's scan at 300 batches/s finds ~400 ended
                    # runs, and parsing the pages read together in one step made batch starts ~2 ms late.
                    await anyio.lowlevel.checkpoint()
                if not isinstance(body, list):
                    return True
                if page == 0 and newest is not None:
                    first = body[0].get("created_at") if body and isinstance(body[0], dict) else None
                    first_at = parse_iso_or_none(first)
                    if first_at is None or first_at <= newest:
                        return False
                # Only the runs asked for are parsed: a page holds up to 200 runs and parsing them all (three
                # timestamps each) took 3-4 ms in one step of the event loop, long enough to make starts late.
                for item in body:
                    key = _run_key(item)
                    if key is not None and key in wanted:
                        view = parse_run(item, seen_ns)
                        if view is not None:
                            self._found[key] = view
                            del wanted[key]
                self._give_up_above(wanted, start + (page + 1) * size)
                last = parse_run(body[-1], seen_ns) if body else None
                page_is_older = (
                    oldest is not None and last is not None and last.created_at is not None and last.created_at < oldest
                )
                if not wanted or len(body) < size or page_is_older:
                    # read to the end, or past the oldest of them: what is still wanted is not in the list
                    self._missing.update(wanted)
                    self._pages_needed = page + 1
                    return True
            after = window.stop
            window = range(after, min(limit, max(after + 1, min(expected, after + PAGES_AT_ONCE))))
        return True

    async def _get_pages(self, start: int, pages: range) -> list[tuple[Any, int]]:
        """These pages of the list, read at once, in order."""
        size = self._page_size
        answers: list[tuple[Any, int]] = [(None, 0)] * len(pages)

        async def read(slot: int, page: int) -> None:
            answers[slot] = await self._get(
                "list_runs", "/v1/test-calls", params={"limit": size, "offset": start + page * size}
            )

        if len(pages) == 1:
            await read(0, pages[0])
            return answers
        async with anyio.create_task_group() as readers:
            for slot, page in enumerate(pages):
                readers.start_soon(read, slot, page)
        return answers

    def _give_up_above(self, wanted: dict[str, float | None], depth: int) -> None:
        """Drop from ``wanted`` the ids whose reach the scan has read past (``depth`` runs from the top)."""
        reach = self._reach
        if not reach:
            return
        for run_id in [run_id for run_id in wanted if (within := reach.get(run_id)) is not None and within <= depth]:
            del wanted[run_id]
            self._unreached.add(run_id)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What one scan of the run list told a follower: the runs it saw, those it proved absent from the list,
    and those it did not look for as deep as they are (their ``within`` was passed)."""

    found: dict[str, RunView]
    missing: frozenset[str]
    unreached: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Failed:
    """A request that got no usable HTTP answer: how it failed (for the governor), the label it is counted
    under when that is more precise than the governor's cause, and the exception (None: the deadline)."""

    failure: TransportFailure
    label: str | None
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """The end of one request (after the governor's retries): the last decision, the last response (None
    after a transport failure), when the answer arrived, how the request was counted, and what the reader
    made of a 2xx body (None when it was unusable)."""

    decision: Decision
    response: httpx.Response | None
    answered_ns: int
    label: str
    value: T | None = None


@dataclass(frozen=True, slots=True)
class _UnknownBatch:
    """A batch poll answered 404: the batch id the server gave is not one it knows."""


@dataclass(frozen=True, slots=True)
class _Absent:
    """Reconciliation proved that a create made nothing: it may be sent again."""


@dataclass(frozen=True, slots=True)
class _Unknown:
    """Reconciliation could not tell whether a create made runs: it must not be sent again."""

    why: str


@dataclass(frozen=True, slots=True)
class _Unread:
    """A reconciliation's listing got no usable answer this time: it is asked again, until the deadline."""

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
        reconcile_settle_s: float | None = None,
        reconcile_deadline_s: float = RECONCILE_DEADLINE_S,
        run_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._requests = requests
        self._governor = governor if governor is not None else Governor(Limits())
        self._submit_mode = submit_mode
        self._polls = PollSchedule(poll_interval_s, max(poll_max_interval_s or poll_interval_s, poll_interval_s))
        self._clock = clock
        self._wall = wall
        self._timeout_s = timeout_s
        self._noted: set[str] = set()  # classes of bad answers already logged (each is logged once)
        self._urls: dict[object, httpx.URL] = {}  # see _url
        # Keep-alive as large as each pool: with httpx's default of 20, connections churn above 20 in flight.
        self._client = ShardedClient(
            shards=HTTP_SHARDS,
            connections_per_shard=max(1, max_connections // HTTP_SHARDS),
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )
        self._created = CreationLedger()
        self._lister = RunLister(self._get_run_page, page_size=SCAN_PAGE_SIZE, ledger=self._created)
        # With an inbox, webhooks end the runs; a run still open ``webhook_fallback_s`` after its submission
        # is polled (None: never, every run waits for its webhook).
        self._inbox = inbox
        self._webhook_fallback_s = webhook_fallback_s
        self.late_polls = 0  # batches that had to fall back to polling
        self.unknown_runs = 0  # runs created but left out of the run list scan after scan (``unknown_run``)
        # Run ids this target created recently: a reconciliation must never adopt one of them twice.
        # Remembered for KNOWN_RUNS_HORIZON_S, oldest first, so memory stays flat however long the run.
        self._known_runs: OrderedDict[str, float] = OrderedDict()
        # Run ids being followed now: a create answering one of them again would make two runs one.
        self._following: set[str] = set()
        self._rng = random.Random()
        # A create that timed out may still be held by the server and be handled later: it is looked for only
        # after this delay (at least the whole-request deadline), and twice, before it may be sent again.
        self._settle_s = timeout_s * DEADLINE_SLACK if reconcile_settle_s is None else reconcile_settle_s
        self._reconcile_deadline_s = reconcile_deadline_s
        # Batch names repeat from one stressor run to the next ("stressor <profile> #<seq>"): this target's own
        # token in each name keeps a reconciliation from adopting a batch an earlier run created.
        self.run_token = run_token if run_token is not None else secrets.token_hex(RUN_TOKEN_BYTES)

    def __repr__(self) -> str:
        return f"TestCallsTarget({self.base_url!r}, api_key={mask_secret(self._api_key)!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self) -> None:
        """Health and key check before any load: ``/v1/healthz``, then one authenticated list request.

        Raises TargetUnavailable with one sentence: unreachable (refused, DNS, TLS, no answer in time), not
        healthy, or the key refused. Both requests are counted in ``requests``, as ``check``."""

        def count(sent: httpx.Response | _Failed) -> None:
            if isinstance(sent, _Failed):
                cause = classify_attempt("poll", sent.failure, now_wall=self._wall(), max_pause=0.0).cause
                self._requests.record_request("check", sent.label or cause)
            else:
                self._requests.record_request("check", _outcome(sent.status_code))

        health = await self._send("GET", "/v1/healthz", {})
        count(health)
        if isinstance(health, _Failed):
            raise TargetUnavailable(f"cannot reach {self.base_url}: {why_unreachable(health.error, self._timeout_s)}")
        if health.status_code != 200:
            raise TargetUnavailable(f"{self.base_url}/v1/healthz answered {health.status_code}, not 200")
        probe = await self._send("GET", "/v1/test-calls", {"params": {"limit": 1}})
        count(probe)
        if isinstance(probe, _Failed):
            raise TargetUnavailable(f"cannot reach {self.base_url}: {why_unreachable(probe.error, self._timeout_s)}")
        if probe.status_code in FATAL_STATUSES:
            raise TargetUnavailable(FATAL_STATUSES[probe.status_code])

    # ------------------------------------------------------------------------------------------ requests

    def _now_s(self) -> float:
        return self._clock() / NS_PER_S

    def _url(self, path: str, params: Mapping[str, object] | None = None) -> httpx.URL:
        """The absolute URL of a path (and query), parsed once: httpx's merging of a relative path with the
        base URL and its parameters took ~80-140 µs a request, an absolute ``httpx.URL`` ~15 µs."""
        key = (path, tuple(params.items())) if params else path
        url = self._urls.get(key)
        if url is None:
            url = httpx.URL(f"{self.base_url}{path}", params=params)
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()  # batch polls each have their own path: forget them all now and then
            self._urls[key] = url
        return url

    async def _send(
        self, method: str, path: str, options: dict[str, Any], limit: int = BODY_LIMIT
    ) -> httpx.Response | _Failed:
        """One attempt on the wire, answer included, within the request timeout.

        ``limit`` goes to the transport as the ``max_body_bytes`` extension: a transport that honours it reads
        at most one byte more than that and drops the connection, so a huge answer costs no more memory than
        the limit (``_read`` then finds it too large). One that does not reads the whole body first."""
        # The clients' read timeout applies to each read: a server trickling a byte at a time would hold the
        # request for ever. The whole request must end within the timeout; a little later, so that the clients'
        # own timeouts fire first where they apply (a connect timeout proves nothing was sent, this cannot).
        with anyio.move_on_after(self._timeout_s * DEADLINE_SLACK):
            try:
                if "params" in options:
                    options = dict(options)
                    url = self._url(path, options.pop("params"))
                else:
                    url = self._url(path)
                return await self._client.request(method, url, extensions={MAX_BODY_EXTENSION: limit}, **options)
            except httpx.DecodingError as exc:
                # the body came but its Content-Encoding could not be undone: a garbled answer
                return _Failed("remote_protocol", "bad_response", exc)
            except httpx.TransportError as exc:
                return _Failed(transport_failure(exc), failure_label(exc), exc)
            except httpx.InvalidURL as exc:
                return _Failed("connect_error", "invalid_url", exc)  # refused before anything was sent
        return _Failed("read_timeout", None, None)

    async def _request(
        self,
        kind: RequestKind,
        purpose: str,
        method: str,
        path: str,
        *,
        read: Callable[[Any], Read[T]] = _as_is,
        limit: int = BODY_LIMIT,
        retry: bool = True,
        status_labels: Mapping[int, str] | None = None,
        **options: Any,
    ) -> Reply[T]:
        """One request through the governor, retried as it decides; a 2xx body is decoded and given to
        ``read``. Every attempt is counted once in ``requests``, with what was wrong with it if anything
        (``status_labels``: the class an answer of that status is counted under instead of ``http_<status>``)."""
        attempt = 0
        while True:
            wait = self._governor.reserve(kind, self._now_s())
            if wait > 0:
                await anyio.sleep(wait)
            sent = await self._send(method, path, options, limit)
            outcome: HttpOutcome | TransportFailure = (
                sent.failure if isinstance(sent, _Failed) else HttpOutcome(sent.status_code, sent.headers)
            )
            answered_ns = self._clock()
            decision = self._governor.after_attempt(
                kind, outcome, attempt=attempt, now=answered_ns / NS_PER_S, now_wall=self._wall(), retry=retry
            )
            response = None if isinstance(sent, _Failed) else sent
            value: T | None = None
            if isinstance(sent, _Failed):
                label = sent.label or decision.cause
                self._note(Finding(label), method, path)
            elif decision.action == "done":
                got = self._read(sent, limit, read)
                value, label = got.value, got.label
                for finding in got.findings:
                    self._note(finding, method, path)
            else:
                label = _outcome(sent.status_code)
                if status_labels is not None:
                    label = status_labels.get(sent.status_code, label)
            self._requests.record_request(purpose, label)
            if decision.action != "retry" or not retry:
                return Reply(decision, response, answered_ns, label, value)
            await anyio.sleep(decision.delay or 0.0)
            attempt += 1

    def _read(self, response: httpx.Response, limit: int, read: Callable[[Any], Read[T]]) -> Read[T]:
        """A 2xx answer decoded and read; what was wrong with it, if anything."""
        size = len(response.content)
        if size > limit:
            return Read(None, (Finding("too_large", f"{size} bytes, over {limit}"),))
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as bad:
            return Read(None, (Finding("bad_response", str(bad)[:80]),))
        return read(body)

    def _note(self, finding: Finding, method: str, path: str) -> None:
        """Log a class of bad answer the first time it happens; later ones are only counted."""
        explained = ANOMALIES.get(finding.kind)
        if explained is None or finding.kind in self._noted:
            return
        self._noted.add(finding.kind)
        detail = f" ({finding.detail})" if finding.detail else ""
        line = f"stressor: {method} {path}: the server {explained}{detail} [{finding.kind}]"
        # the detail quotes the server, which may echo the key it was sent
        logger.warning("%s; later ones are counted in the results, not logged", redact(line, self._api_key))

    async def _get_json(
        self,
        purpose: str,
        path: str,
        params: dict[str, object] | None = None,
        *,
        read: Callable[[Any], Read[T]] = _as_is,
        limit: int = BODY_LIMIT,
        retry: bool = False,
    ) -> tuple[T | None, int]:
        """A GET decoded and read; ``(None, t)`` on any failure. Polls are not retried (the next poll is
        their retry); a reconciliation is, since nothing may be sent again until it has an answer."""
        reply = await self._request("poll", purpose, "GET", path, read=read, limit=limit, retry=retry, params=params)
        return reply.value, reply.answered_ns

    async def _get_run_page(
        self, purpose: str, path: str, params: dict[str, object] | None = None
    ) -> tuple[list[Any] | None, int]:
        """A page of the run list, for the lister."""

        def read(body: Any) -> Read[list[Any]]:
            return read_run_page(body, self._api_key)

        return await self._get_json(purpose, path, params, read=read, limit=LIST_BODY_LIMIT)

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
        """The name this target gives the order's batch: the engine's name and this target's run token."""
        return f"{order.name} ~{self.run_token}"

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
        # Every attempt of this order is looked for from the first one on: a batch an earlier attempt created
        # after its listings had shown nothing is still this order's, and must be seen (two matches: unknown).
        first_sent_wall: float | None = None
        while True:
            sent_wall = self._wall()
            first_sent_wall = sent_wall if first_sent_wall is None else first_sent_wall
            reply = await self._request(
                "create", "submit", "POST", path, read=self._submission_reader(order), content=content, headers=_JSON
            )
            decision = reply.decision
            # the errored runs' cause says what went wrong as precisely as the request's count does
            cause = reply.label if reply.label in ANOMALIES else decision.cause
            if decision.action == "done":
                if reply.value is not None:
                    return self._remember(reply.value)
                # a 2xx we cannot read: the runs exist but their ids are unknown, reconcile
            elif decision.action == "fail":
                raise self._failure(path, decision, reply.response, cause)
            # Without an answer (a timeout, a reset) or with a 5xx (a gateway's 504 while the API goes on),
            # the server may still hold the request and create the runs later; a 2xx was handled in full.
            in_doubt = decision.action != "done"
            found = await self._reconcile(order, first_sent_wall, in_doubt=in_doubt)
            if isinstance(found, Submission):
                self._requests.record_request("submit", "reconciled")
                return self._remember(found)
            if isinstance(found, _Unknown):
                raise SubmitError(
                    "unknown", f"POST {path} ended in {cause} and {found.why}: not sent again, its runs may exist"
                )
            delay = self._governor.note_reconcile_retry(self._now_s())
            if delay is None:
                raise SubmitError(cause, f"POST {path} ended in {cause}; the retry budget is spent")
            await anyio.sleep(delay)

    def _failure(self, path: str, decision: Decision, response: httpx.Response | None, cause: str) -> SubmitError:
        if response is not None and response.status_code in FATAL_STATUSES:
            reason = FATAL_STATUSES[response.status_code]
            detail = _detail(response, self._api_key)
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
            except SubmitError as bad:
                return Read(None, _shape(bad.message))
            reused = [run.run_id for run in submission.runs if self._is_known(run.run_id)]
            if reused:
                # a run id already followed for another order: the two could not be told apart
                shown = _cut(reused[0], 40, self._api_key)
                return Read(None, _shape(f"run id {shown!r} was already given to an earlier create"))
            return Read(submission)

        return read

    def _is_known(self, run_id: str) -> bool:
        return run_id in self._known_runs or run_id in self._following

    def _remember(self, submission: Submission) -> Submission:
        now = self._wall()
        for run in submission.runs:
            self._known_runs[run.run_id] = now
        for created_at, runs in Counter(run.created_at for run in submission.runs).items():
            self._created.add(created_at, runs)  # a batch's runs share their creation time: one entry
        # insertion order is time order: forget from the oldest end (OrderedDict pops it in O(1))
        horizon = now - KNOWN_RUNS_HORIZON_S
        while self._known_runs and next(iter(self._known_runs.values())) < horizon:
            self._known_runs.popitem(last=False)
        return submission

    async def _reconcile(
        self, order: BatchOrder, sent_wall: float, *, in_doubt: bool = True
    ) -> Submission | _Absent | _Unknown:
        """Find out whether a create that ended without a readable answer made its runs.

        A create ``in_doubt`` (no answer, or a 5xx) may still be held by the server: it is looked for after the
        settle delay, and proved absent only by ``RECONCILE_CHECKS`` listings a settle delay apart. A listing
        that cannot be read is asked again with backoff until ``reconcile_deadline_s``; after that, or when
        what the lists show is ambiguous, the answer is ``_Unknown``: never a guess, never a second POST."""
        started = self._now_s()
        checks = RECONCILE_CHECKS if in_doubt else 1
        wait = self._settle_s if in_doubt else 0.0
        # the settle delays are not part of the time given to reading the lists (a request timeout of a minute
        # must not leave no time at all)
        deadline = started + wait * checks + self._reconcile_deadline_s
        absent = failures = 0
        why = "the list could not be read"
        while True:
            if wait > 0:
                if self._now_s() + wait > deadline:
                    return _Unknown(f"{why} within {self._reconcile_deadline_s:g} s")
                await anyio.sleep(wait)
            found = await self._look_for(order, sent_wall)
            if isinstance(found, _Absent):
                absent += 1
                if absent >= checks:
                    return found
                wait, why = self._settle_s, "its absence was not confirmed"
            elif isinstance(found, _Unread):
                failures += 1
                wait, why = max(self._governor.backoff_delay(failures), MIN_SLEEP_S), found.why
            else:
                return found

    async def _look_for(self, order: BatchOrder, sent_wall: float) -> Submission | _Absent | _Unknown | _Unread:
        """One look at the lists for the runs of a create sent at ``sent_wall`` (epoch seconds)."""
        since = sent_wall - RECONCILE_WINDOW_S  # the server's clock may run a little behind ours
        if self._submit_mode == "single":
            return await self._look_for_run(order, since)
        name = self.batch_name(order)

        def ours(item: dict[str, Any]) -> bool:
            created_at = parse_iso_or_none(item.get("created_at"))
            return item.get("name") == name and (created_at is None or created_at >= since)

        listed = await self._list_since("/v1/test-call-batches", since, ours, "the batch list")
        if not isinstance(listed, list):
            return listed
        if not listed:
            return _Absent()
        if len(listed) > 1:
            return _Unknown(f"{len(listed)} batches carry its name")
        try:
            found = read_batch_submission(listed[0], len(order.prompts))
        except SubmitError:
            return _Unknown("its batch was found but could not be read")
        if any(self._is_known(run.run_id) for run in found.runs):
            return _Unknown("its batch was found with run ids already given to an earlier create")
        return found

    async def _list_since(
        self, path: str, since: float, ours: Callable[[dict[str, Any]], bool], what: str
    ) -> list[dict[str, Any]] | _Unknown | _Unread:
        """The items of a list (newest first) that are ``ours``, read page by page back past ``since``.

        Only a list read to its end, or to an item created before ``since``, can prove an absence: the newest
        page alone misses a create that hundreds of newer items have pushed down."""
        # by id: items created while the pages are read push older ones down, so a page may repeat the end of
        # the one before it, and one batch seen twice must not read as two batches with its name
        matches: dict[object, dict[str, Any]] = {}
        first_key: object = MISSING
        for page in range(RECONCILE_MAX_PAGES):
            params = {"limit": LIST_PAGE_SIZE, "offset": page * LIST_PAGE_SIZE}
            body, _ = await self._get_json("reconcile", path, params, read=read_list, limit=LIST_BODY_LIMIT)
            if body is None:
                return _Unread(f"{what} could not be read")
            if page > 0 and body and _run_key(body[0]) == first_key:
                return _Unknown(f"{what} could not be paged (the server ignored its offset)")
            first_key = _run_key(body[0]) if body else None
            for item in body:
                if isinstance(item, dict) and ours(item):
                    key = _run_key(item)
                    matches[key if key is not None else id(item)] = item
            if len(body) < LIST_PAGE_SIZE:
                return list(matches.values())  # the end of the list
            last = body[-1]
            created_at = parse_iso_or_none(last.get("created_at")) if isinstance(last, dict) else None
            if created_at is not None and created_at < since:
                return list(matches.values())  # newest first: every later page is older still
        return _Unknown(f"{what} was not read back to the time of the request in {RECONCILE_MAX_PAGES} pages")

    async def _look_for_run(self, order: BatchOrder, since: float) -> Submission | _Absent | _Unknown | _Unread:
        request = order.request
        wanted = (request.target_type, request.target_id, order.prompts[0])

        def ours(item: dict[str, Any]) -> bool:
            created_at = parse_iso_or_none(item.get("created_at"))
            return (
                created_at is not None
                and created_at >= since
                and (item.get("target_type"), item.get("target_id"), item.get("scenario_prompt")) == wanted
            )

        listed = await self._list_since("/v1/test-calls", since, ours, "the run list")
        if not isinstance(listed, list):
            return listed
        matches = []
        for item in listed:
            view = parse_run(item, 0)
            if view is not None and not self._is_known(view.run_id):
                matches.append(SubmittedRun(view.run_id, 0, view.created_at, None))
        if not matches:
            return _Absent()
        if len(matches) > 1:
            return _Unknown(f"{len(matches)} runs match its target and prompt")
        return Submission(batch_id=None, runs=(matches[0],))

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
        if self._inbox is None:
            await self._poll(submission, open_runs, on_end, mark)
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
                    fallback.start_soon(self._poll_late, submission, open_runs, on_end, all_ended, mark)
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
    ) -> None:
        assert self._webhook_fallback_s is not None
        await anyio.sleep(self._webhook_fallback_s)
        if open_runs:
            self.late_polls += 1
            await self._poll(submission, open_runs, on_end, mark)
        all_ended.set()

    async def _poll(
        self,
        submission: Submission,
        open_runs: dict[str, float | None],
        on_end: Callable[[RunEnd], None],
        mark: int,
    ) -> None:
        """Poll until every run in ``open_runs`` has ended (removing them from it, whoever saw the end).

        While the batch's runs are near the top of the run list, its polls are the shared scan of the list's
        top, on the tick every such batch shares; once they are deeper, it polls its batch, at its own random
        phase (batches submitted together, after a stall say, must not poll in lockstep), and asks the list
        only when the batch's counters moved. Either way a run's end is seen within one interval and the
        scan's own time (benchmarks/README.md: past ~2,000 runs/s on one core, scans queue and that grows)."""
        started_ns = self._clock()
        tick_ns = round(self._polls.interval_s * NS_PER_S)
        near = self._near_top(open_runs, mark)
        # The first poll comes on the next tick; a batch polled on its own, at a random point of its first
        # interval. The error bound stays one interval.
        first_offset_s = 0.0 if near else self._rng.uniform(0, self._polls.interval_s)
        next_poll_ns = started_ns + round(first_offset_s * NS_PER_S) - tick_ns
        failures = 0
        batch_id = submission.batch_id  # None once the server has said it does not know the batch
        run_ids = tuple(run.run_id for run in submission.runs)
        misses: dict[str, int] = {}  # complete scans in a row that did not find a run
        while open_runs:
            # A fixed cadence, not a sleep after each poll: the time a poll takes must not stretch the
            # interval, or detection would lag by more than one interval.
            age_s = (next_poll_ns - started_ns) / NS_PER_S
            interval_ns = round((self._polls.next_interval(age_s) + self._governor.backoff_delay(failures)) * NS_PER_S)
            if near:
                # The next instant on the grid of the largest tick * 2^k within the interval. The grids nest:
                # batches whose polls have grown alike poll together, and with the youngest batches.
                quantum = tick_ns << max(0, (interval_ns // tick_ns).bit_length() - 1)
                next_poll_ns = (max(next_poll_ns, self._clock()) // quantum + 1) * quantum
            else:
                next_poll_ns = max(next_poll_ns + interval_ns, self._clock())
            await anyio.sleep(max((next_poll_ns - self._clock()) / NS_PER_S, MIN_SLEEP_S))
            near = near and self._near_top(open_runs, mark)
            if batch_id is not None and not near:
                ended = await self._batch_ended_count(batch_id, run_ids)
                if isinstance(ended, _UnknownBatch):
                    batch_id = None  # its runs may still be in the run list: look for them there from now on
                else:
                    failures = failures + 1 if ended is None else 0
                    known_ended = len(submission.runs) - len(open_runs)
                    if ended is None or ended <= known_ended:
                        continue  # nothing new: the list endpoint is not asked
            # its runs lie at least this deep: below those this client created after them
            depth = self._created.total - mark + len(submission.runs)
            seen = await self._lister.lookup_all(open_runs, within=NEAR_TOP_RUNS if near else None, depth=depth)
            for view in seen.found.values():
                if view.ended and open_runs.pop(view.run_id, MISSING) is not MISSING:
                    on_end(self._masked(view.as_end()))
            self._note_missing(misses, seen.found, seen.missing)
            if seen.unreached:
                near = False  # deeper than the shared scan reads: polled on its own from now on

    def _near_top(self, open_runs: Mapping[str, float | None], mark: int) -> bool:
        """Whether these runs are near enough to the top of the run list for the shared scan: this client has
        created fewer than ``NEAR_TOP_RUNS`` runs since ``mark`` (its ledger's count when they were created).
        Other clients' runs may sink them deeper: a scan that does not reach them says so."""
        if None in open_runs.values():
            return False  # a scan could not tell where to stop looking for them
        return self._created.total - mark < NEAR_TOP_RUNS

    def _note_missing(self, misses: dict[str, int], found: Mapping[str, RunView], missing: frozenset[str]) -> None:
        """Count a run as ``unknown_run`` once ``MISSES_FOR_UNKNOWN_RUN`` complete scans in a row missed it."""
        for run_id in found:
            misses.pop(run_id, None)
        for run_id in missing:
            misses[run_id] = misses.get(run_id, 0) + 1
            if misses[run_id] == MISSES_FOR_UNKNOWN_RUN:
                self.unknown_runs += 1
                shown = _cut(run_id, 40, self._api_key)
                self._note(Finding("unknown_run", f"run id {shown!r}"), "GET", "/v1/test-calls")

    def _masked(self, end: RunEnd) -> RunEnd:
        """The end with the key masked in its server-written ``error_message``, which goes into the records,
        the runs log and the summary (a server may echo the Authorization header it got)."""
        if not end.error_message:
            return end
        masked = _cut(end.error_message, ERROR_MESSAGE_LIMIT, self._api_key)
        return end if masked == end.error_message else replace(end, error_message=masked)

    async def fetch_grade(self, call_id: str) -> CallGraded | None:
        """The current grade of a call (``GET /v1/calls/{id}/grade``), or None when unreadable or pending."""

        def read(body: Any) -> Read[CallGraded]:
            grade = parse_grade(call_id, body)
            return Read(None, _shape(grade.message)) if isinstance(grade, BadEvent) else Read(grade)

        grade, _ = await self._get_json("grade", f"/v1/calls/{_in_path(call_id)}/grade", read=read)
        return grade if grade is not None and grade.score is not None else None

    async def _batch_ended_count(self, batch_id: str, run_ids: tuple[str, ...]) -> int | _UnknownBatch | None:
        """How many of the batch's runs have ended; None when the poll failed or could not be read."""
        path = f"/v1/test-call-batches/{_in_path(batch_id)}"
        reply = await self._request(
            "poll",
            "poll_batch",
            "GET",
            path,
            read=lambda body: read_batch_poll(body, run_ids, self._api_key),
            retry=False,
            status_labels=_UNKNOWN_BATCH,  # counted under the class its log line names
        )
        if reply.response is not None and reply.response.status_code == 404:
            self._note(Finding("unknown_batch", f"batch id {_cut(batch_id, 40, self._api_key)!r}"), "GET", path)
            return _UnknownBatch()
        return reply.value


_JSON = {"Content-Type": "application/json"}
_UNKNOWN_BATCH: Mapping[int, str] = {404: "unknown_batch"}
