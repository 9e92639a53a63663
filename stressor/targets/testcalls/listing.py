"""How the API's lists behave, as this client has seen them. Pure, no I/O.

The docs leave open the lists' order, whether ``offset`` is honoured, how many items a page holds and whether a
batch's ``name`` comes back whole. ``ListLearner`` gathers what the answers showed (pages read by the pre-flight
probe and by every scan, names echoed by creates); ``ListFacts`` is what it concluded, which the lister and
reconciliation plan by, and which ``stressor check`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

Order = Literal["newest_first", "oldest_first", "unsorted", "unknown"]
OffsetRule = Literal["honoured", "ignored", "unknown"]
Names = Literal["whole", "truncated", "absent", "changed", "unknown"]
# Pages at an offset above 0 that repeated the list's first item, in a row, before offset counts as ignored:
# one could be the list shifting down by exactly that many new items between two reads.
REPEATS_FOR_IGNORED = 2


@dataclass(frozen=True, slots=True)
class ListFacts:
    """What the lists were seen to do. ``unknown``: nothing has shown it yet (an empty list, say)."""

    order: Order = "unknown"
    offset: OffsetRule = "unknown"
    page_cap: int | None = None  # the most items a page held while more were asked for and more followed
    names: Names = "unknown"
    name_length: int | None = None  # the length names are cut to, when ``truncated``

    @property
    def followable(self) -> bool:
        """Whether a run can be found in the list wherever it sits: an order to page by, and paging."""
        return self.order in ("newest_first", "oldest_first", "unknown") and self.offset != "ignored"

    def problems(self) -> list[str]:
        """What about the lists a run cannot rely on, one sentence each (empty: nothing seen amiss)."""
        out = []
        if self.order == "unsorted":
            out.append("the run list is not sorted by creation time, so a scan cannot tell where to stop")
        if self.offset == "ignored":
            out.append("the run list ignores `offset`, so only its first page can be read")
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "order": self.order,
            "offset": self.offset,
            "page_cap": self.page_cap,
            "names": self.names,
            "name_length": self.name_length,
        }


def page_order(created: Sequence[float | None]) -> Order:
    """The order of a page's items by their creation times (None: unstamped, skipped). ``unknown`` when the page
    cannot tell (fewer than two distinct stamps)."""
    stamps = [t for t in created if t is not None]
    falls = any(b < a for a, b in pairwise(stamps))
    rises = any(b > a for a, b in pairwise(stamps))
    if falls and rises:
        return "unsorted"
    if falls:
        return "newest_first"
    return "oldest_first" if rises else "unknown"


def name_rule(sent: str, echoed: object) -> tuple[Names, int | None]:
    """How the server wrote back a batch name: whole, cut to a prefix (and its length), absent, or changed."""
    if echoed is None or echoed == "":
        return "absent", None
    if not isinstance(echoed, str):
        return "changed", None
    if echoed == sent:
        return "whole", None
    if sent.startswith(echoed):
        return "truncated", len(echoed)
    return "changed", None


def name_matches(facts: ListFacts, sent: str, echoed: object) -> bool | None:
    """Whether a listed batch's name is the one sent, as far as the names seen allow: None when names cannot
    tell (absent, changed, or not yet seen whole)."""
    if facts.names == "whole":
        return echoed == sent
    if facts.names == "truncated" and facts.name_length is not None:
        return echoed == sent[: facts.name_length]
    return None


class ListLearner:
    """Gathers what the lists' answers showed; ``facts`` is the conclusion so far."""

    def __init__(self) -> None:
        self._order: Order = "unknown"
        self._offset: OffsetRule = "unknown"
        self._repeats = 0
        self._page_cap: int | None = None
        self._names: Names = "unknown"
        self._name_length: int | None = None
        self.facts = ListFacts()

    def saw_order(self, order: Order) -> None:
        """A page (or this client's own runs) showed this order. Two different directions make it unsorted."""
        if order in ("unknown", self._order) or self._order == "unsorted":
            return
        self._order = order if self._order == "unknown" else "unsorted"
        self._update()

    def saw_offset(self, repeated_first: bool) -> None:
        """A page at an offset above 0 was read in the same scan as the page at 0: did it start with the same
        item (``repeated_first``)?"""
        if repeated_first:
            self._repeats += 1
            if self._repeats >= REPEATS_FOR_IGNORED:
                self._offset = "ignored"
        else:
            self._repeats = 0
            self._offset = "honoured"
        self._update()

    def saw_short_page(self, count: int) -> None:
        """A page held ``count`` items, fewer than asked, and more items followed it."""
        if count > 0 and (self._page_cap is None or count > self._page_cap):
            self._page_cap = count
            self._update()

    def saw_name(self, sent: str, echoed: object) -> None:
        """A create's answer (or a listing) showed the name of a batch this client named ``sent``. A name seen
        whole and a longer one seen cut make a rule (cut to that length); anything else that disagrees makes
        names unusable for matching (``changed``)."""
        rule, length = name_rule(sent, echoed)
        current = self._names
        if current == "unknown" or (current == "whole" and rule == "truncated"):
            self._names, self._name_length = rule, length
        elif current == "truncated" and rule == "whole":
            if self._name_length is not None and len(sent) > self._name_length:
                self._names, self._name_length = "changed", None
        elif rule != current or length != self._name_length:
            self._names, self._name_length = "changed", None
        self._update()

    def _update(self) -> None:
        self.facts = ListFacts(self._order, self._offset, self._page_cap, self._names, self._name_length)
