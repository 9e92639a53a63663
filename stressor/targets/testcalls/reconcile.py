"""Whether a create whose answer was lost made anything: a walk through a list, page by page. Pure, no I/O.

A listing proves a create absent only when it reaches an *anchor* this client saw before the create was sent,
shows this client's own creates, and holds nothing that could be the lost one; anything a walk cannot settle is
``Unknown``. ``Reconciliation`` is the loop around the walks (events in, actions out). See
docs/internals.md#reconciliation.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from stressor.targets.testcalls.listing import Order, page_order
from stressor.timestamps import parse_iso_or_none

MAX_PAGES = 50  # pages one walk may read
RECONCILE_CHECKS = 2  # listings, a settle delay apart, that must all lack a create in doubt before it is resent
MIN_WAIT_S = 0.001  # shorter sleeps spin under uvloop (engineering notes)


@dataclass(frozen=True, slots=True)
class Found:
    """The one item the lost create made."""

    item: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Absent:
    """The create made nothing: it may be sent again."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """The listing could not settle it; ``why`` completes "its answer was lost and ..."."""

    why: str


@dataclass(frozen=True, slots=True)
class Unproven:
    """Not settled by this listing, perhaps by a later one (this client's creates do not show yet)."""

    why: str


@dataclass(frozen=True, slots=True)
class Unread:
    """A listing got no usable answer this time: it is asked again, until the deadline."""

    why: str


@dataclass(frozen=True, slots=True)
class Reorder:
    """The list's pages run the other way: walk again in ``order``."""

    order: Order


Verdict = Found | Absent | Unknown | Unproven | Reorder
# What a list item is to the walk: True (the lost create's, by its name), None (could be: names cannot tell),
# False (not it).
Candidate = Callable[[dict[str, Any]], bool | None]


def item_key(item: object) -> str | None:
    """An item's id as text (ids are opaque: strings or integers), None when it has none."""
    if not isinstance(item, dict):
        return None
    key = item.get("id")
    if isinstance(key, str) and key:
        return key
    return str(key) if isinstance(key, int) and not isinstance(key, bool) else None


@dataclass(slots=True)
class Walk:
    """One listing, newest first or oldest first, looking for a lost create beyond the anchors.

    Drive it with ``next_offset`` and ``feed`` until ``verdict`` is set. ``anchors``: ids of items that existed
    before the lost create was sent; ``open_end``: the list was empty then, so its end is an anchor too.
    ``own``: ids of this client's creates (of any time). ``start`` (oldest first): an offset at or before the
    anchors (the list's length before this client's first create)."""

    order: Order
    anchors: Container[str]
    own: Container[str]
    candidate: Candidate
    open_end: bool = False
    start: int = 0
    max_pages: int = MAX_PAGES
    what: str = "the list"
    verdict: Verdict | None = None
    anchor_seen: int | None = None  # the offset the first anchor was seen at
    _offset: int = 0
    _pages: int = 0
    _first_key: str | None = None
    _anchor_at: float | None = None
    _own_seen: bool = False
    _sure: dict[str, dict[str, Any]] = field(default_factory=dict)
    _maybe: int = 0

    def __post_init__(self) -> None:
        oldest_first = self.order == "oldest_first"
        self._offset = self.start if oldest_first else 0
        if oldest_first and self.open_end:
            self.anchor_seen = self.start  # everything from the start on came after the list was read empty
        if self.order not in ("newest_first", "oldest_first"):
            self.verdict = Unknown(f"{self.what} is {self.order.replace('_', ' ')}: a walk cannot bound it")
        elif not self.anchors and not self.open_end:
            self.verdict = Unknown("nothing this client saw before the create shows where to look in the list")

    def next_offset(self) -> int | None:
        """The offset of the next page to read, or None once the verdict is in."""
        return None if self.verdict is not None else self._offset

    def feed(self, items: list[Any]) -> None:
        """The page read at ``next_offset()``."""
        if self.verdict is not None:
            return
        self._pages += 1
        if not items:
            self._end()
            return
        key = item_key(items[0])
        if self._offset > self.start and key is not None and key == self._first_key:
            self.verdict = Unknown(f"{self.what} could not be paged (the server ignored its offset)")
            return
        if self._offset == self.start:
            self._first_key = key
        seen = page_order([parse_iso_or_none(i.get("created_at")) if isinstance(i, dict) else None for i in items])
        if seen in ("newest_first", "oldest_first") and seen != self.order:
            self.verdict = Reorder(seen)
            return
        if seen == "unsorted":
            self.verdict = Unknown(f"{self.what} is not sorted by creation time")
            return
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            if self.order == "newest_first" and self._past_anchor(item):
                self._settle()
                return
            key = item_key(item)
            if key is not None and key in self.own:
                self._own_seen = True
            if key is not None and key in self.anchors:
                if self.anchor_seen is None:
                    self.anchor_seen = self._offset + index
                    self._anchor_at = parse_iso_or_none(item.get("created_at"))
                continue
            if self.order == "oldest_first" and self.anchor_seen is None:
                continue  # created before the anchors, so before the lost create was sent
            if key is None or key not in self.own:
                self._weigh(key, item)
        self._offset += len(items)  # not ``limit``: a server may hold fewer items a page than asked
        if self._pages >= self.max_pages:
            self.verdict = Unknown(f"{self.what} was not read to its end in {self.max_pages} pages")

    def _past_anchor(self, item: dict[str, Any]) -> bool:
        """Newest first: whether this item lies below the anchor, where nothing newer can be. Items stamped
        with the anchor's own instant may still be on either side of it."""
        if self.anchor_seen is None:
            return False
        if self._anchor_at is None:
            return True
        created = parse_iso_or_none(item.get("created_at"))
        return created is None or created < self._anchor_at

    def _weigh(self, key: str | None, item: dict[str, Any]) -> None:
        match = self.candidate(item)
        if match is True:
            self._sure[key if key is not None else str(id(item))] = item
        elif match is None:
            self._maybe += 1

    def _end(self) -> None:
        if self.anchor_seen is None and not self.open_end:
            self.verdict = Unproven(f"{self.what} did not show what was listed before the create")
        else:
            self._settle()

    def _settle(self) -> None:
        if len(self._sure) > 1:
            self.verdict = Unknown(f"{len(self._sure)} items in {self.what} carry its name")
        elif self._sure:
            self.verdict = Found(next(iter(self._sure.values())))
        elif self._maybe:
            self.verdict = Unknown(f"{self.what} shows {self._maybe} like it, and names cannot prove one its own")
        elif not self._own_seen:
            self.verdict = Unproven(f"{self.what} does not show this client's own creates yet")
        else:
            self.verdict = Absent()


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait ``seconds``, then ask ``Reconciliation.next`` again."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Look:
    """Read the lists once (a ``Walk``), then tell ``Reconciliation.looked`` what they showed."""


class Reconciliation:
    """When a reconciliation reads the lists and when it gives up, as a state machine: ``next(now)`` says what
    to do (``Wait``, ``Look``, or ``Unknown`` when the deadline would pass first), ``looked`` takes what a
    listing showed and gives the verdict once there is one.

    A create ``in_doubt`` (no answer, or a 5xx) may still be held by the server: it is looked for after the
    settle delay, and proved absent only by ``RECONCILE_CHECKS`` listings a settle delay apart. A listing that
    cannot be read, or that does not show this client's creates yet, is asked again after ``backoff(failures)``
    seconds until ``deadline_s`` (the settle delays are not part of it); then the answer is ``Unknown``."""

    def __init__(
        self,
        *,
        in_doubt: bool,
        settle_s: float,
        deadline_s: float,
        now: float,
        backoff: Callable[[int], float],
    ) -> None:
        self.checks = RECONCILE_CHECKS if in_doubt else 1
        self._settle_s = settle_s
        self._deadline_s = deadline_s
        self._wait = settle_s if in_doubt else 0.0
        self._deadline = now + self._wait * self.checks + deadline_s
        self._backoff = backoff
        self._absent = 0
        self._failures = 0
        self._why = "the list could not be read"

    def next(self, now: float) -> Wait | Look | Unknown:
        """What to do at ``now``."""
        wait, self._wait = self._wait, 0.0
        if wait <= 0:
            return Look()
        if now + wait > self._deadline:
            return Unknown(f"{self._why} within {self._deadline_s:g} s")
        return Wait(wait)

    def looked(self, listing: Absent | Unproven | Unread) -> Absent | None:
        """What one listing showed; ``Absent`` once enough listings proved it, else None (ask ``next``). A
        listing that found the create, or settled it as ``Unknown``, is the verdict itself: it never comes here."""
        if isinstance(listing, Absent):
            self._absent += 1
            if self._absent >= self.checks:
                return listing
            self._wait, self._why = self._settle_s, "its absence was not confirmed"
        else:
            self._failures += 1
            self._wait, self._why = max(self._backoff(self._failures), MIN_WAIT_S), listing.why
        return None
