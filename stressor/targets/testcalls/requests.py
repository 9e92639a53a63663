"""Requests to the test-calls API: through the governor, within a deadline, counted once, read safely.

Every attempt is counted once in ``requests`` under one outcome; the first time each class of bad answer
happens, one line goes to the ``stressor`` logger, secrets masked. An attempt, answer included, ends a little
after the request timeout at the latest: the clients' read timeouts apply per read, so a server trickling bytes
would otherwise hold it for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import anyio
import httpx
import orjson

from stressor.governor import Governor, RequestKind
from stressor.http.client import ShardedClient
from stressor.limits import Decision, HttpOutcome, TransportFailure
from stressor.secrets import redact
from stressor.targets.base import RequestLog
from stressor.targets.testcalls.answers import Finding, Read, as_is
from stressor.targets.testcalls.failures import ANOMALIES, failure_label, transport_failure
from stressor.timestamps import NS_PER_S

T = TypeVar("T")
BODY_LIMIT = 1024 * 1024  # bytes of an answer that are used; the API's objects are a few KiB
LIST_BODY_LIMIT = 8 * 1024 * 1024  # many times the largest list page: more is not a list page
DEADLINE_SLACK = 1.1  # a whole request may take this times the request timeout
URL_CACHE_SIZE = 256  # absolute URLs kept parsed (list pages, the batches being polled); bounded so memory stays flat
MAX_BODY_EXTENSION = "max_body_bytes"  # the request extension that tells the transport the body limit
DETAIL_LIMIT = 200  # characters of a server's words kept in a log line or an error
logger = logging.getLogger("stressor.targets.testcalls.target")


@dataclass(frozen=True, slots=True)
class Failed:
    """A request that got no usable HTTP answer: how it failed (for the governor), the label it is counted
    under when that is more precise than the governor's cause, and the exception (None: the deadline)."""

    failure: TransportFailure
    label: str | None
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """The end of one request (after the governor's retries): the last decision, the last response (None
    after a transport failure), when it was sent and answered, how it was counted, and what the reader made of
    a 2xx body (None when it was unusable)."""

    decision: Decision
    response: httpx.Response | None
    sent_wall: float
    answered_ns: int
    answered_wall: float
    label: str
    value: T | None = None


def outcome_label(status: int) -> str:
    return "ok" if 200 <= status < 300 else f"http_{status}"


def header_date(response: httpx.Response) -> float | None:
    """The ``Date`` header of an answer as epoch seconds, None when absent or not a date."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def server_words(response: httpx.Response, *secrets: str) -> str:
    """The server's own words about an error, short, with any secret it echoed masked before the cut."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text
    else:
        text = str(body["detail"]) if isinstance(body, dict) and "detail" in body else orjson.dumps(body).decode()
    return redact(text.strip(), *secrets)[:DETAIL_LIMIT]


