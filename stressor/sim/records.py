"""Values the simulator's model takes in and hands out: validated requests, runs, batches, grades, events.

All are frozen; the model replaces a record on every transition. Times are epoch seconds on the server's clock
(ground-truth records hold true times). Ids are what the API writes (``SimConfig.ids``: integers from one
counter, or prefixed strings); ground truth writes them as text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

TargetType = Literal["agent", "phone_number"]
Direction = Literal["outbound", "inbound"]
Mode = Literal["bot", "sip"]
RunStatus = Literal["queued", "in_progress", "completed", "failed"]
BatchStatus = Literal["pending", "in_progress", "completed", "failed"]
Id = int | str
"""A run, batch or call id as the API writes it: a JSON integer or string (``SimConfig.ids``)."""
EventKind = Literal["batch.created", "run.created", "run.started", "run.ended", "batch.ended", "call.graded"]

TARGET_TYPES: tuple[str, ...] = ("agent", "phone_number")
DIRECTIONS: tuple[str, ...] = ("outbound", "inbound")
MODES: tuple[str, ...] = ("bot", "sip")
RUN_STATUSES: tuple[str, ...] = ("queued", "in_progress", "completed", "failed")
BATCH_STATUSES: tuple[str, ...] = ("pending", "in_progress", "completed", "failed")


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A validated request for one run (the body of ``POST /v1/test-calls``)."""

    target_type: TargetType
    target_id: int
    direction: Direction = "outbound"
    scenario_prompt: str = ""
    mode: Mode = "bot"
    target_number: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """A validated request for a batch (the body of ``POST /v1/test-call-batches``)."""

    run: RunRequest
    run_count: int = 3
    stagger_seconds: float = 5.0
    scenario_prompts: tuple[str, ...] = ()
    name: str = ""

    def prompt_for(self, index: int) -> str:
        """The scenario prompt of run ``index``: ``scenario_prompts`` cycled, else the single prompt."""
        if self.scenario_prompts:
            return self.scenario_prompts[index % len(self.scenario_prompts)]
        return self.run.scenario_prompt


@dataclass(frozen=True, slots=True)
class Grade:
    """The grader's verdict on a call. ``score`` is on 0..1 whatever the API's scale (the views write it as
    ``config.grade_scale`` asks), already rounded to what that scale can show; None until graded."""

    status: Literal["pending", "completed", "failed", "skipped_recording_disabled"]
    score: float | None
    call_outcome: Literal["success", "failure", "unknown", "no_conversation"]
    goal_achievement: str | None
    summary: str
    grader_model: str | None
    graded_at: float | None


@dataclass(frozen=True, slots=True)
class Run:
    """One test-call run as the model holds it.

    ``released`` is when the run became eligible for a slot (creation for single runs, creation + index x
    stagger for batch runs); ``duration_seconds`` is whole API seconds, set when the call ended, as is
    ``end_reason``. ``product`` is the target's tier and ``agent_version`` its behaviour version.
    """

    id: Id
    seq: int
    target_type: TargetType
    target_id: int
    direction: Direction
    target_number: str | None
    scenario_prompt: str
    mode: Mode
    status: RunStatus
    charge_multiplier: int
    estimated_cost_cents: int
    product: str
    created: float
    updated: float
    batch_id: Id | None = None
    batch_index: int | None = None
    released: float | None = None
    started: float | None = None
    completed: float | None = None
    call_id: Id | None = None
    sip_call_id: str | None = None
    error_message: str = ""
    duration_seconds: int | None = None
    grade: Grade | None = None
    agent_version: int = 1
    end_reason: str | None = None

    @property
    def ended(self) -> bool:
        """True once the run is ``completed`` or ``failed``."""
        return self.status in ("completed", "failed")

    @property
    def billable_minutes(self) -> int | None:
        """Started minutes of the ended call (at least 1), None before it ended."""
        if self.duration_seconds is None:
            return None
        return max(1, math.ceil(self.duration_seconds / 60))

    @property
    def billing_total_cents(self) -> int | None:
        """What the ended call cost: ``estimated_cost_cents`` (a test-call minute's price) per billable minute."""
        minutes = self.billable_minutes
        return None if minutes is None else minutes * self.estimated_cost_cents


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch of runs as the model holds it.

    Status rule: ``pending`` until its first run starts, then ``in_progress``; when every run has ended it is
    ``failed`` if every run failed, else ``completed`` (failed runs are counted in ``failed_runs``). ``name`` is
    the name as the server shows it (``SimConfig.batch_name``): None when it shows none at all; ``sent_name``
    the one the create carried (ground truth: which batches a client created twice).
    """

    id: Id
    seq: int
    name: str | None
    status: BatchStatus
    run_count: int
    stagger_seconds: float
    scenario_prompts: tuple[str, ...]
    total_runs: int
    completed_runs: int
    failed_runs: int
    estimated_cost_cents: int
    estimated_minutes: float
    run_ids: tuple[Id, ...]
    created: float
    updated: float
    started: float | None = None
    sent_name: str = ""
    completed: float | None = None
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class TruthRecord:
    """Ground truth of one run, at full precision (epoch seconds; None when it has not happened yet).

    ``grade_score`` is the final grade's score on 0..1 (None before the last grading, and for failed runs);
    ``webhook_delivered`` is when the run's ``test-call.completed`` webhook was first answered 2xx, and
    ``webhook_sent`` when that delivery was sent. ``shown_ended`` is when an answer (a run list page) first
    showed the run ended: the earliest a polling client could know. ``submit_arrived`` and ``submit_answered``
    are when the request that created the run reached the simulator and when its 201 was built. Every time is
    true (never shifted by ``clock_offset``); ids are in their text form.

    What the call log and grade say, to check a client's copy of them: ``product``, ``agent_version`` and
    ``prompt_change`` (what that version changes for the prompt: ``unchanged``, ``reworded``, ``regressed``),
    then once the call ended ``duration_seconds``, ``end_reason``, ``billing_total_cents``, and the final
    grade's ``call_outcome`` (with ``grade_score``).
    """

    id: str
    batch_id: str | None
    index: int | None
    scenario_prompt: str
    created: float
    released: float | None
    started: float | None
    completed: float | None
    status: RunStatus
    call_id: str | None = None
    grade_score: float | None = None
    webhook_delivered: float | None = None
    webhook_sent: float | None = None
    shown_ended: float | None = None
    submit_arrived: float | None = None
    submit_answered: float | None = None
    product: str | None = None
    agent_version: int | None = None
    prompt_change: str | None = None
    duration_seconds: int | None = None
    end_reason: str | None = None
    billing_total_cents: int | None = None
    call_outcome: str | None = None


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something that happened in the model, at epoch time ``at`` (on the server's clock); the webhook sender
    maps these to the API's events: ``run.ended`` -> ``test-call.completed``, ``call.graded`` (``run.grade`` is
    the new grade) -> ``call.graded``."""

    kind: EventKind
    at: float
    run: Run | None = None
    batch: Batch | None = None
