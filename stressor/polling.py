"""How runs are followed, as far as planning needs to know: when a batch is polled, how many runs a page of the
run list holds, how deep the shared scan reads, and when a run whose webhook is late is polled. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stressor.profile import Profile

# Runs asked per page when the lister looks for runs that ended: the API's maximum. A page is decoded in one step
# of the event loop (benchmarks/overheads.py prints what a page costs); a server that gives fewer is read on.
SCAN_PAGE_SIZE = 200
# A run followed by the shared scan is given up as unreached (then polled through its batch) only this far below
# the reach: the ledger counts this client's runs only, and notes creates in the order their answers came.
REACH_SLACK_RUNS = 20
REACH_SLACK_FRACTION = 0.1


def scan_reach(bottoms: Iterable[int], page_items: int, start: int = 0) -> int:
    """How deep (runs from the list's top) the shared scan of the run list reads this tick, given how deep each
    open batch's runs reach (``bottoms``, as this client's ledger counts), the runs a page holds and where the
    scan starts (``start``: below the runs newer than the newest open batch).

    A batch within the reach is followed by the scan, one below it by a request of its own (its batch's
    counters): the reach is the one that costs the fewest requests a tick, pages to it plus batches below it.
    On a tie the scan reads deeper: it sees each run's own end, where a batch's counters only say that one
    ended. 0: no scan, every batch is polled on its own."""
    page = max(1, page_items)
    ordered = sorted(bottoms)
    best_reach, best_cost = 0, len(ordered)
    for covered, bottom in enumerate(ordered, 1):
        cost = -(-max(0, bottom - start) // page) + len(ordered) - covered
        if cost <= best_cost:
            best_reach, best_cost = bottom, cost
    return best_reach


def even_scan_reads_all(runs_per_batch: int, page_items: int) -> bool:
    """``scan_reach`` for batches of ``runs_per_batch`` packed evenly from the list's top (the plan's picture),
    without listing them: each batch more within the reach adds ``runs_per_batch / page_items`` of a page and
    takes one request away, so the reach takes all of them or none; on a tie all."""
    return runs_per_batch <= page_items


def within_reach(reach: int) -> int:
    """How deep in the list a scan with this reach looks for a run before it calls it unreached."""
    return reach + REACH_SLACK_RUNS + int(reach * REACH_SLACK_FRACTION)


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """When a batch is polled: ``interval`` at first, then a ``growth`` fraction of the batch's age, at most
    ``max_interval`` (long calls do not need a poll a second from their first second)."""

    interval_s: float
    max_interval_s: float
    growth: float = 0.1

    def next_interval(self, age_s: float) -> float:
        return min(self.max_interval_s, max(self.interval_s, age_s * self.growth))



def fallback_seconds(profile: Profile) -> float | None:
    """After how long a run whose webhook has not come is polled (None: never)."""
    fallback = profile.webhooks.fallback
    if fallback == "off":
        return None
    if fallback == "auto":
        longest_stagger = max(((s.batch.runs - 1) * s.batch.stagger_s for s in profile.stages), default=0.0)
        return max(1.0, 2 * profile.mean_call_duration_s + longest_stagger)
    return float(fallback)
