"""Finds runs by id in the run list, one scan for every follower waiting at that moment (single-flight).

How a scan pages follows what the list was seen to do (``stressor.targets.testcalls.listing``): newest first,
oldest first, or ``offset`` ignored. Only an empty page ends a list. See docs/internals.md#run-lister.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel

from stressor.targets.ledger import CreationLedger
from stressor.targets.testcalls.answers import TERMINAL, RunView, parse_run, run_key
from stressor.targets.testcalls.listing import ListFacts, ListLearner, page_order
from stressor.timestamps import parse_iso_or_none

LIST_PAGE_SIZE = 200  # the API's maximum
MAX_PAGES = 10  # how deep a scan for runs of unknown creation time may page
MAX_DATED_PAGES = 100  # how deep a scan for runs of known creation times may page
SKIP_MARGIN_RUNS = 20  # runs (a batch) a scan starts above the depth the ledger gives, for ties and late notes
# List pages read at once: their answers are decoded back to back, and more at once made batch starts late.
PAGES_AT_ONCE = 3
# How much deeper than this client's ledger says its runs were found (other clients' runs between them): a new
# figure raises the estimate at once, and lowers it by this fraction of the difference.
SPREAD_EASING = 0.3
MAX_SPREAD = 100.0
SCAN_GATHER_S = 0.002  # a scan waits this long for the followers of its tick (see RunLister._scan)
TIE_SLACK_S = 1.0  # a page older than the wanted runs by this much ends a newest-first scan

# ``get(purpose, path, params)`` -> (decoded JSON or None, monotonic ns of the answer)
PageGetter = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class _Jump:
    """Read on at ``to``, past newer runs; from ``resume`` if the page there is not all newer than those wanted."""

    to: int
    resume: int


@dataclass(frozen=True, slots=True)
class Lookup:
    """What one scan told a follower: the runs it saw, those it proved absent (read to the list's end, or past
    their creation), those it did not look for as deep as they are, and where the runs seen sit (offsets, kept
    by followers of an oldest-first list, where places do not change)."""

    found: dict[str, RunView]
    missing: frozenset[str]
    unreached: frozenset[str] = frozenset()
    places: dict[str, int] = field(default_factory=dict)


class RunLister:
    """Finds runs by id on the list endpoint, one scan for all callers waiting at that moment."""

    def __init__(
        self,
        get: PageGetter,
        max_pages: int = MAX_PAGES,
        page_size: int = LIST_PAGE_SIZE,
        max_dated_pages: int = MAX_DATED_PAGES,
        ledger: CreationLedger | None = None,
        learner: ListLearner | None = None,
    ) -> None:
        self._get = get
        self._ledger = ledger  # what this client created, to start a newest-first scan below the newer runs
        self._learner = learner if learner is not None else ListLearner()
        self._max_pages = max_pages
        # When every wanted run's creation time is known, a scan stops at the first page older than them all,
        # so it may go deeper: at thousands of runs created per second, a run that ends has thousands above it.
        self._max_dated_pages = max(max_pages, max_dated_pages)
        self._page_size = page_size
        self._wanted: dict[str, float | None] = {}
        self._reach: dict[str, int] = {}  # wanted ids looked for only this deep (newest first)
        self._floors: dict[str, int] = {}  # oldest first: an offset at or before each wanted run
        self._found: dict[str, RunView] = {}
        self._running: dict[str, tuple[str, int]] = {}  # runs seen still going: (status, seen_ns), shared
        self._keep_places = False  # whether the scan under way notes where runs sit (oldest first only)
        self._lowest_reach: int | None = None  # the shallowest reach of the scan under way's wanted ids
        self._scan_reach: dict[str, int] = {}  # ``_reach`` and ``_floors`` as the scan under way took them
        self._scan_floors: dict[str, int] = {}
        self._places: dict[str, int] = {}
        self._missing: set[str] = set()
        self._unreached: set[str] = set()
        self._lock = anyio.Lock(fast_acquire=True)  # the scan waits for its followers itself, see _scan
        self._scans_taken = 0  # scans that took the wanted ids: a caller who asked before one took them is served
        self._pages_needed = 1  # pages the last scan read before it had found or proven missing what it wanted
        self._depths: list[int] = []  # how deep the callers waiting for the next scan expect their runs (lookup_all)
        self.length: int | None = None  # the list's length when a scan last read to its end (oldest first)
        # List places per run this client's ledger counts above a run (newest first): 1 when only this client
        # creates runs, 2 with a second client (another worker) creating as many. Learnt from the runs found.
        self.spread = 1.0
        self._deepest = -1  # the deepest place the scan under way found a wanted run at

    @property
    def facts(self) -> ListFacts:
        return self._learner.facts

    @property
    def page_items(self) -> int:
        """The runs a page of a scan holds: the size asked, unless the list was seen to give fewer."""
        return min(self._page_size, self.facts.page_cap or self._page_size)

    async def lookup(self, wanted: Mapping[str, float | None]) -> dict[str, RunView]:
        """The current view of these runs (id -> created_at); ids the scan did not reach are left out."""
        return (await self.lookup_all(wanted)).found

    async def lookup_all(
        self,
        wanted: Mapping[str, float | None],
        within: int | None = None,
        depth: int = 0,
        floors: Mapping[str, int] | None = None,
    ) -> Lookup:
        """``lookup``, with what the scan proved missing and what lay beyond ``within`` runs from the top of a
        newest-first list. ``depth``: how deep the caller expects its runs at least (the scan reads the pages
        down to there at once). ``floors``: for an oldest-first list, an offset at or before each run."""
        self._wanted.update(wanted)
        if depth:
            self._depths.append(depth)
        if within is not None:
            self._reach.update(dict.fromkeys(wanted, within))
        if floors:
            self._floors.update(floors)
        ticket = self._scans_taken
        try:
            async with self._lock:
                if self._scans_taken == ticket:  # no scan took our ids since we asked: run one for everybody
                    await self._scan()
        except BaseException:
            self._forget(wanted)  # cancelled before a scan took our ids, or while it read: leave nothing behind
            raise
        # a scan took our ids (and what it was told about them) when it began: only its answers are left here
        missing = self._missing.intersection(wanted)
        unreached = self._unreached.intersection(wanted)
        self._missing.difference_update(missing)
        self._unreached.difference_update(unreached)
        found, running, places = self._found, self._running, self._places
        views = {run_id: found.pop(run_id) for run_id in wanted if run_id in found}
        for run_id in wanted:
            mark = running.pop(run_id, None)
            if mark is not None:
                views[run_id] = RunView(run_id, mark[0], mark[1], None, None, None, "")
        return Lookup(
            found=views,
            missing=frozenset(missing),
            unreached=frozenset(unreached),
            places={run_id: places.pop(run_id) for run_id in wanted if run_id in places} if places else {},
        )

    def _forget(self, wanted: Mapping[str, float | None]) -> None:
        for run_id in wanted:
            for held in (self._wanted, self._reach, self._floors, self._found, self._running, self._places):
                held.pop(run_id, None)
            self._missing.discard(run_id)
            self._unreached.discard(run_id)

    async def _scan(self) -> None:
        # Followers on the shared tick wake within a millisecond or two of each other: waiting that long lets
        # all of them add what they want before the scan takes its list, so that one scan serves them all.
        await anyio.sleep(SCAN_GATHER_S)
        # This scan takes what its followers asked for; followers who ask from now on wait for the next one.
        wanted, self._wanted = self._wanted, {}
        self._scan_reach, self._reach = self._reach, {}
        self._scan_floors, self._floors = self._floors, {}
        self._keep_places = self.facts.order == "oldest_first"
        reach = self._scan_reach
        self._lowest_reach = min((reach[run_id] for run_id in wanted if run_id in reach), default=None)
        depths, self._depths = self._depths, []
        depth = max(depths, default=0)
        self._deepest = -1
        self._scans_taken += 1
        facts = self.facts
        if facts.offset == "ignored":
            await self._read_first_page(wanted)
        elif facts.order == "oldest_first":
            await self._read_oldest_first(wanted)
        elif facts.order == "unsorted":
            await self._read_pages(wanted, None, 0, depth)
        else:
            # the callers' depths count this client's runs: in list places, as far as seen, that many times more
            spread = self.spread
            await self._read_newest_first(wanted, sorted(round(d * spread) for d in depths))
            if not wanted and depth and self._deepest >= 0:  # all found: how deep they were, against the ledger
                self._learn_spread((self._deepest + 1) / depth)

    def _learn_spread(self, seen: float) -> None:
        seen = min(MAX_SPREAD, max(1.0, seen))
        self.spread = seen if seen > self.spread else self.spread + SPREAD_EASING * (seen - self.spread)

    async def _read_newest_first(self, wanted: dict[str, float | None], depths: list[int]) -> None:
        times = [t for t in wanted.values() if t is not None]
        dated = len(times) == len(wanted)
        start = self._skippable(max(times)) if dated and times else 0
        oldest = min(times) - TIE_SLACK_S if dated and times else None
        # A list shallower than the ledger says (runs deleted) shows older runs at the start: read from the top.
        depth = max(depths, default=0)
        read = await self._read_pages(wanted, oldest, start, *self._band(depths, start, dated), jumps=dated)
        while isinstance(read, _Jump):
            # what is still wanted lies far below: skip the pages of newer runs between (as at the start)
            band = self._band(depths, read.to, True)
            resume = read.resume
            read = await self._read_pages(wanted, oldest, read.to, *band, jumps=True, jumped=True)
            if read is False:
                read = await self._read_pages(wanted, oldest, resume, depth, jumped=True)
        if read is False and start:
            await self._read_pages(wanted, oldest, 0, depth)

    def _band(self, depths: list[int], start: int, jumps: bool) -> tuple[int, bool]:
        """How deep the callers' runs reach from ``start`` on (``depths`` sorted), and whether a gap of more
        than two pages ends that band there (a scan that ``jumps`` skips it: the pages read a few at once stop
        at the gap, not at the deepest caller's runs)."""
        end, gap = start, 2 * self.page_items
        for depth in depths:
            if jumps and depth - end > gap and end > start:
                return end, True
            end = max(end, depth)
        return end, False

    def _skippable(self, newest: float) -> int:
        """Runs at the top of the list that are newer than ``newest`` for sure: those this client created
        after it (other clients' runs only add to them), less a margin for creation times that tie."""
        if self._ledger is None:
            return 0
        return skip_start(self._ledger.created_after(newest))

    async def _read_oldest_first(self, wanted: dict[str, float | None]) -> None:
        # A run keeps its place: read from the lowest floor (a known place, or the list's length before the run
        # was created) to the end, or until every run is found.
        floors = [self._scan_floors.get(run_id, 0) for run_id in wanted]
        start = min(floors, default=0)
        await self._read_pages(wanted, None, start, max(floors, default=0) + 1)

    async def _read_first_page(self, wanted: dict[str, float | None]) -> None:
        """``offset`` is ignored: the first page, as large as the API gives, is all there is to read."""
        body, seen_ns = await self._get("list_runs", "/v1/test-calls", params={"limit": LIST_PAGE_SIZE, "offset": 0})
        if isinstance(body, list):
            self._take(body, wanted, 0, seen_ns)
            self._unreached.update(wanted)

    async def _read_pages(
        self,
        wanted: dict[str, float | None],
        oldest: float | None,
        start: int,
        depth: int = 0,
        gap_below: bool = False,
        jumps: bool = False,
        jumped: bool = False,
    ) -> bool | _Jump:
        """Read pages from ``start`` until every wanted run is found or proven missing. False when the first
        page, read below the top of a newest-first list, was not all newer than the wanted runs (nothing is
        concluded then). With ``jumps`` (newest first, every wanted run dated), a ``_Jump`` when the runs still
        wanted lie more than a page below the next one to read. ``depth``: how deep the callers' runs reach (to
        a gap in them, ``gap_below``); ``jumped``: this read follows a jump (the next scan's read-ahead is not
        learnt from it)."""
        size = self.page_items
        newest_first = self.facts.order in ("newest_first", "unknown")
        newest = max(t for t in wanted.values() if t is not None) if start and newest_first else None
        limit = self._max_pages if oldest is None and newest_first else self._max_dated_pages
        # Pages down to the depth the callers expect (or as deep as the last scan had to go) are read a few at
        # once: a scan slower than the tick would leave more runs open.
        needed = 1 if gap_below or not newest_first else self._pages_needed
        expected = max(needed, -(-(depth - start) // size))
        offset, pages, first_key = start, 0, None
        short: int | None = None  # a page shorter than asked, not yet known to be the last
        while pages < limit:
            count = max(1, min(limit - pages, expected - pages, PAGES_AT_ONCE))
            window = [offset + i * size for i in range(count)]
            for at, (body, seen_ns) in zip(window, await self._get_pages(window, size), strict=True):
                if at != window[0]:
                    # One page's runs at a time, then the loop: parsing pages read together in one step made
                    # batch starts late.
                    await anyio.lowlevel.checkpoint()
                pages += 1
                if not isinstance(body, list):
                    return True
                if short is not None and body:
                    self._learner.saw_short_page(short)
                if at == start and newest is not None:
                    first_at = (
                        parse_iso_or_none(body[0].get("created_at")) if body and isinstance(body[0], dict) else None
                    )
                    if first_at is None or first_at <= newest:
                        return False
                key = run_key(body[0]) if body else None
                if at == start:
                    first_key = key
                elif first_key is not None and body:
                    # a later page that starts as this scan's first did: the server ignored the offset
                    self._learner.saw_offset(key == first_key)
                    if key == first_key:
                        return True  # nothing below can be read
                self._learn_order(body)
                self._take(body, wanted, at, seen_ns)
                self._give_up_above(wanted, at + len(body))
                last_at = _created(body[-1]) if body else None
                page_is_older = oldest is not None and last_at is not None and last_at < oldest
                if not body:
                    self.length = at
                if not wanted or not body or page_is_older:
                    # read to the end, or past the oldest of them: what is still wanted is not in the list
                    self._missing.update(wanted)
                    if not jumped:
                        self._pages_needed = pages
                    return True
                offset = at + len(body)  # not the page size: a server may hold fewer items a page than asked
                short = len(body) if len(body) < size else None
                if short is not None:
                    break  # the pages read with it start at the wrong offsets: read on from this page's end
            if not (jumps and gap_below and short is None and wanted and offset >= depth):
                continue
            if (ahead := self._skippable(max(wanted.values()))) > offset + size:  # type: ignore[type-var]
                return _Jump(ahead, offset)
        return True

    def _learn_order(self, body: list[Any]) -> None:
        if len(body) > 1:
            self._learner.saw_order(page_order([_created(body[0]), _created(body[-1])]))

    def _take(self, body: list[Any], wanted: dict[str, float | None], at: int, seen_ns: int) -> None:
        """The wanted runs of a page, parsed (only those: parsing every run's stamps made starts late). A run
        still going is only noted, under a mark its page's runs of that status share: at thousands of runs a
        scan, a view each made the client's memory peak at every tick."""
        places = self._places if self._keep_places else None  # only an oldest-first list keeps its places
        marks: dict[str, tuple[str, int]] = {}
        deepest = -1
        for index, item in enumerate(body):
            # the id as ``run_key`` spells it, inline: this runs for every item of every page
            raw = item.get("id") if type(item) is dict else None
            kind = type(raw)
            key = raw if kind is str else str(raw) if kind is int else None
            if key is None or key not in wanted:
                continue
            status = item.get("status")
            if status in TERMINAL:
                view = parse_run(item, seen_ns)
                if view is None:
                    continue
                self._found[key] = view
            elif isinstance(status, str):
                mark = marks.get(status)
                if mark is None:
                    mark = marks[status] = (status, seen_ns)
                self._running[key] = mark
            else:
                continue
            if places is not None:
                places[key] = at + index
            deepest = index
            del wanted[key]
        if deepest >= 0 and at + deepest > self._deepest:
            self._deepest = at + deepest

    async def _get_pages(self, offsets: list[int], size: int) -> list[tuple[Any, int]]:
        """These pages of the list, read at once, in order."""
        answers: list[tuple[Any, int]] = [(None, 0)] * len(offsets)

        async def read(slot: int, offset: int) -> None:
            answers[slot] = await self._get("list_runs", "/v1/test-calls", params={"limit": size, "offset": offset})

        if len(offsets) == 1:
            await read(0, offsets[0])
            return answers
        async with anyio.create_task_group() as readers:
            for slot, offset in enumerate(offsets):
                readers.start_soon(read, slot, offset)
        return answers

    def _give_up_above(self, wanted: dict[str, float | None], depth: int) -> None:
        """Drop from ``wanted`` the ids whose reach the scan has read past (``depth`` runs from the top)."""
        reach = self._scan_reach
        if self._lowest_reach is None or depth < self._lowest_reach:
            return  # not a page past any (a walk of the wanted ids a page was a tenth of a deep scan's CPU)
        for run_id in [run_id for run_id in wanted if (within := reach.get(run_id)) is not None and within <= depth]:
            del wanted[run_id]
            self._unreached.add(run_id)
        self._lowest_reach = min((reach[run_id] for run_id in wanted if run_id in reach), default=None)


def skip_start(above: int) -> int:
    """Where a newest-first scan starts, given ``above`` runs this client created after the newest it wants."""
    return max(0, above - SKIP_MARGIN_RUNS - above // 10)


def _created(item: object) -> float | None:
    return parse_iso_or_none(item.get("created_at")) if isinstance(item, dict) else None
