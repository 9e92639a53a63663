"""Run ends pushed to stressor (webhooks), handed to the follower of each run.

A webhook can beat the answer to the POST that created its run, so an end that nobody expects yet is kept
until its follower asks (bounded: the oldest unclaimed ends are dropped first, and the run is then found by
polling). An end delivered twice is handed over once, and counted as a duplicate; an end that comes after
the run was found ended by polling is counted as late.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from stressor.targets.base import RunEnd

MAX_UNCLAIMED = 10_000


class CompletionInbox:
    """Matches pushed run ends to the followers waiting for them."""

    def __init__(self, max_unclaimed: int = MAX_UNCLAIMED) -> None:
        self._waiting: dict[str, Callable[[RunEnd], None]] = {}
        self._unclaimed: OrderedDict[str, RunEnd] = OrderedDict()
        self._max_unclaimed = max_unclaimed
        # runs whose end is known already -> True when it was pushed here, False when followed to the end
        # otherwise (polling); bounded like the unclaimed ends
        self._finished: OrderedDict[str, bool] = OrderedDict()
        self.delivered = 0
        self.early = 0  # ends that arrived before their run's follower asked
        self.late = 0  # ends that arrived after the run had ended by polling
        self.duplicates = 0  # ends of runs whose end had been handed over already

    def deliver(self, end: RunEnd) -> None:
        """A run ended (webhook): hand it to its follower, or keep it until the follower asks."""
        self.delivered += 1
        pushed = self._finished.get(end.run_id)
        if pushed is not None:
            if pushed:
                self.duplicates += 1
            else:
                self.late += 1
            return
        if end.run_id in self._unclaimed:  # a repeat before anyone asked: the first is kept
            self.duplicates += 1
            return
        follower = self._waiting.pop(end.run_id, None)
        if follower is not None:
            self._finish(end.run_id, pushed=True)
            follower(end)
            return
        self.early += 1
        self._unclaimed[end.run_id] = end
        while len(self._unclaimed) > self._max_unclaimed:
            self._unclaimed.popitem(last=False)

    def expect(self, run_id: str, follower: Callable[[RunEnd], None]) -> None:
        """Call ``follower`` once when the run's end is delivered (at once if it already was)."""
        end = self._unclaimed.pop(run_id, None)
        if end is not None:
            self._finish(run_id, pushed=True)
            follower(end)
        else:
            self._waiting[run_id] = follower

    def forget(self, run_id: str) -> None:
        """The follower no longer waits (its end was handed over, the run ended by polling, or following
        stopped): a later delivery of its end is handed to no one."""
        self._waiting.pop(run_id, None)
        if run_id not in self._finished:
            self._finish(run_id, pushed=False)

    def _finish(self, run_id: str, pushed: bool) -> None:
        self._finished[run_id] = pushed
        while len(self._finished) > self._max_unclaimed:
            self._finished.popitem(last=False)
