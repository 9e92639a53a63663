"""Receiving the test-calls API's webhooks, so a run's end is known without polling: ``signature`` (V1 and V2,
replays), ``events`` (parsing, deduping), ``receiver`` (the ASGI app, with counters). ``server`` runs a receiver
with uvicorn; it is not re-exported here, so the pure parts load without uvicorn.
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