class ApiRequests:
    """The HTTP side of a target: one pooled client, the governor, the request log, the anomaly notes."""

    def __init__(
        self,
        client: ShardedClient,
        base_url: str,
        api_key: str,
        requests: RequestLog,
        governor: Governor,
        *,
        timeout_s: float,
        clock: Callable[[], int],
        wall: Callable[[], float],
    ) -> None:
        self.client = client
        self.base_url = base_url
        self._api_key = api_key
        self._log = requests
        self.governor = governor
        self.timeout_s = timeout_s
        self._clock = clock
        self._wall = wall
        self._noted: set[str] = set()  # classes of bad answers already logged (each is logged once)
        self._urls: dict[object, httpx.URL] = {}  # see url

    def now_s(self) -> float:
        return self._clock() / NS_PER_S

    def url(self, path: str, params: Mapping[str, object] | None = None) -> httpx.URL:
        """The absolute URL of a path (and query), parsed once: httpx's merging of a relative path with the
        base URL and its parameters cost several times an absolute ``httpx.URL``."""
        key = (path, tuple(params.items())) if params else path
        url = self._urls.get(key)
        if url is None:
            url = httpx.URL(f"{self.base_url}{path}", params=params)
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()  # batch polls each have their own path: forget them all now and then
            self._urls[key] = url
        return url

    async def send(
        self, method: str, path: str, options: Mapping[str, Any], limit: int = BODY_LIMIT
    ) -> httpx.Response | Failed:
        """One attempt on the wire, answer included, within the request timeout.

        ``limit`` goes to the transport as the ``max_body_bytes`` extension: a transport that honours it reads
        at most one byte more than that and drops the connection, so a huge answer costs no more memory than
        the limit. One that does not reads the whole body first."""
        # A little later than the timeout, so that the clients' own timeouts fire first where they apply (a
        # connect timeout proves nothing was sent, this deadline cannot).
        with anyio.move_on_after(self.timeout_s * DEADLINE_SLACK):
            try:
                if "params" in options:
                    options = dict(options)
                    url = self.url(path, options.pop("params"))
                else:
                    url = self.url(path)
                return await self.client.request(method, url, extensions={MAX_BODY_EXTENSION: limit}, **options)
            except httpx.DecodingError as exc:
                # the body came but its Content-Encoding could not be undone: a garbled answer
                return Failed("remote_protocol", "bad_response", exc)
            except httpx.TransportError as exc:
                return Failed(transport_failure(exc), failure_label(exc), exc)
            except httpx.InvalidURL as exc:
                return Failed("connect_error", "invalid_url", exc)  # refused before anything was sent
        return Failed("read_timeout", None, None)

    async def request(
        self,
        kind: RequestKind,
        purpose: str,
        method: str,
        path: str,
        *,
        read: Callable[[Any], Read[T]] = as_is,
        limit: int = BODY_LIMIT,
        retry: bool = True,
        status_labels: Mapping[int, str] | None = None,
        **options: Any,
    ) -> Reply[T]:
        """One request through the governor, retried as it decides; a 2xx body is decoded and given to
        ``read``. Every attempt is counted once in ``requests``, with what was wrong with it if anything
        (``status_labels``: the class an answer of that status is counted under instead of ``http_<status>``)."""
        attempt = 0
        governor = self.governor
        while True:
            wait = governor.reserve(kind, self.now_s())
            if wait > 0:
                await anyio.sleep(wait)
            sent_wall = self._wall()
            sent = await self.send(method, path, options, limit)
            outcome: HttpOutcome | TransportFailure = (
                sent.failure if isinstance(sent, Failed) else HttpOutcome(sent.status_code, sent.headers)
            )
            answered_ns, answered_wall = self._clock(), self._wall()
            decision = governor.after_attempt(
                kind, outcome, attempt=attempt, now=answered_ns / NS_PER_S, now_wall=answered_wall, retry=retry
            )
            response = None if isinstance(sent, Failed) else sent
            value: T | None = None
            if isinstance(sent, Failed):
                label = sent.label or decision.cause
                self.note(Finding(label), method, path)
            elif decision.action == "done":
                got = self._read(sent, limit, read)
                value, label = got.value, got.label
                for finding in got.findings:
                    self.note(finding, method, path)
            else:
                label = outcome_label(sent.status_code)
                if status_labels is not None:
                    label = status_labels.get(sent.status_code, label)
            self._log.record_request(purpose, label)
            if decision.action != "retry" or not retry:
                return Reply(decision, response, sent_wall, answered_ns, answered_wall, label, value)
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

    def note(self, finding: Finding, method: str, path: str) -> None:
        """Log a class of bad answer the first time it happens; later ones are only counted."""
        explained = ANOMALIES.get(finding.kind)
        if explained is None or finding.kind in self._noted:
            return
        self._noted.add(finding.kind)
        # The detail quotes the server, which may echo the key it was sent: masked whole, then cut.
        detail = redact(finding.detail, self._api_key)[:DETAIL_LIMIT] if finding.detail else ""
        shown = f" ({detail})" if detail else ""
        line = f"stressor: {method} {path}: the server {explained}{shown} [{finding.kind}]"
        # the path too: it may hold an id the server gave
        logger.warning("%s; later ones are counted in the results, not logged", redact(line, self._api_key))

    async def get_json(
        self,
        purpose: str,
        path: str,
        params: dict[str, object] | None = None,
        *,
        read: Callable[[Any], Read[T]] = as_is,
        limit: int = BODY_LIMIT,
        retry: bool = False,
    ) -> tuple[T | None, int]:
        """A GET decoded and read; ``(None, t)`` on any failure. Polls are not retried (the next poll is
        their retry); a reconciliation is, since nothing may be sent again until it has an answer."""
        reply = await self.request("poll", purpose, "GET", path, read=read, limit=limit, retry=retry, params=params)
        return reply.value, reply.answered_ns
