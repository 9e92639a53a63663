"""How deep a run sits in the org's run list, from what this client created after it. Pure, no I/O.

In a newest-first list every run this client created after a run lies above it (other clients' runs only push
it further down), so a scan for runs that ended can start that deep and skip the pages of newer runs, most of
what it would otherwise read.
"""

from __future__ import annotations

from collections import deque

LEDGER_ENTRIES = 1024  # creates remembered (newest); an older instant gets a smaller bound, never a wrong one
ORDER_SLACK_S = 1.0  # creates are noted in the order their answers came, which may differ by up to this much


class CreationLedger:
    """The runs this client created, by creation time (server epoch seconds), as their creates were answered."""

    def __init__(self, entries: int = LEDGER_ENTRIES) -> None:
        self._creates: deque[tuple[float, int]] = deque(maxlen=entries)
        self.total = 0  # runs noted so far (of known creation time or not): what was created since is a difference

    def add(self, created_at: float | None, runs: int) -> None:
        """Note a create that made ``runs`` runs at ``created_at`` (None: unknown, kept out of ``created_after``)."""
        self.total += max(0, runs)
        if created_at is not None and runs > 0:
            self._creates.append((created_at, runs))

    def created_after(self, instant: float) -> int:
        """How many of the remembered runs were created strictly after ``instant``: never more than there are
        (a create the ledger forgot, or noted out of order beyond ``ORDER_SLACK_S``, only lowers the count)."""
        count = 0
        for created_at, runs in reversed(self._creates):
            if created_at > instant:
                count += runs
            elif created_at < instant - ORDER_SLACK_S:
                break
        return count
