"""Webhooks sent by the simulator, as the test-calls API sends them (testcalls-api.md, Webhooks): signed
``test-call.completed`` and ``call.graded`` events, delivered at least once.

Pure parts: ``webhook_for``, ``signature_headers``, ``DeliveryPolicy`` (seeded loss, delay, reordering,
duplicates, retries). I/O: ``WebhookSender``. Details: docs/internals.md#simulator-webhooks.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import anyio
import httpx
import orjson

from stressor.http.wire import WireTransport
from stressor.sim.config import REORDER_WINDOW_S, SimConfig, WebhookPayload
from stressor.sim.model import SimModel
from stressor.sim.records import SimEvent
from stressor.sim.views import grade_object, run_json
from stressor.webhooks.events import CALL_GRADED, RUN_COMPLETED, RUN_KEY
from stressor.webhooks.signature import V1_HEADER, V2_HEADER, sign_v1, sign_v2

Headers = tuple[tuple[str, str], ...]

# Deliveries (and connections) at once: a sender slower than the client under test would show up in the
# client's detection delay.
MAX_IN_FLIGHT = 8
ATTEMPT_TIMEOUT_S = 5.0
USER_AGENT = "stressor-sim"
#: The counters of ``WebhookSender.snapshot`` (besides ``pending`` and ``delivered_by_type``).
COUNTED: tuple[str, ...] = (
    "events",
    "dropped",
    "attempts",
    "delivered",
    "retries",
    "failures",
    "gave_up",
    "duplicates",
)

_MIN_SLEEP_S = 0.001  # sleeping less than 1 ms busy-loops on some event loops


@dataclass(frozen=True, slots=True)
class Webhook:
    """One event to deliver: its type, its body (the exact bytes signed and sent), and for
    ``test-call.completed`` the run it reports (for ground truth)."""

    type: str
    body: bytes
    run_id: str | None = None


def event_body(event_type: str, data: object) -> bytes:
    """``{"type": ..., "data": ...}`` as compact JSON with sorted keys (at every level)."""
    return orjson.dumps({"type": event_type, "data": data}, option=orjson.OPT_SORT_KEYS)


def webhook_for(event: SimEvent, scale: int = 100, payload: WebhookPayload = "nested") -> Webhook | None:
    """The webhook a model event becomes, or None (creations, starts and batch events send none).
    ``payload`` places a completed run under ``data.test_call_run`` (``nested``) or as ``data`` (``flat``)."""
    run = event.run
    if run is None:
        return None
    if event.kind == "run.ended":
        shown = run_json(run, scale)
        data = {RUN_KEY: shown} if payload == "nested" else shown
        return Webhook(RUN_COMPLETED, event_body(RUN_COMPLETED, data), run.id)
    if event.kind == "call.graded" and run.grade is not None:
        data = {"call_id": run.call_id, "grade": grade_object(run.grade, scale)}
        return Webhook(CALL_GRADED, event_body(CALL_GRADED, data))
    return None


def request_target(url: str) -> str:
    """The request target an HTTP client sends for ``url`` (``/path?query``): what V2 signs."""
    return httpx.URL(url).raw_path.decode("ascii")


def signature_headers(secret: str, body: bytes, target: str, unix: int) -> Headers:
    """The headers of one delivery attempt: content type and both signatures (V2 over ``target`` at ``unix``)."""
    return (
        ("content-type", "application/json"),
        (V1_HEADER, sign_v1(secret, body)),
        (V2_HEADER, sign_v2(secret, unix, "POST", target, body)),
    )


class DeliveryPolicy:
    """The seeded draws of delivery: whether an event is lost, how long it waits before its first attempt,
    whether a delivered one is sent again, and how long to wait before each retry."""

    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng

    def first_delay(self) -> float | None:
        """Seconds from the event to its first attempt, or None when the event is lost."""
        config = self.config
        if config.webhook_drop_rate > 0 and self._rng.random() < config.webhook_drop_rate:
            return None
        delay = config.webhook_delay.sample(self._rng) if config.webhook_delay is not None else 0.0
        if config.webhook_reorder:
            delay += self._rng.uniform(0.0, REORDER_WINDOW_S)
        return delay

    def duplicate(self) -> bool:
        """Whether a delivered event is sent once more."""
        rate = self.config.webhook_duplicate_rate
        return rate > 0 and self._rng.random() < rate

    def retry_delay(self, failures: int) -> float | None:
        """Seconds before the next attempt after ``failures`` failed ones, or None: give up."""
        config = self.config
        if failures >= config.webhook_max_attempts:
            return None
        return min(config.webhook_retry_cap, config.webhook_retry_base * 2 ** (failures - 1))


@dataclass(frozen=True, slots=True)
class _Delivery:
    webhook: Webhook
    failures: int = 0
    copy: bool = False  # the deliberate second delivery of an event already delivered


class WebhookSender:
    """Delivers the model's events to ``config.webhook_url``: register ``on_event`` with
    ``model.add_listener`` and run ``run()`` as a task for as long as the simulator serves.

    ``clock`` is the model's monotonic clock; the V2 timestamp is the model's wall time of it. ``transport``
    carries the POSTs (default: stressor's own, over the network).
    """

    def __init__(
        self,
        model: SimModel,
        clock: Callable[[], float],
        *,
        rng: random.Random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        config = model.config
        if config.webhook_url is None or config.webhook_secret is None:
            raise ValueError("a webhook sender needs webhook_url and webhook_secret in the config")
        self.model = model
        self.clock = clock
        self.url = config.webhook_url
        self._secret = config.webhook_secret
        self._target = request_target(self.url)
        self._scale = config.grade_scale
        self._payload = config.webhook_payload
        self.policy = DeliveryPolicy(config, rng)
        self._transport = transport  # None: stressor's own transport, over the network
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._seq = itertools.count()
        self._wake: anyio.Event | None = None
        self._in_flight = 0
        self._counts: Counter[str] = Counter()
        self._delivered_by_type: Counter[str] = Counter()

    @classmethod
    def for_model(
        cls, model: SimModel, clock: Callable[[], float], *, transport: httpx.AsyncBaseTransport | None = None
    ) -> WebhookSender:
        """The sender for ``model``'s config, its draws seeded from the model's seed (a stream of their own)."""
        seed = model.seed if model.seed is not None else secrets.randbits(32)
        return cls(model, clock, rng=random.Random(f"webhooks:{seed}"), transport=transport)

    def __repr__(self) -> str:
        # the secret stays out of reprs and logs
        return f"WebhookSender(url={self.url!r})"

    def snapshot(self) -> dict[str, object]:
        """Counters: ``events`` (webhooks made), ``dropped`` (lost on purpose), ``attempts`` (POSTs sent),
        ``delivered`` (2xx answers, duplicates included), ``retries`` (attempts after a failed one),
        ``failures`` (non-2xx answers and transport errors), ``gave_up`` (deliveries abandoned after the last
        attempt), ``duplicates`` (second deliveries sent); ``pending`` (waiting or in flight) and
        ``delivered_by_type``."""
        counts: dict[str, object] = {name: self._counts[name] for name in COUNTED}
        counts["pending"] = len(self._heap) + self._in_flight
        counts["delivered_by_type"] = dict(sorted(self._delivered_by_type.items()))
        return counts

    # -- events in -----------------------------------------------------------------------------------------

    def on_event(self, event: SimEvent) -> None:
        """Model listener: queue the event's webhook (built now, so it shows the run as it was at that time)."""
        webhook = webhook_for(event, self._scale, self._payload)
        if webhook is None:
            return
        self._counts["events"] += 1
        delay = self.policy.first_delay()
        if delay is None:
            self._counts["dropped"] += 1
            return
        self._push(self.clock() + delay, _Delivery(webhook))

    def _push(self, due: float, delivery: _Delivery) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), delivery))
        if self._wake is not None:
            self._wake.set()

    # -- delivering ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver queued webhooks until cancelled."""
        limiter = anyio.CapacityLimiter(MAX_IN_FLIGHT)
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
        async with (
            httpx.AsyncClient(
                # stressor's own transport: httpx's pool costs far more CPU a request under load
                transport=self._transport or WireTransport(limits=limits),
                timeout=ATTEMPT_TIMEOUT_S,
                trust_env=False,
                headers={"user-agent": USER_AGENT},
            ) as client,
            anyio.create_task_group() as tasks,
        ):
            while True:
                # re-read the queue on every pass, so a wake-up set while we were busy is never lost
                self._wake = anyio.Event()
                now = self.clock()
                while self._heap and self._heap[0][0] <= now:
                    _, _, delivery = heapq.heappop(self._heap)
                    self._in_flight += 1
                    tasks.start_soon(self._attempt, client, limiter, delivery)
                timeout = max(self._heap[0][0] - now, _MIN_SLEEP_S) if self._heap else math.inf
                with anyio.move_on_after(timeout):
                    await self._wake.wait()

    async def _attempt(self, client: httpx.AsyncClient, limiter: anyio.CapacityLimiter, delivery: _Delivery) -> None:
        try:
            async with limiter:
                self._counts["attempts"] += 1
                if delivery.failures:
                    self._counts["retries"] += 1
                elif delivery.copy:
                    self._counts["duplicates"] += 1
                body = delivery.webhook.body
                sent = self.clock()
                unix = int(self.model.wall(sent))
                headers = signature_headers(self._secret, body, self._target, unix)
                try:
                    response = await client.post(self.url, content=body, headers=headers)
                    delivered = 200 <= response.status_code < 300
                except httpx.RequestError:
                    # transport errors, timeouts, and answers that cannot be read: all "not delivered"
                    delivered = False
        finally:
            self._in_flight -= 1
        if delivered:
            self._on_delivered(delivery, sent)
        else:
            self._on_failed(delivery)

    def _on_delivered(self, delivery: _Delivery, sent: float) -> None:
        webhook = delivery.webhook
        self._counts["delivered"] += 1
        self._delivered_by_type[webhook.type] += 1
        if webhook.run_id is not None:
            self.model.record_webhook_delivered(webhook.run_id, self.clock(), sent)
        if not delivery.copy and self.policy.duplicate():
            self._push(self.clock(), _Delivery(webhook, copy=True))

    def _on_failed(self, delivery: _Delivery) -> None:
        self._counts["failures"] += 1
        failures = delivery.failures + 1
        delay = self.policy.retry_delay(failures)
        if delay is None:
            self._counts["gave_up"] += 1
            return
        self._push(self.clock() + delay, replace(delivery, failures=failures))
