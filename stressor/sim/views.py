"""JSON shapes of the test-calls API (runs, batches, call logs, transcripts, grades) and of the simulator's own
ground-truth and config documents.

Stamps are ISO 8601 UTC with milliseconds on the server's clock; ground truth keeps true epoch floats. Ids and
scores are written as ``SimConfig`` says (``ids``, ``grade_scale``); the call log has the reference's fields
only. Content the docs leave open (transcript text, grade wording, end reasons) is plausible rather than real.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stressor.sim.config import SimConfig
from stressor.sim.records import RUN_STATUSES, Batch, Grade, Run, TruthRecord
from stressor.sim.transcripts import lay_out, script
from stressor.timestamps import format_iso

JsonObject = dict[str, Any]

RECORDING_BASE = "https://recordings.sim.invalid/"

def _iso(epoch_s: float | None) -> str | None:
    return format_iso(epoch_s) if epoch_s is not None else None


def _number(value: float) -> int | float:
    # the API writes whole numbers as integers (stagger 5, not 5.0)
    return int(value) if float(value).is_integer() else value


def recording_url(run: Run) -> str | None:
    """Where the call's recording would be, once the call has ended."""
    return f"{RECORDING_BASE}{run.call_id}.wav" if run.call_id and run.ended else None


def score_json(score: float | None, scale: int = 100) -> int | float | None:
    """A 0..1 score as the API writes it: an integer percent at scale 100, the number itself at scale 1."""
    if score is None:
        return None
    return round(score * 100) if scale == 100 else score


def grade_object(grade: Grade, scale: int = 100) -> JsonObject:
    """A grade without its call id: ``data.grade`` of a ``call.graded`` webhook."""
    return {
        "score": score_json(grade.score, scale),
        "status": grade.status,
        "call_outcome": grade.call_outcome,
        "goal_achievement": grade.goal_achievement,
        "summary": grade.summary,
        "grader_model": grade.grader_model,
        "graded_at": _iso(grade.graded_at),
    }


def grade_json(run: Run, scale: int = 100) -> JsonObject:
    """The grade object of a run's call, the latest grading (``pending`` until graded)."""
    grade = run.grade or Grade("pending", None, "unknown", None, "", None, None)
    return {"call_id": run.call_id, **grade_object(grade, scale)}


def run_json(run: Run, scale: int = 100) -> JsonObject:
    """The run object: the documented fields plus the SDK's ``duration_seconds``, ``grade``, ``transcript``
    (always null here: it is served by the call's transcript endpoint) and ``recording_url``."""
    return {
        "id": run.id,
        "target_type": run.target_type,
        "target_id": run.target_id,
        "direction": run.direction,
        "target_number": run.target_number,
        "scenario_prompt": run.scenario_prompt,
        "mode": run.mode,
        "status": run.status,
        "charge_multiplier": run.charge_multiplier,
        "estimated_cost_cents": run.estimated_cost_cents,
        "call_id": run.call_id,
        "sip_call_id": run.sip_call_id,
        "error_message": run.error_message,
        "batch_id": run.batch_id,
        "started_at": _iso(run.started),
        "completed_at": _iso(run.completed),
        "created_at": _iso(run.created),
        "updated_at": _iso(run.updated),
        "duration_seconds": run.duration_seconds,
        "grade": grade_json(run, scale) if run.grade is not None and run.ended else None,
        "transcript": None,
        "recording_url": recording_url(run),
    }


def batch_json(batch: Batch) -> JsonObject:
    """The batch object (``run_ids`` are ids, not nested runs; no ``name`` when the server shows none)."""
    shown: JsonObject = {"id": batch.id}
    if batch.name is not None:
        shown["name"] = batch.name
    return {
        **shown,
        "status": batch.status,
        "run_count": batch.run_count,
        "stagger_seconds": _number(batch.stagger_seconds),
        "scenario_prompts": list(batch.scenario_prompts),
        "total_runs": batch.total_runs,
        "completed_runs": batch.completed_runs,
        "failed_runs": batch.failed_runs,
        "estimated_cost_cents": batch.estimated_cost_cents,
        "estimated_minutes": batch.estimated_minutes,
        "error_message": batch.error_message,
        "run_ids": list(batch.run_ids),
        "started_at": _iso(batch.started),
        "completed_at": _iso(batch.completed),
        "created_at": _iso(batch.created),
        "updated_at": _iso(batch.updated),
    }


