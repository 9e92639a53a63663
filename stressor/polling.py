"""How runs are followed, as far as planning needs to know: when a batch is polled, how many runs a page of the
run list holds, how deep the shared scan reads, and when a run whose webhook is late is polled. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from stressor.profile import Profile

# Runs per page when the lister looks for runs that ended: a page is decoded in one step of the event loop, and a
# larger one delays any batch due meanwhile (benchmarks/overheads.py prints what a page costs).
SCAN_PAGE_SIZE = 100
# How deep in the run list a batch's runs may sit and still be followed by the shared scan of the list's top
# (every tick reads down to the deepest of them); deeper ones are polled batch by batch.
NEAR_TOP_RUNS = 1000


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
