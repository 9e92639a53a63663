"""``WebhookReceiver``: a raw ASGI 3 app taking the test-calls API's webhooks (no framework).

For each ``POST <path>``, in this order:

1. read the body, at most ``max_body`` bytes (413 beyond, without reading the rest);
2. stamp ``received_ns`` on the monotonic clock: the moment the last body byte arrived is when stressor
   "knew" (the headers alone do not say which run ended), and stamping before verifying and parsing keeps
   stressor's own processing out of the detection delay;
3. verify the signature over the raw bytes, **before** anything parses them (401, counted by reason);
4. a V2 delivery already processed (same ``t`` and signature: a resend or a replay, the same bytes either
   way) is answered 204 and counted as ``replayed``, without parsing it again;
5. parse (400 on bad JSON or a wrong shape; an unknown type is counted and answered 204);
6. dedupe by event (``Deduper``): a duplicate is counted and answered 204 so the sender stops retrying;
7. call ``on_event(event, received_ns)``, then remember the event, and answer 204.

Steps 3 to 7 run without an ``await``, so two concurrent copies of one delivery cannot both be processed. If
``on_event`` raises, nothing is remembered and the exception propagates (the server answers 500), so the
sender's retry is processed. ``on_event`` runs on the event loop: keep it short (hand work off to a stream).

Every delivery (a POST to the path) is counted in ``received`` and in exactly one outcome; ``stats()`` gives a
frozen snapshot.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from stressor.secrets import mask_secret
from stressor.webhooks.events import BadEvent, Deduper, UnknownEvent, WebhookEvent, parse_event
from stressor.webhooks.signature import DEFAULT_TOLERANCE_S, ReplayGuard, verify

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_PATH = "/webhooks"

EventCallback = Callable[[WebhookEvent, int], None]
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = ((b"content-type", b"application/json"),)


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """Counts since the receiver was made.

    ``received`` = ``accepted + duplicates + replayed + unknown_type + bad_json + bad_shape + too_large
    + incomplete + callback_errors + sum(bad_signature.values())``. ``accepted_by_type`` counts processed
    events per type; ``rejected_route`` counts requests that were not deliveries (404, 405).
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
    callback_errors: int = 0
    rejected_route: int = 0
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


class WebhookReceiver:
    """ASGI 3 app receiving signed webhooks on ``path`` and handing each new event to ``on_event``.

    ``secrets``: one or several ``whsec_...`` (rotation: any may match); never shown unmasked.
    ``clock_ns`` stamps ``received_ns`` (monotonic); ``wall`` gives epoch seconds for the V2 window.
    ``require_v2`` refuses V1-only deliveries. Raises ValueError on an empty secret list or an empty secret.
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
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        require_v2: bool = False,
        dedupe_keys: int = 100_000,
    ) -> None:
        self._secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        if not self._secrets or not all(self._secrets):
            raise ValueError("a webhook receiver needs at least one non-empty secret")
        if max_body <= 0:
            raise ValueError("max_body must be positive")
        if not path.startswith("/"):
            raise ValueError(f"the webhook path must start with '/': {path!r}")
        self.on_event = on_event
        self.clock_ns = clock_ns
        self.wall = wall
        self.max_body = max_body
        self.path = path
        self.tolerance_s = tolerance_s
        self.require_v2 = require_v2
        self._replays = ReplayGuard(window_s=tolerance_s, max_entries=dedupe_keys)
        self._deduper = Deduper(max_keys=dedupe_keys)
        self._counts: Counter[str] = Counter()
        self._bad_signature: Counter[str] = Counter()
        self._by_type: Counter[str] = Counter()

    def __repr__(self) -> str:
        masked = ", ".join(mask_secret(secret) for secret in self._secrets)
        return f"WebhookReceiver(path={self.path!r}, secrets=[{masked}])"

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
            callback_errors=counts["callback_errors"],
            rejected_route=counts["rejected_route"],
            bad_signature=MappingProxyType(dict(self._bad_signature)),
            accepted_by_type=MappingProxyType(dict(self._by_type)),
        )

    # -- ASGI plumbing -------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point, HTTP only."""
        if scope["type"] != "http":
            # serve_receiver runs with lifespan off and no websockets; a server in lifespan "auto" mode
            # takes this exception as "lifespan unsupported" and carries on
            raise RuntimeError(f"WebhookReceiver serves HTTP only, not {scope['type']!r}")
        if scope["path"] != self.path:
            self._counts["rejected_route"] += 1
            await _send(send, _Answer(404, b'{"detail":"Not found."}', _JSON))
            return
        if scope["method"] != "POST":
            self._counts["rejected_route"] += 1
            await _send(send, _Answer(405, b'{"detail":"Method not allowed."}', (*_JSON, (b"allow", b"POST"))))
            return
        self._counts["received"] += 1
        headers = _headers(scope["headers"])
        body = await self._read_body(headers, receive)
        if body is None:
            self._counts["too_large"] += 1
            await _send(send, _Answer(413, b'{"detail":"Request body too large."}', _JSON))
            return
        if isinstance(body, _Disconnected):
            self._counts["incomplete"] += 1
            return
        received_ns = self.clock_ns()
        answer = self._deliver(headers, _target(scope), body, received_ns)
        await _send(send, answer)

    async def _read_body(self, headers: Mapping[str, str], receive: Receive) -> bytes | _Disconnected | None:
        """The body; None when it exceeds the cap (the rest is left unread); ``_Disconnected`` when the
        client went away before sending all of it (a truncated body must not be judged)."""
        declared = headers.get("content-length", "").strip()
        if declared.isascii() and declared.isdigit():
            # compare lengths first: int() refuses strings of more than 4300 digits
            too_long = len(declared.lstrip("0")) > len(str(self.max_body)) or int(declared) > self.max_body
            if too_long:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _Disconnected()
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # -- one delivery, synchronously (no await: see the module notes) --------------------------------------

    def _deliver(self, headers: Mapping[str, str], target: bytes, body: bytes, received_ns: int) -> _Answer:
        now_wall = self.wall()
        verdict = verify(
            headers,
            "POST",
            target,
            body,
            self._secrets,
            now_wall,
            self.tolerance_s,
            require_v2=self.require_v2,
        )
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
            return _Answer(400, b'{"detail":"' + event.reason.encode() + b'"}', _JSON)
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


@dataclass(frozen=True, slots=True)
class _Disconnected:
    """The client disconnected mid-body."""


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
