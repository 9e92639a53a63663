"""Shares of a run: worker ``index`` of ``count`` takes every ``count``-th batch of the plan and its part of
every limit. Pure.

The open model's batches are dealt by sequence number, so the union of the workers' starts is the plan of a
single process exactly (same due times, same batch numbers); the closed model's target of runs in flight and
every client-side limit are split in whole parts that add up to the total.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stressor.profile import Cost, Limits, Profile


@dataclass(frozen=True, slots=True)
class Share:
    """Worker ``index`` (0-based) of ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"worker {self.index} of {self.count} does not exist")

    @property
    def fraction(self) -> float:
        """The part of a rate this worker takes."""
        return 1.0 / self.count

    def owns(self, seq: int) -> bool:
        """Whether batch ``seq`` of the plan is this worker's."""
        return seq % self.count == self.index

    def next_seq(self, seq: int) -> int:
        """The first batch number >= ``seq`` that is this worker's (closed stages number their batches as
        they go; dealing numbers this way keeps them unique across workers)."""
        return seq + (self.index - seq) % self.count

    def part(self, total: int) -> int:
        """This worker's whole part of ``total``: the parts of all workers add up to it."""
        return total // self.count + (1 if self.index < total % self.count else 0)

    def limits(self, limits: Limits) -> Limits:
        """Client-side limits for this worker: rates divided, counts split in whole parts (at least 1, or a
        worker could never start a batch)."""
        if self.count == 1:
            return limits

        def count(total: int | None) -> int | None:
            return None if total is None else max(1, self.part(total))

        return replace(
            limits,
            create_rate=limits.create_rate * self.fraction,
            poll_rate=limits.poll_rate * self.fraction,
            max_runs_in_flight=count(limits.max_runs_in_flight),
            max_batches_in_flight=count(limits.max_batches_in_flight),
        )

    def cost(self, cost: Cost) -> Cost:
        """The budget divided: each worker stops at its part, so together they never pass the whole."""
        if self.count == 1 or cost.budget_cents is None:
            return cost
        return replace(cost, budget_cents=cost.budget_cents * self.fraction)

    def profile(self, profile: Profile) -> Profile:
        """The profile as this worker runs it: its limits and budget (the stages stay whole: the engine deals
        batches and runs in flight by ``owns`` and ``part``)."""
        return replace(profile, limits=self.limits(profile.limits), cost=self.cost(profile.cost))


WHOLE = Share()
