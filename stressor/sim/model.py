"""The pure model of the test-calls API: org slots, a FIFO queue, call durations, failures, grades.

No I/O and no clock of its own: every method that can change state takes ``now`` (monotonic seconds), and an
event heap makes each change at its own time. Seeded: a call's draws are fixed by (seed, prompt, its rank among
that target's runs of the prompt), so tiers and agent versions differ by their effect alone. The life cycle it
follows: docs/internals.md#simulator-model.
"""

from __future__ import annotations

import heapq
import itertools
import random
import secrets
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Reversible
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from stressor.sim.agents import REGRESSED_GRADE_SHIFT, prompt_change
from stressor.sim.config import SimConfig
from stressor.sim.draws import stable_uniforms
from stressor.sim.records import (
    Batch,
    BatchRequest,
    Grade,
    Id,
    Run,
    RunRequest,
    RunStatus,
    SimEvent,
    TruthRecord,
)

EventListener = Callable[[SimEvent], None]
_Item = TypeVar("_Item")

#: How a failed run can fail: its message, in the platform's style, and its call's ``end_reason``.
FAILURES: tuple[tuple[str, str], ...] = (
    ("Call failed: the agent did not answer within 30 seconds.", "no_answer"),
    ("Call dropped: SIP trunk returned 503 Service Unavailable.", "error"),
    ("Call ended early: no audio received from the agent for 20 seconds.", "error"),
    ("Call failed: the agent's LLM request timed out.", "error"),
    ("Call failed: media stream disconnected unexpectedly.", "error"),
)
FAILURE_MESSAGES: tuple[str, ...] = tuple(message for message, _ in FAILURES)
#: Below this 0..1 score a graded call's outcome is ``failure``.
SUCCESS_SCORE = 0.6

GRADER_MODEL = "sim-grader-1"
FAST_GRADER_MODEL = "fast"

_Kind = Literal["release", "end", "grade"]
# how far a fast grade's score lies from the full one's (0..1 scale): different, but in the same region
_FAST_OFFSET = (0.05, 0.15)
# least real seconds between a fast grade and the full one: more than the API stamps' 1 ms resolution
FULL_GRADE_GAP_S = 0.01
# where integer ids start (at random): four to six digits, like the docs' 7110
INT_ID_START = (1_000, 1_000_000)


@dataclass(frozen=True, slots=True)
class _Fate:
    """What was decided when a call started; kept private until the call ends. ``score`` is the full grade's
    (0..1, on the API's scale), ``fast_offset`` how far the fast grade lies from it."""

    started_at: float
    ends_at: float
    failed: bool
    error_message: str
    end_reason: str
    score: float
    fast_offset: float


