"""The reconciliation walk: a lost create is proven absent only beyond this client's own earlier creates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stressor.targets.testcalls.listing import ListLearner, name_matches, name_rule, page_order
from stressor.targets.testcalls.reconcile import Absent, Found, Reorder, Unknown, Unproven, Walk

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def item(key: str, ms: int, name: str = "") -> dict[str, Any]:
    """A list item created ``ms`` milliseconds after T0."""
    return {"id": key, "name": name, "created_at": (T0 + timedelta(milliseconds=ms)).isoformat()}


def named(wanted: str) -> Any:
    return lambda listed: listed.get("name") == wanted


def walk_over(listing: list[dict[str, Any]], walk: Walk, page: int = 2) -> list[int]:
    """Feed the walk pages of ``listing`` as a server honouring offset would; the offsets it asked for."""
    asked = []
    while (offset := walk.next_offset()) is not None:
        asked.append(offset)
        walk.feed(listing[offset : offset + page])
    return asked


def test_newest_first_an_absence_needs_the_witness_and_nothing_like_it_above() -> None:
    listing = [item("new", 30, "someone"), item("w", 10), item("old", 0)]
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    assert walk_over(listing, walk) == [0, 2]  # the witness is on the first page; the next shows older items
    assert walk.verdict == Absent()


def test_the_lost_create_above_the_witness_is_found_by_its_name() -> None:
    listing = [item("other", 40, "x"), item("ours", 30, "ours"), item("w", 10), item("old", 0)]
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    walk_over(listing, walk)
    assert walk.verdict == Found(listing[1])


def test_without_its_anchor_in_the_listing_nothing_is_proven_this_time() -> None:
    # A server whose batch list leaves out some batches, or one read only partly: no anchor, no proof.
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    walk_over([item("a", 3), item("b", 2), item("c", 1)], walk)
    assert isinstance(walk.verdict, Unproven) and "listed before the create" in walk.verdict.why
    blind = Walk("newest_first", set(), set(), named("ours"))
    assert isinstance(blind.verdict, Unknown) and blind.next_offset() is None  # nothing was seen before it


def test_an_anchor_someone_else_made_counts_once_the_list_shows_this_clients_own_creates() -> None:
    # The first create of a run: the newest batch listed before it was sent anchors the walk, and a later
    # create of this client's, listed above, shows that its creates do appear in this list.
    listing = [item("later_own", 50), item("x", 40, "x"), item("seen_before", 10), item("old", 0)]
    walk = Walk("newest_first", {"seen_before"}, {"later_own"}, named("ours"))
    walk_over(listing, walk)
    assert walk.verdict == Absent()
    not_yet = Walk("newest_first", {"seen_before"}, {"later_own"}, named("ours"))
    walk_over(listing[1:], not_yet)
    assert isinstance(not_yet.verdict, Unproven) and "own creates" in not_yet.verdict.why


def test_a_list_empty_before_the_create_is_read_to_its_end() -> None:
    listing = [item("own", 20), item("x", 10, "x")]
    walk = Walk("newest_first", set(), {"own"}, named("ours"), open_end=True)
    assert walk_over(listing, walk) == [0, 2]
    assert walk.verdict == Absent()
    oldest = Walk("oldest_first", set(), {"own"}, named("ours"), open_end=True, start=0)
    walk_over([item("x", 10, "x"), item("ours", 20, "ours"), item("own", 30)], oldest)
    assert oldest.verdict == Found(item("ours", 20, "ours"))


def test_a_page_shorter_than_asked_is_not_the_end_of_the_list() -> None:
    # A server that holds 2 items a page whatever the limit: the walk reads on until an empty page or the witness.
    listing = [item(f"n{i}", 100 - i) for i in range(5)] + [item("w", 10)]
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    assert walk_over(listing, walk, page=2) == [0, 2, 4, 6]
    assert walk.verdict == Absent()


def test_items_created_in_the_witness_millisecond_are_looked_at_on_both_sides() -> None:
    # Ties in created_at may be listed in any order: the lost create can sit just below the witness.
    listing = [item("w", 10), item("ours", 10, "ours"), item("old", 0)]
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    walk_over(listing, walk, page=1)
    assert walk.verdict == Found(listing[1])


def test_an_ignored_offset_is_unknown_never_an_absence() -> None:
    listing = [item("a", 3), item("b", 2)]
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    while (offset := walk.next_offset()) is not None:
        walk.feed(listing)  # every page is the first page
        assert offset in (0, 2)
    assert isinstance(walk.verdict, Unknown) and "ignored its offset" in walk.verdict.why


def test_two_with_its_name_or_one_that_names_cannot_prove_are_unknown() -> None:
    twice = [item("a", 30, "ours"), item("b", 20, "ours"), item("w", 10)]
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    walk_over(twice, walk)
    assert isinstance(walk.verdict, Unknown) and "2 items" in walk.verdict.why

    maybe = Walk("newest_first", {"w"}, {"w"}, lambda listed: None if listed["id"] == "like" else False)
    walk_over([item("like", 30), item("w", 10)], maybe)
    assert isinstance(maybe.verdict, Unknown) and "names cannot prove" in maybe.verdict.why


def test_oldest_first_reads_from_the_floor_to_the_end_and_skips_what_precedes_the_witness() -> None:
    listing = [item("ancient", 0, "ours"), item("w", 10), item("x", 20, "x"), item("ours", 30, "ours")]
    walk = Walk("oldest_first", {"w"}, {"w"}, named("ours"), start=1)
    assert walk_over(listing, walk) == [1, 3, 4]
    assert walk.verdict == Found(listing[3])  # "ancient" precedes the witness: not a candidate
    absent = Walk("oldest_first", {"w"}, {"w"}, named("ours"), start=0)
    walk_over(listing[:3], absent)
    assert absent.verdict == Absent()


def test_a_list_in_the_other_order_asks_for_a_walk_that_way() -> None:
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    walk.feed([item("w", 10), item("x", 20)])
    assert walk.verdict == Reorder("oldest_first")
    unsorted = Walk("newest_first", {"w"}, {"w"}, named("ours"))
    unsorted.feed([item("a", 10), item("b", 30), item("c", 20)])
    assert isinstance(unsorted.verdict, Unknown) and "not sorted" in unsorted.verdict.why


def test_a_walk_stops_at_its_page_limit_without_concluding() -> None:
    walk = Walk("newest_first", {"w"}, {"w"}, named("ours"), max_pages=3)
    ms = 10_000
    while walk.next_offset() is not None:
        walk.feed([item(f"n{ms}", ms), item(f"n{ms - 1}", ms - 1)])
        ms -= 2
    assert isinstance(walk.verdict, Unknown) and "3 pages" in walk.verdict.why


def test_page_order_reads_the_direction_of_creation_times() -> None:
    assert page_order([3.0, 2.0, 2.0, 1.0]) == "newest_first"
    assert page_order([1.0, None, 2.0]) == "oldest_first"
    assert page_order([1.0, 3.0, 2.0]) == "unsorted"
    assert page_order([1.0, 1.0]) == page_order([]) == "unknown"


def test_names_learned_from_what_the_server_echoed() -> None:
    assert name_rule("#3~ab stressor x", "#3~ab stressor x") == ("whole", None)
    assert name_rule("#3~ab stressor x", "#3~ab st") == ("truncated", 8)
    assert name_rule("#3~ab stressor x", None) == name_rule("#3~ab stressor x", "") == ("absent", None)
    assert name_rule("#3~ab stressor x", "Batch 3") == ("changed", None)
    learner = ListLearner()
    learner.saw_name("#1~ab s", "#1~ab s")  # short enough to come back whole
    learner.saw_name("#10~ab stressor long", "#10~ab stressor")  # cut at 15
    facts = learner.facts
    assert (facts.names, facts.name_length) == ("truncated", 15)
    assert name_matches(facts, "#11~ab stressor long", "#11~ab stressor") is True
    assert name_matches(facts, "#11~ab stressor long", "#12~ab stressor") is False
    learner.saw_name("#12~ab stressor long", "#12~ab stresso")  # cut elsewhere: no rule left
    assert learner.facts.names == "changed"
    assert name_matches(learner.facts, "#12~ab stressor long", "#12~ab stresso") is None


def test_offset_counts_as_ignored_only_after_repeats_in_a_row() -> None:
    learner = ListLearner()
    learner.saw_offset(repeated_first=True)
    assert learner.facts.offset == "unknown"  # one repeat could be the list shifting by exactly a page
    learner.saw_offset(repeated_first=True)
    assert learner.facts.offset == "ignored"
    learner.saw_offset(repeated_first=False)
    assert learner.facts.offset == "honoured"


def test_an_order_seen_both_ways_is_unsorted_for_good() -> None:
    learner = ListLearner()
    learner.saw_order("newest_first")
    learner.saw_order("unknown")
    assert learner.facts.order == "newest_first"
    learner.saw_order("oldest_first")
    learner.saw_order("newest_first")
    assert learner.facts.order == "unsorted" and not learner.facts.followable