def call_json(run: Run, scale: int = 100) -> JsonObject:
    """The call log a run produced: the reference's fields (``duration_seconds`` whole API seconds, end minus
    start; ``grade_score`` and ``grade_status`` from the latest grade, the score on ``scale``)."""
    grade = run.grade if run.ended else None
    return {
        "call_id": run.call_id,
        "start_time": _iso(run.started),
        "end_time": _iso(run.completed),
        "duration_seconds": run.duration_seconds,
        "status": run.status,
        "end_reason": run.end_reason,
        "product": run.product,
        "billable_minutes": run.billable_minutes,
        "billing_total_cents": run.billing_total_cents,
        "grade_score": score_json(grade.score, scale) if grade is not None else None,
        "grade_status": grade.status if grade is not None else "pending",
    }


def calls_page_json(calls: list[JsonObject], *, total: int, limit: int, offset: int) -> JsonObject:
    """A page of ``GET /v1/calls``: the envelope ``{results, total, limit, offset}`` (the query's limit and
    offset, as asked: a page may hold fewer than ``limit`` without being the last)."""
    return {"results": calls, "total": total, "limit": limit, "offset": offset}


def transcript_json(run: Run, *, now: float, time_scale: float) -> JsonObject:
    """The call's transcript so far: its script (``stressor.sim.transcripts``) laid out over the call, the turns
    already spoken at epoch time ``now``. Times are API milliseconds from the start of the call; agent turns
    carry ``ttfa_ms`` (time to first audio). A call no one answered has no turns; one that failed otherwise
    stops halfway through its script."""
    turns: list[JsonObject] = []
    if run.started is None or run.end_reason == "no_answer":
        return {"call_id": run.call_id, "transcripts": turns}
    lines = script(run.scenario_prompt, run.product, run.agent_version)
    if run.status == "failed":
        lines = lines[: max(1, len(lines) // 2)]
    if run.duration_seconds is not None:
        spoken_ms = total_ms = run.duration_seconds * 1000
    else:
        spoken_ms = max(0, round((now - run.started) / time_scale * 1000))
        total_ms = max(spoken_ms, 60_000)  # the length is not known before the end: laid out over a minute
    for turn in lay_out(lines, total_ms):
        if turn.end_ms > spoken_ms:
            break
        shown: JsonObject = {
            "role": turn.line.role,
            "content": turn.line.content,
            "start_ms": turn.start_ms,
            "end_ms": turn.end_ms,
        }
        if turn.line.ttfa_ms is not None:
            shown["ttfa_ms"] = turn.line.ttfa_ms
        turns.append(shown)
    return {"call_id": run.call_id, "transcripts": turns}


def truth_json(record: TruthRecord) -> JsonObject:
    """One ground-truth record (true epoch seconds at full precision, null when not yet; ids as text)."""
    return {
        "id": record.id,
        "batch_id": record.batch_id,
        "index": record.index,
        "scenario_prompt": record.scenario_prompt,
        "created": record.created,
        "released": record.released,
        "started": record.started,
        "completed": record.completed,
        "status": record.status,
        "call_id": record.call_id,
        "grade_score": record.grade_score,
        "webhook_delivered": record.webhook_delivered,
        "webhook_sent": record.webhook_sent,
        "shown_ended": record.shown_ended,
        "submit_arrived": record.submit_arrived,
        "submit_answered": record.submit_answered,
        "product": record.product,
        "agent_version": record.agent_version,
        "prompt_change": record.prompt_change,
        "duration_seconds": record.duration_seconds,
        "end_reason": record.end_reason,
        "billing_total_cents": record.billing_total_cents,
        "call_outcome": record.call_outcome,
    }


def _optional_float(data: Mapping[str, Any], key: str, *, required: bool = True) -> float | None:
    value = data[key] if required else data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"ground-truth field {key!r} is not a number: {value!r}")
    return float(value)


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"ground-truth field {key!r} is not an integer: {value!r}")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"ground-truth field {key!r} is not a string: {value!r}")
    return value


