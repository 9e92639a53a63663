"""Receiving the test-calls API's webhooks, so a run's end is known without polling.

- ``signature``: signing and verifying ``X-ThunderPhone-Signature`` (V1) and ``-V2``, replay detection.
- ``events``: parsing a verified body into ``RunCompleted`` / ``CallGraded``; deduping at-least-once deliveries.
- ``receiver``: ``WebhookReceiver``, a raw ASGI 3 app tying them together, with counters.
- ``server``: ``serve_receiver`` runs a receiver with uvicorn inside the caller's event loop (import it from
  ``stressor.webhooks.server``: it is not re-exported here, so the pure parts load without uvicorn).
"""

from __future__ import annotations

from stressor.webhooks.events import (
    BadEvent,
    CallGraded,
    Deduper,
    RunCompleted,
    UnknownEvent,
    WebhookEvent,
    dedupe_key,
    parse_event,
)
from stressor.webhooks.receiver import EventCallback, ReceiverStats, WebhookReceiver
from stressor.webhooks.signature import (
    V1_HEADER,
    V2_HEADER,
    ReplayGuard,
    Verdict,
    sign_v1,
    sign_v2,
    verify,
)

__all__ = [
    "V1_HEADER",
    "V2_HEADER",
    "BadEvent",
    "CallGraded",
    "Deduper",
    "EventCallback",
    "ReceiverStats",
    "ReplayGuard",
    "RunCompleted",
    "UnknownEvent",
    "Verdict",
    "WebhookEvent",
    "WebhookReceiver",
    "dedupe_key",
        "parse_event",
    "sign_v1",
    "sign_v2",
    "verify",
]
