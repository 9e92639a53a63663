"""The lists' behaviour, read before the first create: a few non-billable GETs that show what a run relies on.

``probe_lists`` reads the first pages of the run and batch lists, single items at offsets 1 and 2, past a short
page, and an oldest-first list's length; ``Preflight`` says whether a run can follow its runs, and what it
adapts to. What an empty list cannot show is checked later, on this client's own runs (docs/servers.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stressor.targets.server_clock import ClockOffset
from stressor.targets.testcalls.listing import ListFacts, ListLearner, Order, page_order
from stressor.targets.testcalls.reconcile import item_key
from stressor.timestamps import parse_iso_or_none

RUNS = "/v1/test-calls"
BATCHES = "/v1/test-call-batches"
PROBE_LIMIT = 100  # items asked for on the first page of each list
MAX_LENGTH = 1 << 24  # a list longer than this is not measured (its length stays unknown)

# get(path, limit, offset) -> the page's items, or None when it could not be read
PageGet = Callable[[str, int, int], Awaitable[list[Any] | None]]


@dataclass(frozen=True, slots=True)
class Preflight:
    """What the lists showed before the first create."""

    facts: ListFacts
    runs_read: bool  # whether the run list's first page could be read at all
    runs_listed: int  # items on the run list's first page (0: nothing could be checked yet)
    run_length: int | None  # the run list's length when known (empty, or oldest first): where new runs appear
    batch_order: Order
    batch_length: int | None
    batches_listed: int
    longest_name: int  # characters of the longest batch name listed
    unnamed: int  # listed batches without a name
    # Ids on each list's first page (newest first): items that existed before this client's first create.
    run_anchors: frozenset[str] = frozenset()
    batch_anchors: frozenset[str] = frozenset()

    def refusal(self) -> str | None:
        """Why a run cannot follow its runs in this list at all (one sentence), or None."""
        facts = self.facts
        if facts.order == "unsorted":
            return "its run list is not sorted by creation time, so stressor could not find its runs in it"
        if facts.offset == "ignored" and facts.order == "oldest_first" and self.runs_listed >= PROBE_LIMIT:
            return (
                "its run list shows the oldest runs first and ignores `offset`, so runs created now would never "
                "be on the one page it shows"
            )
        return None

    def adaptations(self) -> list[str]:
        """What a run does differently on this server, one sentence each."""
        facts = self.facts
        out = []
        if facts.order == "oldest_first":
            out.append("the run list shows the oldest runs first: runs are followed by their place in it")
        if facts.offset == "ignored":
            out.append(
                "the run list ignores `offset`: only its first page can be read, and a run that sinks below it "
                "before it ends is counted unknown"
            )
        if facts.page_cap is not None:
            out.append(f"the run list holds at most {facts.page_cap} runs a page: lists are read page by page")
        if not self.runs_read:
            out.append("the run list could not be read: its order and paging are checked on this run's own runs")
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "run_list": {
                **self.facts.to_json(),
                "read": self.runs_read,
                "listed": self.runs_listed,
                "length": self.run_length,
            },
            "batch_list": {
                "order": self.batch_order,
                "listed": self.batches_listed,
                "length": self.batch_length,
                "longest_name": self.longest_name,
                "unnamed": self.unnamed,
            },
        }


RATE_HEADER_WORDS = ("ratelimit", "rate-limit", "retry-after")


def rate_limit_headers(headers: Mapping[str, str]) -> set[str]:
    """The names of rate-limit headers among an answer's (lower case)."""
    return {name.lower() for name in headers if any(word in name.lower() for word in RATE_HEADER_WORDS)}


@dataclass(frozen=True, slots=True)
class Inspection:
    """What ``TestCallsTarget.inspect`` found, before any load: why the server could not be reached or used,
    or what its lists and clock showed."""

    unreachable: str | None = None  # why not, in words a user can act on
    health_status: int | None = None  # ``/v1/healthz`` answered this, not 200
    key_status: int | None = None  # the authenticated list request answered this
    preflight: Preflight | None = None
    clock: ClockOffset | None = None
    rate_headers: tuple[str, ...] = ()


def _stamps(items: list[Any]) -> list[float | None]:
    return [parse_iso_or_none(item.get("created_at")) if isinstance(item, dict) else None for item in items]


async def probe_lists(get: PageGet, learner: ListLearner) -> Preflight:
    """Read the lists as the preflight does; what they showed goes to ``learner`` as well. A list that could
    not be read shows nothing: not even that it is empty."""
    read = await get(RUNS, PROBE_LIMIT, 0)
    first = read or []
    learner.saw_order(page_order(_stamps(first)))
    if len(first) >= 3:
        for offset in (1, 2):
            one = await get(RUNS, 1, offset)
            if one:
                learner.saw_offset(item_key(one[0]) == item_key(first[0]))
    if 0 < len(first) < PROBE_LIMIT and learner.facts.offset != "ignored":
        more = await get(RUNS, PROBE_LIMIT, len(first))
        if more:
            learner.saw_short_page(len(first))
    facts = learner.facts
    run_length = 0 if read == [] else None
    if first and facts.order == "oldest_first" and facts.offset == "honoured":
        run_length = await _length(get, RUNS, len(first))

    listed = await get(BATCHES, PROBE_LIMIT, 0)
    batches = listed or []
    batch_order = page_order(_stamps(batches))
    batch_length = 0 if listed == [] else None
    if batches and batch_order == "oldest_first" and facts.offset != "ignored":
        batch_length = await _length(get, BATCHES, len(batches))
    names = [b.get("name") for b in batches if isinstance(b, dict)]
    return Preflight(
        runs_read=read is not None,
        run_anchors=_anchors(first, facts.order),
        batch_anchors=_anchors(batches, batch_order),
        facts=learner.facts,
        runs_listed=len(first),
        run_length=run_length,
        batch_order=batch_order,
        batch_length=batch_length,
        batches_listed=len(batches),
        longest_name=max((len(n) for n in names if isinstance(n, str)), default=0),
        unnamed=sum(1 for n in names if not isinstance(n, str) or not n),
    )


