"""The small protocol between the engine and a target: submit a batch, follow its runs to their end.

The engine owns time (due times, grace, cancellation) and metrics; a target owns the wire (which requests,
which answers mean what). A target reports every HTTP request to a ``RequestLog`` and every run it saw end
through a callback, stamped with the monotonic time at which it learned of the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from stressor.profile import RunRequest
from stressor.targets.server_clock import ClockOffset


@dataclass(frozen=True, slots=True)
class BatchOrder:
    """What the engine asks a target to start: ``len(prompts)`` runs, launched ``stagger_s`` apart."""

    seq: int
    name: str
    request: RunRequest
    prompts: tuple[str, ...]
    stagger_s: float


@dataclass(frozen=True, slots=True)
class SubmittedRun:
    """A run the server accepted."""

    run_id: str
    index: int
    created_at: float | None
    estimated_cost_cents: float | None


@dataclass(frozen=True, slots=True)
class Submission:
    """The server's answer to a batch order: the runs it created (in order) and the batch id, if any."""

    batch_id: str | None
    runs: tuple[SubmittedRun, ...]


@dataclass(frozen=True, slots=True)
class RunEnd:
    """A run the target saw in a final state."""

    run_id: str
    status: Literal["completed", "failed", "unknown"]  # unknown: the run list no longer shows it
    detected_ns: int
    started_at: float | None
    completed_at: float | None
    error_message: str = ""
    call_id: str | None = None


class SubmitError(Exception):
    """A batch order that did not end in created runs.

    ``cause`` is a stable class for the results (``http_400``, ``http_5xx``, ``connect``, ``dns``, ``timeout``,
    ``bad_response``, ...; ``unknown`` when the create's answer was lost and reconciliation could not tell
    whether its runs exist: they may, so it is never sent again); ``fatal`` means no later submit can succeed
    either (a refused key, a forbidden target): the engine then stops the whole run and says why.
    """

    def __init__(self, cause: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.fatal = fatal


class RequestLog(Protocol):
    """Where targets count their HTTP requests."""

    def record_request(self, kind: str, outcome: str) -> None: ...


class Target(Protocol):
    """What the engine needs of a target."""

    async def check(self) -> None:
        """Make sure the target answers before any load starts; raise TargetUnavailable if not."""

    async def submit(self, order: BatchOrder) -> Submission:
        """Create the runs of one batch; raise SubmitError when they were not created."""

    async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        """Return once every run of the submission has been reported to ``on_end``."""

    async def aclose(self) -> None:
        """Release connections."""

    def clock_offset(self) -> ClockOffset | None:
        """The server's clock minus this client's (None: not known), to compare the server's stamps with."""


class TargetUnavailable(Exception):
    """The target cannot be used at all (unreachable, key refused); the message says why in one sentence."""
