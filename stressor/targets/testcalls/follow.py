"""When a batch's runs are polled, and how: a pure state machine (events in, actions out, ``now`` passed in).

A batch within the reach of the shared scan of the run list is followed by it, on a grid of ticks such batches
share; a deeper one polls its own counters at its own phase and asks the list only when they moved. The reach is
chosen afresh every tick, so a batch may move from one to the other and back.
The target's follow loop sleeps until ``next_poll_ns``, does what ``woke`` says and reports what came of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stressor.polling import PollSchedule
from stressor.timestamps import NS_PER_S


@dataclass(frozen=True, slots=True)
class PollBatch:
    """Poll the batch's counters, then tell ``Follow.counted`` (or ``batch_unknown`` on a 404)."""


@dataclass(frozen=True, slots=True)
class ScanList:
    """Look for the runs in the run list: the shared scan of its top when ``near``, else as deep as they are.
    Then tell ``Follow.scanned``."""

    near: bool


# the actions, made once: a poll's decision allocates nothing
POLL_BATCH = PollBatch()
SCAN_NEAR, SCAN_DEEP = ScanList(near=True), ScanList(near=False)


class Follow:
    """The poll schedule of one batch from its submission (``started_ns``) on.

    ``near``: its runs are near the top of the run list (the shared scan follows them); ``first_offset_s``: a
    batch polled on its own starts at a random point of its first interval (the shell draws it), so that
    batches submitted together do not poll in lockstep; ``batch_known``: the server gave a batch id to poll;
    ``backoff(failures)``: seconds added to the interval after that many failed polls in a row."""

    def __init__(
        self,
        schedule: PollSchedule,
        *,
        started_ns: int,
        near: bool,
        first_offset_s: float,
        batch_known: bool,
        backoff: Callable[[int], float],
    ) -> None:
        self._schedule = schedule
        self._started_ns = started_ns
        self._tick_ns = round(schedule.interval_s * NS_PER_S)
        self.near = near
        # the first poll comes on the next tick (near), or at the drawn offset of the first interval
        self._next_ns = started_ns + round(first_offset_s * NS_PER_S) - self._tick_ns
        self._batch_known = batch_known
        self._backoff = backoff
        self._unreached = False  # a scan did not find its runs within its reach (other clients' runs above them)
        self.failures = 0  # batch polls in a row that failed

    def next_poll_ns(self, now_ns: int) -> int:
        """The instant of the next poll, asked once per poll when the last one is done (at ``now_ns``). A fixed
        cadence, not a pause after each poll: the time a poll takes must not stretch the interval."""
        age_s = (self._next_ns - self._started_ns) / NS_PER_S
        interval_ns = round((self._schedule.next_interval(age_s) + self._backoff(self.failures)) * NS_PER_S)
        if self.near:
            # the next instant on the grid of the largest tick * 2^k within the interval
            quantum = self._tick_ns << max(0, (interval_ns // self._tick_ns).bit_length() - 1)
            self._next_ns = (max(self._next_ns, now_ns) // quantum + 1) * quantum
        else:
            self._next_ns = max(self._next_ns + interval_ns, now_ns)
        return self._next_ns

    def woke(self, near: bool) -> PollBatch | ScanList:
        """The poll is due; ``near``: whether the runs are within the shared scan's reach this tick (once a scan
        did not find them within it, never again). A batch that comes within it polls on its own once more (it
        woke at its own phase, off the shared grid), then on the grid."""
        was_near, self.near = self.near, near and not self._unreached
        if self._batch_known and not (was_near and self.near):
            return POLL_BATCH
        return SCAN_NEAR if self.near and was_near else SCAN_DEEP

    def counted(self, ended: int | None, known_ended: int) -> ScanList | None:
        """The batch's counters: ``ended`` runs of it have ended (None: the poll failed or was unreadable), of
        which ``known_ended`` were already seen. A scan of the list when they moved, else nothing this time."""
        self.failures = self.failures + 1 if ended is None else 0
        if ended is None or ended <= known_ended:
            return None  # nothing new: the list endpoint is not asked
        return SCAN_NEAR if self.near else SCAN_DEEP

    def batch_unknown(self) -> ScanList:
        """The server does not know the batch (404): its runs may still be in the run list, looked for there
        from now on."""
        self._batch_known = False
        return SCAN_NEAR if self.near else SCAN_DEEP

    def scanned(self, unreached: bool) -> None:
        """A scan is done; ``unreached``: some runs lay deeper than it read (the shared scan no longer serves
        them: polled on their own from now on)."""
        if unreached:
            self.near = False
            self._unreached = True