class SimModel:
    """State of one simulated org: runs, batches, their calls, and the events still to come."""

    def __init__(self, config: SimConfig, *, wall_at_zero: float, rng: random.Random | None = None) -> None:
        """``wall_at_zero`` is the true epoch time of monotonic 0 (stamps are ``wall_at_zero + clock_offset +
        now``). ``rng`` defaults to ``random.Random(config.seed)``; with no seed one is picked at random and
        kept in ``seed``.
        """
        self._config = config
        self._wall_at_zero = wall_at_zero
        self._offset = float(config.clock_offset)
        self._server_zero = wall_at_zero + self._offset
        if rng is None:
            self._seed: int | None = config.seed if config.seed is not None else secrets.randbits(32)
            rng = random.Random(self._seed)
        else:
            self._seed = config.seed
        self._id_rng = random.Random(rng.getrandbits(64))
        # the base of every call's own draws (see the module); an injected rng without a seed gives one
        self._draw_seed = self._seed if self._seed is not None else rng.getrandbits(64)
        self._occurrences: dict[tuple[str, int, str], int] = {}  # (target type, id, prompt) -> runs so far
        self._draw_index: dict[Id, int] = {}  # run id -> how many runs of its prompt its target had before
        self._ids: set[Id] = set()
        self._int_ids = itertools.count(self._id_rng.randrange(*INT_ID_START)) if config.ids == "int" else None
        self._seq = itertools.count()
        self._runs: dict[Id, Run] = {}
        self._batches: dict[Id, Batch] = {}
        self._calls: dict[Id, Id] = {}  # call id -> run id
        self._heap: list[tuple[float, int, _Kind, Id]] = []
        self._queue: deque[Id] = deque()
        self._fates: dict[Id, _Fate] = {}
        self._grades: dict[Id, deque[Grade]] = {}  # run id -> grades still to come, in time order
        # ground truth below is in true epoch seconds (never shifted by clock_offset)
        self._webhook_delivered: dict[Id, float] = {}  # run id -> epoch of the first 2xx delivery
        self._webhook_sent: dict[Id, float] = {}  # run id -> epoch that delivery was sent
        self._shown_ended: dict[Id, float] = {}  # run id -> epoch of the first list answer showing it ended
        self._submits: dict[Id, tuple[float, float]] = {}  # run id -> epochs its create arrived, was answered
        self._now = float("-inf")
        self._listeners: list[EventListener] = []

    # -- reading -------------------------------------------------------------------------------------------

    @property
    def config(self) -> SimConfig:
        """The settings this model runs with."""
        return self._config

    @property
    def seed(self) -> int | None:
        """The seed in use (None only when a ready-made ``rng`` was injected without ``config.seed``)."""
        return self._seed

    @property
    def wall_at_zero(self) -> float:
        """True epoch seconds of monotonic time 0."""
        return self._wall_at_zero

    @property
    def in_progress_count(self) -> int:
        """Runs holding a slot right now."""
        return len(self._fates)

    @property
    def queued_count(self) -> int:
        """Released runs waiting for a slot (runs not yet released are not counted)."""
        return len(self._queue)

    def wall(self, now: float) -> float:
        """Epoch seconds the server's clock reads at monotonic time ``now`` (``clock_offset`` ahead of the true
        time): what every stamp, ``Date`` and HTTP-date the server writes is made from."""
        return self._server_zero + now

    def true_wall(self, now: float) -> float:
        """True epoch seconds of monotonic time ``now``: the time of ground truth."""
        return self._wall_at_zero + now

    def _true(self, stamp: float) -> float:
        """A stamp on the server's clock as a true time (exact with no offset, to a float's ulp with one)."""
        return stamp - self._offset if self._offset else stamp

    def parse_id(self, text: str) -> Id | None:
        """The id a path parameter names (its text form), or None when no id of this server looks like it."""
        if self._int_ids is None:
            return text
        # ASCII digits only: int() also takes "+7", " 7", "٧" and "7_1", which no integer id is written as
        return int(text) if text.isascii() and text.isdigit() else None

    def _key(self, value: Id) -> Id | None:
        # lookups take an id as the API writes it or in its text form (as ground truth and clients hold it)
        return self.parse_id(value) if isinstance(value, str) else value

    def next_event_time(self) -> float | None:
        """Monotonic time of the earliest pending event (may be <= the last ``now``), or None when idle."""
        return self._heap[0][0] if self._heap else None

    def get_run(self, run_id: Id) -> Run | None:
        """The run with this id (as the API writes it, or its text form), or None."""
        return self._runs.get(self._key(run_id))

    def get_batch(self, batch_id: Id) -> Batch | None:
        """The batch with this id (as the API writes it, or its text form), or None."""
        return self._batches.get(self._key(batch_id))

    def run_for_call(self, call_id: Id) -> Run | None:
        """The run whose call has this id (as the API writes it, or its text form), or None."""
        run_id = self._calls.get(self._key(call_id))
        return self._runs[run_id] if run_id is not None else None

    def list_runs(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        target_type: str | None = None,
        status: str | None = None,
        agent_id: int | None = None,
    ) -> list[Run]:
        """Runs in the list's order (``config.list_order``), filtered, one page (see ``_page``). ``agent_id``
        selects runs whose target is that agent."""

        def wanted(run: Run) -> bool:
            if target_type is not None and run.target_type != target_type:
                return False
            if status is not None and run.status != status:
                return False
            return agent_id is None or (run.target_type == "agent" and run.target_id == agent_id)

        return self._page(self._runs.values(), wanted, limit=limit, offset=offset)

    def list_batches(self, *, limit: int = 50, offset: int = 0) -> list[Batch]:
        """Batches in the list's order, one page (see ``_page``)."""
        return self._page(self._batches.values(), lambda _: True, limit=limit, offset=offset)

    def list_calls(self, *, limit: int = 50, offset: int = 0) -> tuple[list[Run], int]:
        """Runs that have a call, in the list's order of their calls' starts, one page (see ``_page``); and how
        many calls there are in all."""
        run_ids = self._page(self._calls.values(), lambda _: True, limit=limit, offset=offset)
        return [self._runs[run_id] for run_id in run_ids], len(self._calls)

    def _page(
        self, oldest_first: Reversible[_Item], wanted: Callable[[_Item], bool], *, limit: int, offset: int
    ) -> list[_Item]:
        """One page of a list as this server pages: ``config.list_order``, ``offset`` unless
        ``config.list_offset`` ignores it, and at most ``config.page_cap`` items whatever ``limit`` asks."""
        config = self._config
        ordered = reversed(oldest_first) if config.list_order == "newest" else iter(oldest_first)
        if config.list_offset == "ignored":
            offset = 0
        if config.page_cap is not None:
            limit = min(limit, config.page_cap)
        # no list holds sys.maxsize items: an offset that far is past the end (and islice refuses a bigger one)
        offset = min(offset, sys.maxsize - limit)
        matching = (item for item in ordered if wanted(item))
        return list(itertools.islice(matching, offset, offset + limit))

    def runs(self) -> Iterator[Run]:
        """Every run, oldest first."""
        return iter(self._runs.values())

    def status_counts(self) -> dict[RunStatus, int]:
        """How many runs are in each status."""
        counts: dict[RunStatus, int] = {"queued": 0, "in_progress": 0, "completed": 0, "failed": 0}
        for run in self._runs.values():
            counts[run.status] += 1
        return counts

    def truth(self) -> list[TruthRecord]:
        """One ground-truth record per run, oldest first: true times, ids in their text form."""
        return [
            TruthRecord(
                id=str(run.id),
                batch_id=_text(run.batch_id),
                index=run.batch_index,
                scenario_prompt=run.scenario_prompt,
                created=self._true(run.created),
                released=self._optional_true(run.released),
                started=self._optional_true(run.started),
                completed=self._optional_true(run.completed),
                status=run.status,
                call_id=_text(run.call_id),
                grade_score=self._final_score(run),
                webhook_delivered=self._webhook_delivered.get(run.id),
                webhook_sent=self._webhook_sent.get(run.id),
                shown_ended=self._shown_ended.get(run.id),
                submit_arrived=self._submits.get(run.id, (None, None))[0],
                submit_answered=self._submits.get(run.id, (None, None))[1],
                product=run.product,
                agent_version=run.agent_version,
                prompt_change=prompt_change(run.scenario_prompt, run.agent_version),
                duration_seconds=run.duration_seconds,
                end_reason=run.end_reason,
                billing_total_cents=run.billing_total_cents,
                call_outcome=self._final_outcome(run),
            )
            for run in self._runs.values()
        ]

    def _optional_true(self, stamp: float | None) -> float | None:
        return None if stamp is None else self._true(stamp)

    def _final_score(self, run: Run) -> float | None:
        if run.grade is None or run.grade.status != "completed" or self._grades.get(run.id):
            return None
        return run.grade.score

    def _final_outcome(self, run: Run) -> str | None:
        if run.grade is None or run.grade.status == "pending" or self._grades.get(run.id):
            return None
        return run.grade.call_outcome

    # -- events out ----------------------------------------------------------------------------------------

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener`` synchronously with every event, in time order (creations, starts, ends)."""
        self._listeners.append(listener)

    def _emit(self, events: list[SimEvent], event: SimEvent) -> None:
        events.append(event)
        for listener in self._listeners:
            listener(event)

    # -- changing ------------------------------------------------------------------------------------------

    def advance(self, now: float) -> list[SimEvent]:
        """Process every pending event due at or before ``now``, each at its own time; return what happened.

        Time never goes back: a ``now`` earlier than one already seen counts as that one.
        """
        now = max(now, self._now)
        self._now = now
        events: list[SimEvent] = []
        while self._heap and self._heap[0][0] <= now:
            at, _, kind, run_id = heapq.heappop(self._heap)
            if kind == "release":
                self._release(run_id, at, events)
            elif kind == "end":
                self._end(run_id, at, events)
            else:
                self._apply_grade(run_id, at, events)
        return events

    def record_webhook_delivered(self, run_id: Id, now: float, sent: float | None = None) -> None:
        """Note that the run's ``test-call.completed`` webhook, sent at ``sent`` (default ``now``), was
        answered 2xx at ``now`` (the first time counts; later deliveries, duplicates included, change
        nothing). Unknown ids are ignored."""
        run = self.get_run(run_id)
        if run is not None and run.id not in self._webhook_delivered:
            run_id = run.id
            self._webhook_delivered[run_id] = self.true_wall(max(now, self._now))
            self._webhook_sent[run_id] = self.true_wall(now if sent is None else sent)

    def record_shown(self, runs: Iterable[Run], now: float) -> None:
        """Note that an answer built at ``now`` showed ``runs``: the first answer to show a run ended is the
        earliest a polling client could have known it ended (the truth of its detection delay)."""
        stamp = self.true_wall(max(now, self._now))
        for run in runs:
            if run.ended and run.id not in self._shown_ended:
                self._shown_ended[run.id] = stamp

    def record_submit(self, run_ids: Iterable[Id], arrived: float, answered: float) -> None:
        """Note that the request that created ``run_ids`` arrived at ``arrived`` and was answered (201) at
        ``answered``: the server's share of the client's submit round trip. Unknown ids are ignored."""
        times = (self.true_wall(arrived), self.true_wall(answered))
        for run_id in run_ids:
            if run_id in self._runs:
                self._submits.setdefault(run_id, times)

    def create_run(self, request: RunRequest, now: float) -> Run:
        """Create one ``queued`` run, released at once (it starts at the next ``advance`` if a slot is
        free)."""
        self.advance(now)
        now = self._now
        run = self._new_run(request, request.scenario_prompt, now, batch_id=None, index=None)
        events: list[SimEvent] = []
        self._emit(events, SimEvent("run.created", run.created, run=run))
        self._schedule(now, "release", run.id)
        return run

    def create_batch(self, request: BatchRequest, now: float) -> Batch:
        """Create a ``pending`` batch and all its ``queued`` runs; run i is released at now + i * stagger."""
        self.advance(now)
        now = self._now
        created = self.wall(now)
        batch_id = self._new_id("tcb_")
        runs = [
            self._new_run(request.run, request.prompt_for(index), now, batch_id=batch_id, index=index)
            for index in range(request.run_count)
        ]
        config = self._config
        factor = config.tier_of(request.run.target_type, request.run.target_id).duration_factor
        batch = Batch(
            id=batch_id,
            seq=next(self._seq),
            name=self._shown_name(request.name),
            sent_name=request.name,
            status="pending",
            run_count=request.run_count,
            stagger_seconds=request.stagger_seconds,
            scenario_prompts=request.scenario_prompts,
            total_runs=request.run_count,
            completed_runs=0,
            failed_runs=0,
            estimated_cost_cents=request.run_count * config.estimated_cost_cents,
            estimated_minutes=round(request.run_count * config.call_duration.mean * factor / 60, 1),
            run_ids=tuple(run.id for run in runs),
            created=created,
            updated=created,
        )
        self._batches[batch_id] = batch
        events: list[SimEvent] = []
        self._emit(events, SimEvent("batch.created", created, batch=batch))
        for index, run in enumerate(runs):
            self._emit(events, SimEvent("run.created", created, run=run))
            self._schedule(now + index * request.stagger_seconds, "release", run.id)
        return batch

    # -- internals -----------------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> Id:
        if self._int_ids is not None:
            return next(self._int_ids)
        while True:
            candidate = f"{prefix}{self._id_rng.getrandbits(64):016x}"
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def _shown_name(self, name: str) -> str | None:
        """A batch's name as this server keeps it (``config.batch_name``)."""
        form = self._config.batch_name
        if form == "absent":
            return None
        return name[: self._config.batch_name_length] if form == "truncated" else name

    def _new_run(self, request: RunRequest, prompt: str, now: float, *, batch_id: Id | None, index: int | None) -> Run:
        created = self.wall(now)
        config = self._config
        run = Run(
            id=self._new_id("tc_"),
            seq=next(self._seq),
            target_type=request.target_type,
            target_id=request.target_id,
            direction=request.direction,
            target_number=request.target_number,
            scenario_prompt=prompt,
            mode=request.mode,
            status="queued",
            charge_multiplier=self._config.charge_multiplier,
            estimated_cost_cents=self._config.estimated_cost_cents,
            product=config.tier_of(request.target_type, request.target_id).product,
            agent_version=config.version_of(request.target_type, request.target_id),
            created=created,
            updated=created,
            batch_id=batch_id,
            batch_index=index,
        )
        self._runs[run.id] = run
        occurrence = (request.target_type, request.target_id, prompt)
        self._draw_index[run.id] = self._occurrences.get(occurrence, 0)
        self._occurrences[occurrence] = self._draw_index[run.id] + 1
        return run

    def _schedule(self, at: float, kind: _Kind, run_id: Id) -> None:
        # the sequence number keeps equal times in the order they were scheduled (FIFO among ties)
        heapq.heappush(self._heap, (at, next(self._seq), kind, run_id))

    def _release(self, run_id: Id, at: float, events: list[SimEvent]) -> None:
        run = self._runs[run_id]
        self._runs[run_id] = replace(run, released=self.wall(at))
        self._queue.append(run_id)
        self._fill_slots(at, events)

    def _fill_slots(self, at: float, events: list[SimEvent]) -> None:
        while self._queue and len(self._fates) < self._config.slots:
            self._start(self._queue.popleft(), at, events)

    def _draw_fate(self, run: Run, at: float) -> _Fate:
        """The call's length, failure and grade, from uniforms of its own (see the module), one per draw, so
        changing one setting does not move another's draws."""
        config = self._config
        tier = config.tier_of(run.target_type, run.target_id)
        failure_u, message_u, length_u, score_u, fast_u, sign_u = stable_uniforms(
            6, "call", self._draw_seed, self._draw_index.pop(run.id), run.scenario_prompt
        )
        failed = failure_u < config.failure_rate
        message, failure_reason = FAILURES[int(message_u * len(FAILURES))]
        api_seconds = config.call_duration.quantile(length_u) * tier.duration_factor
        low, high = _FAST_OFFSET
        fast_offset = (low + (high - low) * fast_u) * (1 if sign_u < 0.5 else -1)
        change = prompt_change(run.scenario_prompt, run.agent_version)
        shift = tier.grade_shift + (REGRESSED_GRADE_SHIFT if change == "regressed" else 0.0)
        score = self._score(config.grade_score.quantile(score_u) + shift)
        if failed:
            end_reason = failure_reason
        elif score >= SUCCESS_SCORE:
            end_reason = "completed"
        else:  # a regressed agent gives up on the caller; otherwise the unhappy caller hangs up
            end_reason = "agent_hung_up" if change == "regressed" else "caller_hung_up"
        return _Fate(
            started_at=at,
            ends_at=at + api_seconds * config.time_scale,
            failed=failed,
            error_message=message if failed else "",
            end_reason=end_reason,
            score=score,
            fast_offset=fast_offset,
        )

    def _start(self, run_id: Id, at: float, events: list[SimEvent]) -> None:
        run = self._runs[run_id]
        fate = self._fates[run_id] = self._draw_fate(run, at)
        stamp = self.wall(at)
        call_id = self._new_id("call_")
        sip_call_id = f"{self._id_rng.getrandbits(96):024x}@sip.sim.invalid" if run.mode == "sip" else None
        run = replace(
            run,
            status="in_progress",
            started=stamp,
            updated=stamp,
            call_id=call_id,
            sip_call_id=sip_call_id,
            grade=Grade(
                status="pending",
                score=None,
                call_outcome="unknown",
                goal_achievement=None,
                summary="",
                grader_model=None,
                graded_at=None,
            ),
        )
        self._runs[run_id] = run
        self._calls[call_id] = run_id
        self._schedule(fate.ends_at, "end", run_id)
        self._emit(events, SimEvent("run.started", stamp, run=run))
        if run.batch_id is not None:
            batch = self._batches[run.batch_id]
            if batch.status == "pending":
                self._batches[batch.id] = replace(batch, status="in_progress", started=stamp, updated=stamp)

    def _end(self, run_id: Id, at: float, events: list[SimEvent]) -> None:
        fate = self._fates.pop(run_id)
        stamp = self.wall(at)
        duration = round((fate.ends_at - fate.started_at) / self._config.time_scale)
        status: RunStatus = "failed" if fate.failed else "completed"
        run = replace(
            self._runs[run_id],
            status=status,
            completed=stamp,
            updated=stamp,
            error_message=fate.error_message,
            duration_seconds=duration,
            end_reason=fate.end_reason,
        )
        if fate.failed:
            run = replace(run, grade=_failed_grade(stamp))
        else:
            self._schedule_grades(run_id, at, fate)
        self._runs[run_id] = run
        self._emit(events, SimEvent("run.ended", stamp, run=run))
        if run.batch_id is not None:
            self._count_in_batch(run.batch_id, run.status, stamp, events)
        self._fill_slots(at, events)

    def _count_in_batch(self, batch_id: Id, status: RunStatus, stamp: float, events: list[SimEvent]) -> None:
        batch = self._batches[batch_id]
        completed_runs = batch.completed_runs + (status == "completed")
        failed_runs = batch.failed_runs + (status == "failed")
        batch = replace(batch, completed_runs=completed_runs, failed_runs=failed_runs, updated=stamp)
        if completed_runs + failed_runs == batch.total_runs:
            all_failed = completed_runs == 0
            batch = replace(
                batch,
                status="failed" if all_failed else "completed",
                completed=stamp,
                error_message=f"All {batch.total_runs} runs failed." if all_failed else "",
            )
        self._batches[batch.id] = batch
        if batch.completed is not None:
            self._emit(events, SimEvent("batch.ended", stamp, batch=batch))

    def _schedule_grades(self, run_id: Id, ended_at: float, fate: _Fate) -> None:
        # scores were drawn when the call started, so when a grade is read does not change what it says
        config = self._config
        full = fate.score
        grades: deque[Grade] = deque()
        if config.grade_twice:
            offset = fate.fast_offset
            fast = self._score(full + offset)
            if fast == full:  # clamped onto the full score at 0 or 1: go the other way
                fast = self._score(full - offset)
            grades.append(_completed_grade(fast, FAST_GRADER_MODEL))
            self._schedule(ended_at + config.grade_delay, "grade", run_id)
        grades.append(_completed_grade(full, GRADER_MODEL))
        if config.grade_twice:
            # strictly after the fast grade, even with no delay, so the two never share a (millisecond)
            # graded_at and the full grade is the latest whatever order the webhooks arrive in
            full_at = ended_at + max(2 * config.grade_delay, config.grade_delay + FULL_GRADE_GAP_S)
        else:
            full_at = ended_at + config.grade_delay
        self._schedule(full_at, "grade", run_id)
        self._grades[run_id] = grades

    def _score(self, value: float) -> float:
        """A score clamped to 0..1 and rounded to what the API's scale shows (whole percent, or 3 decimals)."""
        value = min(1.0, max(0.0, value))
        if self._config.grade_scale == 100:
            return round(value * 100) / 100
        return round(value, 3)

    def _apply_grade(self, run_id: Id, at: float, events: list[SimEvent]) -> None:
        pending = self._grades[run_id]
        grade = replace(pending.popleft(), graded_at=self.wall(at))
        if not pending:
            del self._grades[run_id]
        run = replace(self._runs[run_id], grade=grade)
        self._runs[run_id] = run
        self._emit(events, SimEvent("call.graded", grade.graded_at or self.wall(at), run=run))


def _text(value: Id | None) -> str | None:
    return None if value is None else str(value)


def _failed_grade(stamp: float) -> Grade:
    """The grade of a call that failed: nothing to score."""
    return Grade(
        status="failed",
        score=None,
        call_outcome="no_conversation",
        goal_achievement=None,
        summary="The call did not reach a conversation that could be graded.",
        grader_model=GRADER_MODEL,
        graded_at=stamp,
    )


def _completed_grade(score: float, grader_model: str) -> Grade:
    """A completed grade with wording that follows the score; ``graded_at`` is filled in when it is applied."""
    if score >= 0.8:
        achievement, summary = "achieved", "The agent handled the scenario and reached the caller's goal."
    elif score >= 0.6:
        achievement, summary = "partially_achieved", "The agent helped, but part of the goal was missed."
    else:
        achievement, summary = "not_achieved", "The agent did not reach the caller's goal."
    return Grade(
        status="completed",
        score=score,
        call_outcome="success" if score >= SUCCESS_SCORE else "failure",
        goal_achievement=achievement,
        summary=summary,
        grader_model=grader_model,
        graded_at=None,
    )
