"""The server's clock as this client knows it: its offset from the client's wall clock. Pure, no clock of its own.

A server stamp written while a request was in flight bounds the offset: the stamp was taken between the send
and the answer, so ``stamp - answered <= offset <= stamp + resolution - sent``. The bounds of recent requests
are intersected; the API's ``created_at`` (milliseconds) bounds it far more tightly than the ``Date`` header
(whole seconds), which serves until a create has been answered.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

RECENT = 32  # bounds kept per source: a server clock that is stepped is followed within this many answers
STAMP_RESOLUTION_S = 0.001  # the API writes milliseconds
DATE_RESOLUTION_S = 1.0  # an HTTP-date has whole seconds


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """Server time minus client wall time, within ``± error_s``, from ``samples`` answers of ``source``."""

    offset_s: float
    error_s: float
    samples: int
    source: str

    def to_json(self) -> dict[str, object]:
        return {
            "offset_s": round(self.offset_s, 4),
            "error_s": round(self.error_s, 4),
            "samples": self.samples,
            "source": self.source,
        }


def _combine(bounds: deque[tuple[float, float]], source: str) -> ClockOffset | None:
    if not bounds:
        return None
    low = max(b[0] for b in bounds)
    high = min(b[1] for b in bounds)
    if low <= high:
        return ClockOffset((low + high) / 2, (high - low) / 2, len(bounds), source)
    # Bounds that disagree (a clock stepped, a stamp not taken in flight): the median of the midpoints, with
    # the widest half-width, rather than an intersection that does not exist.
    middle = statistics.median((b[0] + b[1]) / 2 for b in bounds)
    spread = max((b[1] - b[0]) / 2 + abs((b[0] + b[1]) / 2 - middle) for b in bounds)
    return ClockOffset(middle, spread, len(bounds), source)


class ServerClock:
    """Learns the server's clock offset from its stamps of requests this client timed (epoch seconds)."""

    def __init__(self) -> None:
        self._stamps: deque[tuple[float, float]] = deque(maxlen=RECENT)
        self._dates: deque[tuple[float, float]] = deque(maxlen=RECENT)
        self._estimate: ClockOffset | None = None  # asked for at every run's end: made once per new bound

    def observe_stamp(self, sent_wall: float, answered_wall: float, stamp: float) -> None:
        """A ``created_at`` the server wrote while the request sent at ``sent_wall`` was in flight."""
        self._stamps.append(_bound(sent_wall, answered_wall, stamp, STAMP_RESOLUTION_S))
        self._estimate = _combine(self._stamps, "created_at")

    def observe_date(self, sent_wall: float, answered_wall: float, date: float) -> None:
        """A ``Date`` header (whole seconds) of an answer to a request sent at ``sent_wall``."""
        self._dates.append(_bound(sent_wall, answered_wall, date, DATE_RESOLUTION_S))
        if not self._stamps:
            self._estimate = _combine(self._dates, "date")

    def estimate(self) -> ClockOffset | None:
        """The best estimate so far (None before any stamp or date was seen)."""
        return self._estimate


def _bound(sent_wall: float, answered_wall: float, stamp: float, resolution: float) -> tuple[float, float]:
    sent, answered = min(sent_wall, answered_wall), max(sent_wall, answered_wall)
    return stamp - answered, stamp + resolution - sent
