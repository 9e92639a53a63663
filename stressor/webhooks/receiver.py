"""``WebhookReceiver``: a raw ASGI 3 app taking the test-calls API's webhooks (no framework).

Each delivery is read within a deadline, stamped, verified over its raw bytes, deduped, handed to ``on_event``
and counted in one outcome; after ``close()`` every delivery is refused with 503. The steps and their order:
docs/internals.md#webhook-receiver.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import orjson

from stressor.secrets import mask_secret
from stressor.webhooks.events import BadEvent, Deduper, UnknownEvent, WebhookEvent, parse_event
from stressor.webhooks.signature import DEFAULT_TOLERANCE_S, ReplayGuard, Verdict, verify

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_PATH = "/webhooks"
# from the request's head to its last body byte: a webhook body is a few hundred bytes, so a sender still
# sending after this long is stuck or hostile
DEFAULT_BODY_TIMEOUT_S = 10.0
_SHOWN_PATH = 120  # characters of a stray path quoted in a notice

EventCallback = Callable[[WebhookEvent, int], None]
Notice = Callable[[str], None]
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = ((b"content-type", b"application/json"),)
_CLOSE = (b"connection", b"close")


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """Counts since the receiver was made.

    ``received`` = ``accepted + duplicates + replayed + unknown_type + bad_json + bad_shape + too_large
    + incomplete + slow_body + wrong_path + callback_errors + sum(bad_signature.values())``.
    ``accepted_by_type`` counts processed events per type; ``rejected_route`` counts requests that were not
    deliveries (a method other than POST); ``refused_closed`` counts POSTs refused (503) after ``close()``.
    """

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    replayed: int = 0
    unknown_type: int = 0
    bad_json: int = 0
    bad_shape: int = 0
    too_large: int = 0
    incomplete: int = 0
    slow_body: int = 0
    wrong_path: int = 0
    callback_errors: int = 0
    rejected_route: int = 0
    refused_closed: int = 0
    bad_signature: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    accepted_by_type: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def bad_signature_total(self) -> int:
        """Deliveries refused with 401, whatever the reason."""
        return sum(self.bad_signature.values())


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


_NO_CONTENT = _Answer(204)
_UNAUTHORIZED = _Answer(401, b'{"detail":"invalid webhook signature"}', _JSON)
_NOT_FOUND = _Answer(404, b'{"detail":"Not found."}', _JSON)
_TOO_LARGE = _Answer(413, b'{"detail":"Request body too large."}', _JSON)
# the body is left half read: the connection cannot carry another request
_SLOW = _Answer(408, b'{"detail":"the request body did not arrive in time"}', (*_JSON, _CLOSE))
_CLOSED = _Answer(
    503,
    b'{"detail":"the stressor run is over: this receiver takes no more deliveries"}',
    (*_JSON, (b"retry-after", b"60"), _CLOSE),
)


@dataclass(frozen=True, slots=True)
class _Unread:
    """A body that was not read whole: ``reason`` is the counter (``too_large``, ``incomplete``, ``slow_body``)."""

    reason: str


class WebhookReceiver:
    """ASGI 3 app receiving signed webhooks on ``path`` (and ``public_url``'s path) and handing each new event to
    ``on_event``.

    ``secrets``: one or several ``whsec_...`` (rotation: any may match); never shown unmasked.
    ``clock_ns`` stamps ``received_ns`` (monotonic); ``wall`` gives epoch seconds for the V2 window.
    ``require_v2`` refuses V1-only deliveries. ``notice`` is told, once per kind, of deliveries that went
    astray, were cut or refused. Raises ValueError on an empty secret list or an empty secret, a path not
    starting with ``/``, or a public URL that is not http(s).
    """

    def __init__(
        self,
        secrets: Sequence[str] | str,
        on_event: EventCallback,
        *,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
        wall: Callable[[], float] = time.time,
        max_body: int = DEFAULT_MAX_BODY,
        path: str = DEFAULT_PATH,
        public_url: str | None = None,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        require_v2: bool = False,
        dedupe_keys: int = 100_000,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        notice: Notice | None = None,
    ) -> None:
        self._secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        if not self._secrets or not all(self._secrets):
            raise ValueError("a webhook receiver needs at least one non-empty secret")
        if max_body <= 0:
            raise ValueError("max_body must be positive")
        if not path.startswith("/"):
            raise ValueError(f"the webhook path must start with '/': {path!r}")
        if not math.isfinite(body_timeout_s) or body_timeout_s <= 0:
            raise ValueError(f"body_timeout_s must be a number of seconds above 0, not {body_timeout_s!r}")
        self.on_event = on_event
        self.clock_ns = clock_ns
        self.wall = wall
        self.max_body = max_body
        self.path = path
        self._public_target: bytes | None = None
        paths = [path]
        if public_url is not None:
            public_path, self._public_target = _public_target(public_url)
            paths.insert(0, public_path)
        #: the paths deliveries are taken at: the public URL's (what the sender posts to), then ``path``
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(paths))
        self.tolerance_s = tolerance_s
        self.require_v2 = require_v2
        self.body_timeout_s = body_timeout_s
        self.notice = notice
        self._replays = ReplayGuard(window_s=tolerance_s, max_entries=dedupe_keys)
        self._deduper = Deduper(max_keys=dedupe_keys)
        self._counts: Counter[str] = Counter()
        self._bad_signature: Counter[str] = Counter()
        self._by_type: Counter[str] = Counter()
        self._reading: set[anyio.CancelScope] = set()  # deliveries whose body is still arriving
        self._closed = False
        self._said: set[str] = set()

    def __repr__(self) -> str:
        masked = ", ".join(mask_secret(secret) for secret in self._secrets)
        return f"WebhookReceiver(paths={list(self.paths)!r}, secrets=[{masked}])"

    @property
    def closed(self) -> bool:
        """Whether ``close()`` took the figures (every delivery is refused since)."""
        return self._closed

    def stats(self) -> ReceiverStats:
        """A snapshot of the counters."""
        counts = self._counts
        return ReceiverStats(
            received=counts["received"],
            accepted=counts["accepted"],
            duplicates=counts["duplicates"],
            replayed=counts["replayed"],
            unknown_type=counts["unknown_type"],
            bad_json=counts["bad_json"],
            bad_shape=counts["bad_shape"],
            too_large=counts["too_large"],
            incomplete=counts["incomplete"],
            slow_body=counts["slow_body"],
            wrong_path=counts["wrong_path"],
            callback_errors=counts["callback_errors"],
            rejected_route=counts["rejected_route"],
            refused_closed=counts["refused_closed"],
            bad_signature=MappingProxyType(dict(self._bad_signature)),
            accepted_by_type=MappingProxyType(dict(self._by_type)),
        )

    def close(self) -> ReceiverStats:
        """Take the figures for good and return them: deliveries whose body is still arriving are counted as
        ``slow_body`` (and answered 503), every later POST is refused with 503. Idempotent."""
        if not self._closed:
            self._closed = True
            cut = len(self._reading)
            if cut:
                self._counts["slow_body"] += cut
                self._say(
                    "slow_body_at_close",
                    f"{_deliveries(cut)} still arriving when the run's figures were taken: answered 503 (the "
                    "sender retries) and counted as slow_body",
                )
            for scope in self._reading:
                scope.cancel()
        return self.stats()

    def _say(self, kind: str, message: str) -> None:
        if self.notice is not None and kind not in self._said:
            self._said.add(kind)
            self.notice(f"webhook receiver: {message}")

    # -- ASGI plumbing -------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point, HTTP only."""
        if scope["type"] != "http":
            # serve_receiver runs with lifespan off and no websockets; a server in lifespan "auto" mode
            # takes this exception as "lifespan unsupported" and carries on
            raise RuntimeError(f"WebhookReceiver serves HTTP only, not {scope['type']!r}")
        path, method = scope["path"], scope["method"]
        if method == "POST" and self._closed:
            self._counts["refused_closed"] += 1
            self._say(
                "refused_closed",
                "a delivery came after the run's figures were taken: answered 503 so that the sender retries it "
                "(it is in no figure; [grades] wait keeps the receiver open longer)",
            )
            await _send(send, _CLOSED)
            return
        if path not in self.paths:
            if method == "POST":
                self._counts["received"] += 1
                self._counts["wrong_path"] += 1
                self._say(
                    "wrong_path",
                    f"a delivery came to {path[:_SHOWN_PATH]!r}, which is not served (only "
                    f"{', '.join(self.paths)}): answered 404 and counted as wrong_path; make webhooks.public_url "
                    "the URL the sender posts to",
                )
            else:
                self._counts["rejected_route"] += 1
            await _send(send, _NOT_FOUND)
            return
        if method != "POST":
            self._counts["rejected_route"] += 1
            await _send(send, _Answer(405, b'{"detail":"Method not allowed."}', (*_JSON, (b"allow", b"POST"))))
            return
        self._counts["received"] += 1
        headers = _headers(scope["headers"])
        body = await self._read_in_time(headers, receive)
        if self._closed:
            # still arriving when close() took the figures, which counted it
            await _send(send, _CLOSED)
            return
        if isinstance(body, _Unread):
            self._counts[body.reason] += 1
            if body.reason == "too_large":
                await _send(send, _TOO_LARGE)
            elif body.reason == "slow_body":
                self._say(
                    "slow_body",
                    f"a delivery's body was not complete {self.body_timeout_s:g} s after its headers: answered 408 "
                    "(the sender retries) and counted as slow_body",
                )
                await _send(send, _SLOW)
            else:
                self._say("incomplete", "a sender went away before its body arrived whole: counted as incomplete")
            return
        received_ns = self.clock_ns()
        answer = self._deliver(headers, _target(scope), body, received_ns)
        await _send(send, answer)

    async def _read_in_time(self, headers: Mapping[str, str], receive: Receive) -> bytes | _Unread:
        """The body, unless it takes longer than ``body_timeout_s`` (or ``close()`` cuts it short)."""
        reading = anyio.CancelScope(deadline=anyio.current_time() + self.body_timeout_s)
        self._reading.add(reading)
        try:
            with reading:
                return await self._read_body(headers, receive)
        finally:
            self._reading.discard(reading)
        return _Unread("slow_body")

    async def _read_body(self, headers: Mapping[str, str], receive: Receive) -> bytes | _Unread:
        """The body; ``too_large`` when it exceeds the cap (the rest is left unread); ``incomplete`` when the
        client went away before sending all of it (a truncated body must not be judged)."""
        declared = headers.get("content-length", "").strip()
        if declared.isascii() and declared.isdigit():
            # compare lengths first: int() refuses strings of more than 4300 digits
            too_long = len(declared.lstrip("0")) > len(str(self.max_body)) or int(declared) > self.max_body
            if too_long:
                return _Unread("too_large")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _Unread("incomplete")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return _Unread("too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # -- one delivery, synchronously (no await: docs/internals.md#webhook-receiver) ------------------------

    def _verify(self, headers: Mapping[str, str], target: bytes, body: bytes, now_wall: float) -> Verdict:
        verdict = verify(
            headers, "POST", target, body, self._secrets, now_wall, self.tolerance_s, require_v2=self.require_v2
        )
        public = self._public_target
        if verdict.scheme == "v2" and verdict.reason == "mismatch" and public is not None and public != target:
            # signed for the public URL, received at another path: a reverse proxy rewrote it
            verdict = verify(
                headers, "POST", public, body, self._secrets, now_wall, self.tolerance_s, require_v2=self.require_v2
            )
        return verdict

    def _deliver(self, headers: Mapping[str, str], target: bytes, body: bytes, received_ns: int) -> _Answer:
        now_wall = self.wall()
        verdict = self._verify(headers, target, body, now_wall)
        if not verdict.ok:
            self._bad_signature[verdict.reason] += 1
            return _UNAUTHORIZED
        replay_key = None
        if verdict.timestamp is not None and verdict.signature is not None:
            replay_key = (verdict.timestamp, verdict.signature)
            if self._replays.seen(*replay_key, now_wall):
                self._counts["replayed"] += 1
                return _NO_CONTENT
        event = parse_event(body)
        if isinstance(event, BadEvent):
            self._counts[event.reason] += 1
            self._say(event.reason, f"refused a delivery (400, counted as {event.reason}): {event.message}")
            detail = orjson.dumps({"detail": f"{event.reason}: {event.message}"})
            return _Answer(400, detail, _JSON)
        if isinstance(event, UnknownEvent):
            self._counts["unknown_type"] += 1
        elif self._deduper.seen(event):
            self._counts["duplicates"] += 1
        else:
            processed = False
            try:
                self.on_event(event, received_ns)
                processed = True
            finally:
                if not processed:
                    self._counts["callback_errors"] += 1
            self._deduper.remember(event)
            self._counts["accepted"] += 1
            self._by_type[event.type] += 1
        if replay_key is not None:
            self._replays.remember(*replay_key, now_wall)
        return _NO_CONTENT


def _public_target(url: str) -> tuple[str, bytes]:
    """The path a delivery to ``url`` arrives at (decoded, as ASGI gives it) and the request target the
    sender signs (the raw path, plus ``?query`` when there is one)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the webhooks' public URL must be an http:// or https:// URL, not {url!r}")
    raw = parts.path or "/"
    target = f"{raw}?{parts.query}" if parts.query else raw
    return unquote(raw), target.encode("utf-8")


def _deliveries(count: int) -> str:
    return "1 delivery was" if count == 1 else f"{count} deliveries were"


def _headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased names; repeated lines joined with commas (RFC 9110 §5.3)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def _target(scope: Scope) -> bytes:
    """The request target as sent (what V2 signs): the raw path, plus ``?query`` when there is one."""
    raw_path = scope.get("raw_path")
    path: bytes = raw_path if isinstance(raw_path, bytes) else scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    return path + b"?" + query if query else path


async def _send(send: Send, answer: _Answer) -> None:
    headers = list(answer.headers)
    if answer.status != 204:  # a 204 must not carry Content-Length (RFC 9110 §8.6)
        headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