def _anchors(items: list[Any], order: Order) -> frozenset[str]:
    if order == "oldest_first":
        return frozenset()  # its first page is its oldest: the list's length anchors instead
    return frozenset(key for item in items if (key := item_key(item)) is not None)


async def _length(get: PageGet, path: str, at_least: int) -> int | None:
    """How many items a list holds, found with single-item reads: doubling past the end, then halving back."""
    low, high = at_least, max(2 * at_least, 1)  # the item at ``low - 1`` exists
    while await get(path, 1, high - 1):
        low, high = high, high * 2
        if high > MAX_LENGTH:
            return None
    while high - low > 1:  # the item at low - 1 exists, the one at high - 1 does not
        middle = (low + high) // 2
        if await get(path, 1, middle - 1):
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One line of ``stressor check``: what a run relies on, what the server showed, and what a run does about
    it: ``ok``, ``adapts``, ``refuses`` (a run would not start), ``later`` (checked on the run's own runs),
    ``fail`` (the server cannot be used)."""

    what: str
    seen: str
    verdict: str


def check_rows(inspection: Inspection) -> list[CheckRow]:
    """The rows of ``stressor check`` for an inspection (the webhook row is the CLI's: it needs the URL)."""
    if inspection.unreachable is not None:
        return [CheckRow("reachable", inspection.unreachable, "fail")]
    rows = [CheckRow("reachable", "GET /v1/healthz answered 200", "ok")]
    if inspection.health_status is not None:
        return [CheckRow("reachable", f"GET /v1/healthz answered {inspection.health_status}, not 200", "fail")]
    key = inspection.key_status
    if key == 200:
        rows.append(CheckRow("API key", "accepted", "ok"))
    elif inspection.preflight is None:
        rows.append(CheckRow("API key", f"refused: GET /v1/test-calls answered {key}", "fail"))
    else:
        rows.append(CheckRow("API key", f"GET /v1/test-calls answered {key}: not refused, not yet accepted", "later"))
    preflight = inspection.preflight
    if preflight is not None:
        rows.extend(_list_rows(preflight))
    clock = inspection.clock
    if clock is None:
        rows.append(CheckRow("server clock", "no Date header: measured on this run's own creates", "later"))
    else:
        ahead = "ahead of" if clock.offset_s > 0 else "behind"
        rows.append(
            CheckRow(
                "server clock",
                f"{abs(clock.offset_s):.2f} s {ahead} this machine's (± {clock.error_s:.2f} s, from {clock.source})",
                "adapts" if abs(clock.offset_s) > clock.error_s else "ok",
            )
        )
    headers = ", ".join(inspection.rate_headers) or "none seen (a 429 or 503 is still obeyed)"
    rows.append(CheckRow("rate-limit headers", headers, "ok"))
    return rows


def _list_rows(preflight: Preflight) -> list[CheckRow]:
    facts = preflight.facts
    order = {
        "newest_first": ("newest first", "ok"),
        "oldest_first": ("oldest first: runs are followed by their place", "adapts"),
        "unsorted": ("not sorted by creation time", "refuses"),
        "unknown": ("cannot tell yet (too few runs listed)", "later"),
    }[facts.order]
    offset = {
        "honoured": ("honoured", "ok"),
        "ignored": ("ignored: only the first page can be read", "refuses" if preflight.refusal() else "adapts"),
        "unknown": ("cannot tell yet (fewer than 3 runs listed)", "later"),
    }[facts.offset]
    if facts.page_cap is not None:
        pages = (f"at most {facts.page_cap} runs a page (asked {PROBE_LIMIT}): read on past short pages", "adapts")
    elif preflight.runs_listed >= PROBE_LIMIT:
        pages = (f"{PROBE_LIMIT} asked, {PROBE_LIMIT} given", "ok")
    else:
        pages = (f"{preflight.runs_listed} runs listed in all: a cap cannot show yet", "later")
    if preflight.batches_listed == 0:
        names = ("no batch listed yet: checked on this run's own creates", "later")
    elif preflight.unnamed == preflight.batches_listed:
        names = (f"none of {preflight.batches_listed} listed batches has a name", "adapts")
    else:
        names = (
            f"longest of {preflight.batches_listed} listed: {preflight.longest_name} characters; whether names come "
            "back whole is checked on this run's own creates",
            "later",
        )
    batch_order = {
        "newest_first": ("newest first", "ok"),
        "oldest_first": ("oldest first", "ok"),
        "unsorted": ("not sorted: a create whose answer is lost cannot be looked for", "adapts"),
        "unknown": ("cannot tell yet (too few batches listed)", "later"),
    }[preflight.batch_order]
    return [
        CheckRow("run list order", *order),
        CheckRow("run list offset", *offset),
        CheckRow("run list page size", *pages),
        CheckRow("batch list order", *batch_order),
        CheckRow("batch names", *names),
    ]
