"""Reading the test-calls API's answers: runs, pages of runs, batches, creates. Pure, no I/O.

Answers are not trusted to be well formed: each reader returns what it could use and what was wrong
(``Finding``), and the target counts the request under the first finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from stressor.targets.base import RunEnd, Submission, SubmitError, SubmittedRun
from stressor.timestamps import parse_iso_or_none

MISSING = object()
TERMINAL = ("completed", "failed")
RUN_STATUSES = frozenset({"queued", "in_progress", *TERMINAL})
BATCH_STATUSES = frozenset({"pending", "in_progress", "completed", "failed"})
MAX_ID_LENGTH = 256  # an id longer than this is not one (and would not fit in a URL path for long)
ERROR_MESSAGE_LIMIT = 1000  # characters of a run's error_message kept in its record


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as one answer of the list endpoint showed it, and when that answer arrived."""

    run_id: str
    status: str
    seen_ns: int
    created_at: float | None
    started_at: float | None
    completed_at: float | None
    error_message: str
    call_id: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def as_end(self) -> RunEnd:
        """The run's end as the engine takes it (only for a run that has ended)."""
        return RunEnd(
            run_id=self.run_id,
            status=self.status,  # type: ignore[arg-type]
            detected_ns=self.seen_ns,
            started_at=self.started_at,
            completed_at=self.completed_at,
            error_message=self.error_message,
            call_id=self.call_id,
        )


def is_id(value: object) -> bool:
    """An id as the API gives them: a non-empty string or an integer, of sane length."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Finding:
    """Something wrong with an answer: ``kind`` is a key of ``ANOMALIES``, ``detail`` says what."""

    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Read(Generic[T]):
    """What a reader made of a decoded answer: the value (None when unusable) and what was wrong with it."""

    value: T | None
    findings: tuple[Finding, ...] = ()

    @property
    def label(self) -> str:
        """The request's outcome in ``requests``: the first finding, else ``ok``."""
        return self.findings[0].kind if self.findings else "ok"


def as_is(body: Any) -> Read[Any]:
    return Read(body)


def bad_shape(detail: str) -> tuple[Finding, ...]:
    return (Finding("bad_shape", detail),)


def _status_text(status: str) -> str:
    # whole: the note that quotes it masks any key the server echoed, then cuts
    return repr(status)


def parse_run(item: object, seen_ns: int) -> RunView | None:
    """A run object of the API, or None when the item is not one (the caller counts it)."""
    if not isinstance(item, dict):
        return None
    run_id, status = item.get("id"), item.get("status")
    if not isinstance(run_id, str | int) or isinstance(run_id, bool) or not isinstance(status, str):
        return None
    error, call_id = item.get("error_message"), item.get("call_id")
    return RunView(
        run_id=str(run_id),
        status=status,
        seen_ns=seen_ns,
        created_at=parse_iso_or_none(item.get("created_at")),
        started_at=parse_iso_or_none(item.get("started_at")),
        completed_at=parse_iso_or_none(item.get("completed_at")),
        error_message=error if isinstance(error, str) else "",  # cut once the key is masked (the target's)
        call_id=str(call_id) if is_id(call_id) else None,
    )


def run_key(item: object) -> str | None:
    """The id of a list item as ``parse_run`` would give it, without parsing the rest (None: not an id)."""
    if not isinstance(item, dict):
        return None
    run_id = item.get("id")
    if isinstance(run_id, str):
        return run_id
    return str(run_id) if isinstance(run_id, int) and not isinstance(run_id, bool) else None


def read_run_page(body: Any) -> Read[list[Any]]:
    """A page of ``GET /v1/test-calls``: a list of run objects. Items that are not runs are skipped by the
    lister and counted here as ``bad_shape``; statuses the API does not define as ``unknown_status``."""
    if not isinstance(body, list):
        return Read(None, bad_shape(f"expected a list of runs, got {_kind(body)}"))
    junk = 0
    unknown: set[str] = set()
    for item in body:
        if not isinstance(item, dict) or not is_id(item.get("id")) or not isinstance(item.get("status"), str):
            junk += 1
        elif item["status"] not in RUN_STATUSES:
            unknown.add(item["status"])
    findings: list[Finding] = []
    if junk:
        findings.append(Finding("bad_shape", f"{junk} of {len(body)} items are not run objects"))
    if unknown:
        shown = ", ".join(_status_text(status) for status in sorted(unknown)[:3])
        findings.append(Finding("unknown_status", f"run status {shown}"))
    return Read(body, tuple(findings))


