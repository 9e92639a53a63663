"""The reconciliation's loop, without HTTP: settle delays before a create in doubt is looked for, two listings a
settle delay apart to prove it absent, unread listings asked again with backoff, and the deadline."""

from __future__ import annotations

from stressor.targets.testcalls.reconcile import (
    MIN_WAIT_S,
    Absent,
    Look,
    Reconciliation,
    Unknown,
    Unproven,
    Unread,
    Wait,
)


def reconciliation(*, in_doubt: bool = True, now: float = 100.0, backoff: float = 0.1) -> Reconciliation:
    return Reconciliation(
        in_doubt=in_doubt, settle_s=2.0, deadline_s=10.0, now=now, backoff=lambda failures: backoff * failures
    )


def test_a_create_in_doubt_is_looked_for_after_a_settle_delay_and_proved_absent_by_two_listings() -> None:
    loop = reconciliation()
    assert loop.next(100.0) == Wait(2.0)  # the server may still hold it: not looked for at once
    assert loop.next(102.0) == Look()
    assert loop.looked(Absent()) is None  # one listing is not enough
    assert loop.next(102.1) == Wait(2.0)
    assert loop.next(104.1) == Look()
    assert loop.looked(Absent()) == Absent()


def test_a_create_answered_with_an_unreadable_2xx_is_looked_for_at_once_and_once() -> None:
    loop = reconciliation(in_doubt=False)
    assert loop.next(100.0) == Look()
    assert loop.looked(Absent()) == Absent()


def test_unread_and_unproven_listings_are_asked_again_with_backoff_until_the_deadline() -> None:
    loop = reconciliation(in_doubt=False, backoff=1.5)
    now = 100.0
    assert loop.next(now) == Look()
    waits = []
    for failure in range(1, 10):
        listing = Unread("the list could not be read") if failure % 2 else Unproven("does not show its creates")
        assert loop.looked(listing) is None
        step = loop.next(now)
        if isinstance(step, Unknown):
            break
        assert isinstance(step, Wait)
        waits.append(step.seconds)
        now += step.seconds
        assert loop.next(now) == Look()
    assert waits == [1.5, 3.0, 4.5]  # the backoff grows with the failures in a row
    # 9 s spent; the next wait (6 s) would pass the 10 s deadline: given up, saying what the last listing said
    assert step == Unknown("does not show its creates within 10 s")


def test_the_deadline_leaves_out_the_settle_delays() -> None:
    loop = reconciliation(backoff=3.0)
    assert loop.next(100.0) == Wait(2.0)
    assert loop.next(102.0) == Look()
    assert loop.looked(Absent()) is None
    assert loop.next(102.0) == Wait(2.0)
    assert loop.next(104.0) == Look()
    assert loop.looked(Unread("a 503")) is None
    # the deadline: 100 + two settle delays of 2 s + 10 s = 114. A 3 s wait from 110.5 ends before it...
    assert loop.next(110.5) == Wait(3.0)
    assert loop.next(113.5) == Look()
    assert loop.looked(Unread("a 503")) is None
    # ...the next one (6 s: two failures in a row) would end after it
    assert loop.next(113.5) == Unknown("a 503 within 10 s")


def test_a_listing_the_deadline_comes_first_for_after_an_unconfirmed_absence_says_so() -> None:
    loop = reconciliation()
    assert loop.next(100.0) == Wait(2.0)
    assert loop.next(102.0) == Look()
    assert loop.looked(Absent()) is None
    assert loop.next(113.0) == Unknown("its absence was not confirmed within 10 s")


def test_a_backoff_of_nothing_still_waits_a_moment() -> None:
    loop = reconciliation(in_doubt=False, backoff=0.0)
    assert loop.next(100.0) == Look()
    assert loop.looked(Unread("reset")) is None
    assert loop.next(100.0) == Wait(MIN_WAIT_S)