def truth_from_json(data: object) -> TruthRecord:
    """Read back one record written by ``truth_json``; raises ValueError naming the field when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a ground-truth record must be an object, not {type(data).__name__}")
    try:
        status = data["status"]
        if status not in RUN_STATUSES:
            raise ValueError(f"ground-truth field 'status' is not a run status: {status!r}")
        created = _optional_float(data, "created")
        if created is None:
            raise ValueError("ground-truth field 'created' is null")
        index = data["index"]
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise ValueError(f"ground-truth field 'index' is not an integer: {index!r}")
        return TruthRecord(
            id=str(data["id"]),
            batch_id=None if data["batch_id"] is None else str(data["batch_id"]),
            index=index,
            scenario_prompt=str(data["scenario_prompt"]),
            created=created,
            released=_optional_float(data, "released"),
            started=_optional_float(data, "started"),
            completed=_optional_float(data, "completed"),
            status=status,
            call_id=None if data.get("call_id") is None else str(data["call_id"]),
            # optional, so documents written before these fields existed still read
            grade_score=_optional_float(data, "grade_score", required=False),
            webhook_delivered=_optional_float(data, "webhook_delivered", required=False),
            webhook_sent=_optional_float(data, "webhook_sent", required=False),
            shown_ended=_optional_float(data, "shown_ended", required=False),
            submit_arrived=_optional_float(data, "submit_arrived", required=False),
            submit_answered=_optional_float(data, "submit_answered", required=False),
            product=_optional_text(data, "product"),
            agent_version=_optional_int(data, "agent_version"),
            prompt_change=_optional_text(data, "prompt_change"),
            duration_seconds=_optional_int(data, "duration_seconds"),
            end_reason=_optional_text(data, "end_reason"),
            billing_total_cents=_optional_int(data, "billing_total_cents"),
            call_outcome=_optional_text(data, "call_outcome"),
        )
    except KeyError as missing:
        raise ValueError(f"ground-truth record lacks field {missing}") from None


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def config_json(config: SimConfig, seed: int | None) -> JsonObject:
    """The settings in force. The API key and the webhook secret are never written, only whether they are set;
    distributions and windows are written as their flags take them."""
    return {
        "slots": config.slots,
        "call_duration": str(config.call_duration),
        "call_duration_mean_seconds": config.call_duration.mean,
        "time_scale": config.time_scale,
        "failure_rate": config.failure_rate,
        "estimated_cost_cents": config.estimated_cost_cents,
        "charge_multiplier": config.charge_multiplier,
        "product": config.product,
        "agents": {str(agent_id): product for agent_id, product in config.agents},
        "agent_versions": {str(agent_id): version for agent_id, version in config.agent_versions},
        "list_order": config.list_order,
        "list_offset": config.list_offset,
        "page_cap": config.page_cap,
        "batch_name": config.batch_name,
        "batch_name_length": config.batch_name_length,
        "clock_offset": config.clock_offset,
        "ids": config.ids,
        "api_key_required": config.api_key is not None,
        "seed": seed,
        "rate_limit": config.rate_limit,
        "rate_limit_burst": config.effective_rate_limit_burst if config.rate_limit is not None else None,
        "rate_limit_scope": config.rate_limit_scope,
        "rate_limit_status": config.rate_limit_status,
        "retry_after": config.retry_after,
        "rate_limit_headers": config.rate_limit_headers,
        "error_rate": config.error_rate,
        "error_status": config.error_status,
        "error_burst": _text_or_none(config.error_burst),
        "fault_after_create": config.fault_after_create,
        "slow_after_create": config.slow_after_create,
        "slow_after_create_delay": config.slow_after_create_delay,
        "latency": _text_or_none(config.latency),
        "reset_rate": config.reset_rate,
        "stall": _text_or_none(config.stall),
        "webhook_url": config.webhook_url,
        "webhook_secret_set": config.webhook_secret is not None,
        "webhook_duplicate_rate": config.webhook_duplicate_rate,
        "webhook_delay": _text_or_none(config.webhook_delay),
        "webhook_reorder": config.webhook_reorder,
        "webhook_drop_rate": config.webhook_drop_rate,
        "webhook_max_attempts": config.webhook_max_attempts,
        "webhook_retry_base": config.webhook_retry_base,
        "webhook_retry_cap": config.webhook_retry_cap,
        "grade_score": str(config.grade_score),
        "grade_scale": config.grade_scale,
        "grade_delay": config.grade_delay,
        "grade_twice": config.grade_twice,
    }