def read_list(body: Any) -> Read[list[Any]]:
    """Any list endpoint's answer, for a reconciliation (which looks at each item itself)."""
    if not isinstance(body, list):
        return Read(None, bad_shape(f"expected a list, got {_kind(body)}"))
    return Read(body)


def read_batch_poll(body: Any, run_ids: tuple[str, ...]) -> Read[int]:
    """``GET /v1/test-call-batches/{id}``: how many of the batch's runs have ended (completed + failed).

    Only the counters matter for polling; ``run_ids`` that differ from the batch's own, or a status the API
    does not define, are noted but do not make the answer unusable."""
    if not isinstance(body, dict):
        return Read(None, bad_shape(f"expected a batch object, got {_kind(body)}"))
    counts = [body.get("completed_runs"), body.get("failed_runs")]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        shown = ", ".join(_kind(c) if not isinstance(c, int) else str(c) for c in counts)
        return Read(None, bad_shape(f"completed_runs and failed_runs must be counts, got {shown}"))
    findings: list[Finding] = []
    status = body.get("status")
    if isinstance(status, str) and status not in BATCH_STATUSES:
        findings.append(Finding("unknown_status", f"batch status {_status_text(status)}"))
    answered = body.get("run_ids", MISSING)
    if answered is not MISSING and not (
        isinstance(answered, list) and [str(i) if is_id(i) else None for i in answered] == list(run_ids)
    ):
        count = len(answered) if isinstance(answered, list) else _kind(answered)
        findings.append(Finding("run_ids_changed", f"{count} run_ids where {len(run_ids)} were created"))
    return Read(counts[0] + counts[1], tuple(findings))  # type: ignore[operator]


def read_batch_submission(answer: Any, expected_runs: int) -> Submission:
    """The batch a ``POST /v1/test-call-batches`` created (or a batch found by reconciliation).

    Raises SubmitError (``bad_shape``) unless it has an id and ``expected_runs`` distinct run ids."""
    if not isinstance(answer, dict):
        raise SubmitError("bad_shape", f"the batch answer is {_kind(answer)}, not a JSON object")
    batch_id, run_ids = answer.get("id"), answer.get("run_ids")
    if not is_id(batch_id) or not isinstance(run_ids, list) or len(run_ids) != expected_runs:
        raise SubmitError("bad_shape", "the batch answer lacks an id or the right number of run_ids")
    if not all(is_id(run_id) for run_id in run_ids) or len({str(r) for r in run_ids}) != len(run_ids):
        # two runs under one id could not be told apart: one of them would never be seen to end
        raise SubmitError("bad_shape", "the batch answer's run_ids are not distinct ids")
    created_at = parse_iso_or_none(answer.get("created_at"))
    total_cost = answer.get("estimated_cost_cents")
    per_run = (
        total_cost / len(run_ids)
        if isinstance(total_cost, int | float) and not isinstance(total_cost, bool) and run_ids
        else None
    )
    runs = tuple(SubmittedRun(str(run_id), i, created_at, per_run) for i, run_id in enumerate(run_ids))
    return Submission(batch_id=str(batch_id), runs=runs)


def read_run_submission(answer: Any, index: int = 0) -> SubmittedRun:
    """The run a ``POST /v1/test-calls`` created; raises SubmitError (``bad_shape``) without a run id."""
    if not isinstance(answer, dict):
        raise SubmitError("bad_shape", f"the run answer is {_kind(answer)}, not a JSON object")
    run_id, cost = answer.get("id"), answer.get("estimated_cost_cents")
    if not is_id(run_id):
        raise SubmitError("bad_shape", "the run answer has no id")
    return SubmittedRun(
        str(run_id),
        index,
        parse_iso_or_none(answer.get("created_at")),
        cost if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
    )
