"""Reading the server's push-back: Retry-After in all forms, three generations of quota headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.limits import DEFAULT_MAX_PAUSE, ServerSignal, parse_retry_after, read_signal
from stressor.limits.structured import Member, parse_members

NOW_WALL = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
NOW_MONO = 5_000.0


def imf_date(epoch_s: float) -> str:
    return formatdate(epoch_s, usegmt=True)


def rfc850_date(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%A, %d-%b-%y %H:%M:%S GMT")


def asctime_date(epoch_s: float) -> str:
    stamp = datetime.fromtimestamp(epoch_s, tz=UTC)
    return f"{stamp:%a %b} {stamp.day:2d} {stamp:%H:%M:%S %Y}"


def signal(status: int, headers: dict[str, str], max_pause: float = DEFAULT_MAX_PAUSE) -> ServerSignal | None:
    return read_signal(status, headers, NOW_MONO, NOW_WALL, max_pause)


# --- Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), ("0", 0.0), ("  7 ", 7.0), ("1.5", 1.5), ("0300", 300.0)],
)
def test_retry_after_delay_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW_WALL) == expected


@pytest.mark.parametrize("form", [imf_date, rfc850_date, asctime_date])
def test_retry_after_http_date_in_every_rfc9110_form(form: Callable[[float], str]) -> None:
    assert parse_retry_after(form(NOW_WALL + 30), NOW_WALL) == pytest.approx(30.0)


@pytest.mark.parametrize("form", [imf_date, rfc850_date, asctime_date])
def test_retry_after_date_in_the_past_means_now(form: Callable[[float], str]) -> None:
    assert parse_retry_after(form(NOW_WALL - 3600), NOW_WALL) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        "-5",
        "+5",
        "",
        "   ",
        "soon",
        "1e3",
        "inf",
        "nan",
        "5 seconds",
        "Sun, 31 Feb 2026 08:49:37 GMT",  # no such day
        "Sun, 06 Nov 99999 08:49:37 GMT",  # year out of range
        "Sun, 06 Nov 2026 25:49:37 GMT",  # no such hour
    ],
)
def test_retry_after_garbage_is_none(value: str) -> None:
    assert parse_retry_after(value, NOW_WALL) is None


@pytest.mark.parametrize("value", ["301", "999999999999", "9" * 5000, "1" + "0" * 400 + ".5"])
def test_huge_retry_after_is_clamped_not_overflowing(value: str) -> None:
    assert parse_retry_after(value, NOW_WALL) == DEFAULT_MAX_PAUSE
    assert parse_retry_after(value, NOW_WALL, max_delay=10.0) == 10.0


def test_far_future_date_is_clamped() -> None:
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW_WALL, max_delay=60.0) == 60.0


def test_negative_max_delay_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_delay"):
        parse_retry_after("5", NOW_WALL, max_delay=-1.0)


@given(st.text(max_size=60), st.floats(min_value=0.0, max_value=10_000.0))
def test_retry_after_never_raises_and_stays_in_bounds(value: str, max_delay: float) -> None:
    delay = parse_retry_after(value, NOW_WALL, max_delay)
    assert delay is None or 0.0 <= delay <= max_delay


# --- read_signal: when there is nothing to read ---------------------------------------------------


def test_no_rate_limit_headers_gives_none() -> None:
    assert signal(200, {}) is None
    assert signal(200, {"Content-Type": "application/json"}) is None
    assert signal(429, {"Content-Type": "application/json"}) is None


# --- read_signal: Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_on_429_and_503_pauses_until_monotonic_deadline(status: int) -> None:
    got = signal(status, {"Retry-After": "12"})
    assert got == ServerSignal(retry_at=NOW_MONO + 12, remaining=None, limit=None, source="retry-after")


def test_retry_after_date_becomes_a_monotonic_deadline() -> None:
    got = signal(503, {"Retry-After": imf_date(NOW_WALL + 42)})
    assert got is not None
    assert got.retry_at == pytest.approx(NOW_MONO + 42)


def test_header_names_are_case_insensitive_in_a_plain_dict() -> None:
    for name in ("retry-after", "RETRY-AFTER", "rEtRy-AfTeR"):
        got = signal(429, {name: "3"})
        assert got is not None
        assert got.retry_at == NOW_MONO + 3


def test_retry_after_is_clamped_to_max_pause() -> None:
    got = signal(429, {"Retry-After": "86400"}, max_pause=120.0)
    assert got is not None
    assert got.retry_at == NOW_MONO + 120.0


def test_retry_after_wins_over_the_quota_reset_but_quota_is_still_reported() -> None:
    got = signal(
        429,
        {
            "Retry-After": "4",
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "50",
        },
    )
    assert got is not None
    assert (got.retry_at, got.source) == (NOW_MONO + 4, "retry-after")
    assert (got.remaining, got.limit, got.reset_at) == (0, 100, NOW_MONO + 50)


def test_unparseable_retry_after_on_429_falls_back_to_the_quota_reset() -> None:
    got = signal(429, {"Retry-After": "whenever", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9"})
    assert got is not None
    assert got.retry_at == NOW_MONO + 9
    assert got.source == "x-ratelimit"
    assert got.unparseable == ("retry-after",)


def test_unparseable_retry_after_alone_is_reported_without_a_pause() -> None:
    got = signal(429, {"Retry-After": "-1"})
    assert got == ServerSignal(None, None, None, "none", unparseable=("retry-after",))


def test_retry_after_on_a_success_does_not_pause() -> None:
    assert signal(200, {"Retry-After": "10"}) is None


# --- read_signal: X-RateLimit-* -------------------------------------------------------------------


def test_x_ratelimit_exhausted_on_a_success_pauses_until_reset() -> None:
    got = signal(200, {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20"})
    assert got == ServerSignal(
        retry_at=NOW_MONO + 20, remaining=0, limit=60, source="x-ratelimit", reset_at=NOW_MONO + 20
    )


def test_x_ratelimit_with_quota_left_reports_without_pausing() -> None:
    got = signal(200, {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "20"})
    assert got is not None
    assert (got.retry_at, got.remaining, got.limit, got.reset_at) == (None, 12, 60, NOW_MONO + 20)


def test_x_ratelimit_429_without_remaining_uses_the_reset() -> None:
    got = signal(429, {"X-RateLimit-Reset": "15"})
    assert got is not None
    assert got.retry_at == NOW_MONO + 15


def test_x_ratelimit_429_with_quota_left_gives_no_pause_to_trust() -> None:
    got = signal(429, {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "15"})
    assert got is not None
    assert got.retry_at is None


def test_exhausted_quota_without_reset_cannot_say_when() -> None:
    got = signal(200, {"X-RateLimit-Remaining": "0"})
    assert got is not None
    assert (got.retry_at, got.remaining) == (None, 0)


@pytest.mark.parametrize(
    ("reset", "expected_delay"),
    [
        ("30", 30.0),  # a delay
        ("2.5", 2.5),
        (str(int(NOW_WALL) + 45), 45.0),  # epoch seconds (above 1e9)
        (f"{NOW_WALL + 45.5:.1f}", 45.5),
        (str(int(NOW_WALL * 1000) + 8000), 8.0),  # epoch milliseconds (above 1e12)
        (str(int(NOW_WALL) - 100), 0.0),  # epoch already past
        ("1000000000.5", 0.0),  # just above 1e9: an epoch in 2001, long past
        ("999999999", DEFAULT_MAX_PAUSE),  # just below 1e9: a (silly) delay, clamped
        ("9" * 5000, DEFAULT_MAX_PAUSE),
    ],
)
def test_reset_is_a_delay_or_an_epoch(reset: str, expected_delay: float) -> None:
    got = signal(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert got is not None
    assert got.retry_at == pytest.approx(NOW_MONO + expected_delay)


def test_x_rate_limit_spelling_is_read_too() -> None:
    got = signal(200, {"x-rate-limit-limit": "15", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "60"})
    assert got is not None
    assert (got.limit, got.remaining, got.retry_at, got.source) == (15, 0, NOW_MONO + 60, "x-ratelimit")


@pytest.mark.parametrize("bad", ["abc", "-1", "", "1e5", "NaN", "0x10"])
def test_bad_quota_values_give_none_for_that_field_and_are_reported(bad: str) -> None:
    got = signal(200, {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": bad, "X-RateLimit-Reset": bad})
    assert got is not None
    assert (got.limit, got.remaining, got.reset_at, got.retry_at) == (100, None, None, None)
    assert got.unparseable == ("x-ratelimit-remaining", "x-ratelimit-reset")


def test_only_bad_values_still_report_what_was_unreadable() -> None:
    got = signal(200, {"X-RateLimit-Remaining": "lots"})
    assert got == ServerSignal(None, None, None, "none", unparseable=("x-ratelimit-remaining",))


def test_huge_counts_saturate_instead_of_failing() -> None:
    got = signal(200, {"X-RateLimit-Limit": "9" * 5000, "X-RateLimit-Remaining": "99999999999999999999"})
    assert got is not None
    assert got.limit == 2**63 - 1
    assert got.remaining == 2**63 - 1


def test_repeated_header_joined_with_commas_uses_the_first_value() -> None:
    got = signal(200, {"X-RateLimit-Remaining": "0, 0", "X-RateLimit-Reset": "5, 5"})
    assert got is not None
    assert got.retry_at == NOW_MONO + 5


# --- read_signal: the older draft's RateLimit-Limit / -Remaining / -Reset -------------------------


def test_older_draft_separate_headers() -> None:
    got = signal(200, {"RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "0", "RateLimit-Reset": "12"})
    assert got is not None
    assert (got.limit, got.remaining, got.retry_at, got.source) == (100, 0, NOW_MONO + 12, "ratelimit-draft")


# --- read_signal: IETF structured fields ----------------------------------------------------------


def test_ietf_single_policy() -> None:
    got = signal(200, {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=50;t=30'})
    assert got == ServerSignal(
        retry_at=None,
        remaining=50,
        limit=100,
        source="ratelimit",
        reset_at=NOW_MONO + 30,
        window_s=60.0,
    )


def test_ietf_exhausted_on_success_pauses() -> None:
    got = signal(200, {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=0;t=30'})
    assert got is not None
    assert got.retry_at == NOW_MONO + 30


def test_ietf_429_without_retry_after_uses_t() -> None:
    got = signal(429, {"RateLimit": '"default";r=0;t=7'})
    assert got is not None
    assert (got.retry_at, got.source) == (NOW_MONO + 7, "ratelimit")


def test_ietf_several_policies_the_one_with_fewest_left_binds() -> None:
    got = signal(
        200,
        {
            "RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
            "RateLimit": '"burst";r=40;t=30, "daily";r=5;t=3600',
        },
        max_pause=7200.0,
    )
    assert got is not None
    assert (got.remaining, got.limit, got.window_s, got.reset_at) == (5, 1000, 86400.0, NOW_MONO + 3600)
    assert got.retry_at is None


def test_ietf_several_exhausted_policies_wait_for_the_last_reset() -> None:
    got = signal(429, {"RateLimit": '"minute";r=0;t=30, "hour";r=0;t=100, "day";r=9;t=5000'})
    assert got is not None
    assert got.retry_at == NOW_MONO + 100


def test_ietf_unknown_params_and_token_names_are_accepted() -> None:
    got = signal(
        200,
        {
            "RateLimit-Policy": 'default;q=10;w=1;qu="requests";pk=:cHJvamVjdDEyMw==:;future=?1',
            "RateLimit": "default;r=3;t=0.5;pk=:cHJvamVjdDEyMw==:;extra=1.25",
        },
    )
    assert got is not None
    assert (got.remaining, got.limit, got.window_s, got.reset_at) == (3, 10, 1.0, NOW_MONO + 0.5)
    assert got.unparseable == ()


def test_ietf_policy_alone_reports_the_most_restrictive_quota() -> None:
    got = signal(200, {"RateLimit-Policy": '"a";q=100;w=10, "b";q=300;w=60'})
    assert got is not None
    assert (got.limit, got.window_s, got.remaining, got.retry_at) == (300, 60.0, None, None)


def test_ietf_earlier_dictionary_form() -> None:
    got = signal(200, {"RateLimit": "limit=100, remaining=0, reset=7", "RateLimit-Policy": "100;w=60"})
    assert got is not None
    assert (got.limit, got.remaining, got.retry_at, got.window_s) == (100, 0, NOW_MONO + 7, 60.0)


def test_ietf_t_is_clamped() -> None:
    got = signal(429, {"RateLimit": '"default";r=0;t=999999999999999999999'})
    assert got is not None
    assert got.retry_at == NOW_MONO + DEFAULT_MAX_PAUSE


def test_ietf_broken_member_is_skipped_and_reported_the_rest_is_obeyed() -> None:
    got = signal(200, {"RateLimit": '"a";r=0;t=10, "b;r=1', "RateLimit-Policy": '"a";q=-5;w=60'})
    assert got is not None
    assert (got.remaining, got.retry_at, got.limit, got.window_s) == (0, NOW_MONO + 10, None, 60.0)
    assert set(got.unparseable) == {"ratelimit", "ratelimit-policy"}


def test_ietf_wrong_types_are_reported() -> None:
    got = signal(200, {"RateLimit": '"a";r=lots;t="soon"'})
    assert got is not None
    assert got.unparseable == ("ratelimit",)  # reported once however many fields were bad
    assert (got.remaining, got.reset_at) == (None, None)


def test_ietf_wins_over_older_headers() -> None:
    got = signal(
        200,
        {
            "RateLimit": '"default";r=9;t=3',
            "RateLimit-Remaining": "1",
            "X-RateLimit-Remaining": "2",
        },
    )
    assert got is not None
    assert (got.remaining, got.source) == (9, "ratelimit")


# --- read_signal: never raises --------------------------------------------------------------------

_NAMES = [
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
_VALUE_PIECES = st.sampled_from(
    ['"default"', "default", ";r=", ";t=", ";q=", ";w=", "0", "5", "-1", "9" * 40, ".5", ",", " ", '"',
     "(", ")", "?1", ":", "abc", "=", "limit", "remaining", "reset", "\\", "GMT",
     "Sun, 06 Nov 1994 08:49:37 GMT"]
)  # fmt: skip


@given(
    status=st.sampled_from([200, 201, 429, 500, 503]),
    headers=st.dictionaries(
        st.sampled_from(_NAMES),
        st.one_of(st.text(max_size=30), st.lists(_VALUE_PIECES, max_size=12).map("".join)),
        max_size=6,
    ),
    max_pause=st.floats(min_value=0.0, max_value=1000.0),
)
def test_read_signal_never_raises_and_stays_in_bounds(status: int, headers: dict[str, str], max_pause: float) -> None:
    got = read_signal(status, headers, NOW_MONO, NOW_WALL, max_pause)
    if got is None:
        return
    assert got.source in {"retry-after", "ratelimit", "ratelimit-draft", "x-ratelimit", "none"}
    for deadline in (got.retry_at, got.reset_at):
        assert deadline is None or NOW_MONO <= deadline <= NOW_MONO + max_pause
    for count in (got.remaining, got.limit):
        assert count is None or count >= 0
    assert set(got.unparseable) <= {name.lower() for name in headers}


# --- the structured-field reader itself -----------------------------------------------------------


def test_structured_members_of_every_bare_type() -> None:
    members, skipped = parse_members('"a, \\"b\\"";x=1, tok/en:1;y, 42;z=-1.5, ?0, :aGk=:, (1 "two");p=?1, k=3')
    assert not skipped
    assert members == [
        Member(None, 'a, "b"', {"x": 1}),
        Member(None, "tok/en:1", {"y": True}),
        Member(None, 42, {"z": -1.5}),
        Member(None, False, {}),
        Member(None, b"hi", {}),
        Member(None, ((1, {}), ("two", {})), {"p": True}),
        Member("k", 3, {}),
    ]


@pytest.mark.parametrize("broken", ["?2", ":!!:", ";x=1", "a;=1", "1;x=", "a b", "é", "", "1" * 101])
def test_structured_broken_member_is_skipped(broken: str) -> None:
    members, skipped = parse_members(f"good, {broken}, 7")
    assert skipped
    assert members == [Member(None, "good", {}), Member(None, 7, {})]


@pytest.mark.parametrize("broken", ['"open', "(1 2"])
def test_structured_unterminated_string_or_list_swallows_the_rest(broken: str) -> None:
    # The commas after an unclosed quote or parenthesis are inside it: the members before still count.
    members, skipped = parse_members(f"good, {broken}, 7")
    assert skipped
    assert members == [Member(None, "good", {})]
