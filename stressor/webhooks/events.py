"""The events a verified webhook body carries, and deduping the API's at-least-once deliveries.

``parse_event`` never raises: ``RunCompleted``, ``CallGraded``, ``UnknownEvent`` (counted, not an error) or
``BadEvent``. Which shapes are taken: docs/internals.md#webhook-events.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from stressor.scores import CALL_GRADED, BadEvent, CallGraded, call_graded, ident, text
from stressor.timestamps import parse_iso_or_none

RUN_COMPLETED = "test-call.completed"
#: Where ``test-call.completed`` nests its run: ``data.test_call_run`` (a run directly under ``data`` is read too).
RUN_KEY = "test_call_run"


@dataclass(frozen=True, slots=True)
class RunCompleted:
    """A run ended (``status`` is ``completed`` or ``failed``); stamps are epoch seconds from the server."""

    type: ClassVar[str] = RUN_COMPLETED

    run_id: str
    status: str
    created_at: float | None
    started_at: float | None
    completed_at: float | None
    error_message: str
    call_id: str | None
    batch_id: str | None

    @property
    def succeeded(self) -> bool:
        """The run ended ``completed`` (anything else, normally ``failed``, is a failure)."""
        return self.status == "completed"


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A well-formed delivery of a type stressor does not handle."""

    type: str


WebhookEvent = RunCompleted | CallGraded
ParsedBody = RunCompleted | CallGraded | UnknownEvent | BadEvent


def _run_completed(data: Mapping[str, Any]) -> RunCompleted | BadEvent:
    where = "data"
    if RUN_KEY in data:
        run = data[RUN_KEY]
        where = f"data.{RUN_KEY}"
        if not isinstance(run, dict):
            return BadEvent("bad_shape", f"{RUN_COMPLETED}: {where} is not an object (the run)")
        data = run
    elif "id" not in data and "status" not in data:
        return BadEvent(
            "bad_shape",
            f"{RUN_COMPLETED}: no run in the event: expected it under data.{RUN_KEY} (as the API docs' handler "
            "reads it) or directly under data, with an 'id' and a 'status'",
        )
    run_id = ident(data.get("id"))
    status = text(data.get("status"))
    if run_id is None or not status:
        return BadEvent("bad_shape", f"{RUN_COMPLETED}: {where} needs a run 'id' and a 'status'")
    return RunCompleted(
        run_id=run_id,
        status=status,
        created_at=parse_iso_or_none(data.get("created_at")),
        started_at=parse_iso_or_none(data.get("started_at")),
        completed_at=parse_iso_or_none(data.get("completed_at")),
        error_message=text(data.get("error_message")) or "",
        call_id=ident(data.get("call_id")),
        batch_id=ident(data.get("batch_id")),
    )


def parse_event(body: bytes) -> ParsedBody:
    """The event in a (verified) webhook body; never raises."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as bad:
        return BadEvent("bad_json", f"the body is not JSON ({bad})")
    if not isinstance(document, dict):
        return BadEvent("bad_shape", f"expected a JSON object, got {type(document).__name__}")
    kind = document.get("type")
    if not isinstance(kind, str) or not kind:
        return BadEvent("bad_shape", "the event has no 'type' string")
    if kind not in (RUN_COMPLETED, CALL_GRADED):
        return UnknownEvent(kind)
    data = document.get("data")
    if not isinstance(data, dict):
        return BadEvent("bad_shape", f"{kind}: 'data' is not an object")
    return _run_completed(data) if kind == RUN_COMPLETED else call_graded(data)


DedupeKey = tuple[str | float | None, ...]


def dedupe_key(event: WebhookEvent) -> DedupeKey:
    """What makes two deliveries "the same event".

    A run completes once, so its id is enough. A call may be graded twice (fast, then full), so a grade's key
    also holds its status, grader, time and score: an identical resend has the same key, a second grading
    (a different status, model, ``graded_at`` or score) does not.
    """
    if isinstance(event, RunCompleted):
        return (RUN_COMPLETED, event.run_id)
    return (
        CALL_GRADED,
        event.call_id,
        event.status,
        event.grader_model,
        event.graded_at,
        event.raw_score,
    )


class Deduper:
    """Remembers the last ``max_keys`` events seen (least recently seen dropped first).

    Deliveries are at-least-once: ``seen`` tells a duplicate, ``remember`` records an event once it was
    processed (so an event whose processing failed is processed when the sender retries). ``admit`` does
    both for callers that cannot fail in between. Events are independent: a grade arriving before its run's
    completion is admitted like any other.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys <= 0:
            raise ValueError("Deduper needs a positive max_keys")
        self.max_keys = max_keys
        self._keys: OrderedDict[DedupeKey, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, event: WebhookEvent) -> bool:
        """Whether the event was remembered before (a hit counts as a use for the LRU order)."""
        key = dedupe_key(event)
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        return False

    def remember(self, event: WebhookEvent) -> None:
        """Record a processed event, dropping the least recently seen key beyond ``max_keys``."""
        key = dedupe_key(event)
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def admit(self, event: WebhookEvent) -> bool:
        """True (and remembered) the first time an event is seen; False for a duplicate."""
        if self.seen(event):
            return False
        self.remember(event)
        return True
