"""read_signal and classify_attempt on real httpx responses (respx-mocked), header names in any case."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import formatdate

import httpx
import pytest
import respx

from stressor.limits import HttpOutcome, classify_attempt, read_signal

NOW_WALL = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
NOW_MONO = 77.0
URL = "http://127.0.0.1:9/v1/test-calls"

# respx at the client level: it sees requests whatever transport the client uses (aiohttp by default).
pytestmark = [pytest.mark.anyio, pytest.mark.respx(using="httpx")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def fetch(status: int, headers: list[tuple[str, str]]) -> httpx.Response:
    with respx.mock(assert_all_called=True) as mock:
        mock.get(URL).mock(return_value=httpx.Response(status, headers=headers, json=[]))
        async with httpx.AsyncClient() as client:
            return await client.get(URL)


async def test_retry_after_seconds_in_odd_case() -> None:
    response = await fetch(429, [("rEtRy-AfTeR", "5")])
    got = read_signal(response.status_code, response.headers, NOW_MONO, NOW_WALL)
    assert got is not None
    assert (got.retry_at, got.source) == (NOW_MONO + 5, "retry-after")


async def test_retry_after_http_date() -> None:
    response = await fetch(503, [("Retry-After", formatdate(NOW_WALL + 90, usegmt=True))])
    got = read_signal(response.status_code, response.headers, NOW_MONO, NOW_WALL)
    assert got is not None
    assert got.retry_at == pytest.approx(NOW_MONO + 90)


async def test_x_ratelimit_epoch_reset_on_success() -> None:
    response = await fetch(
        200,
        [
            ("X-RATELIMIT-LIMIT", "60"),
            ("x-ratelimit-remaining", "0"),
            ("X-RateLimit-Reset", str(int(NOW_WALL) + 40)),
        ],
    )
    got = read_signal(response.status_code, response.headers, NOW_MONO, NOW_WALL)
    assert got is not None
    assert (got.limit, got.remaining, got.source) == (60, 0, "x-ratelimit")
    assert got.retry_at == pytest.approx(NOW_MONO + 40)


async def test_older_draft_headers() -> None:
    response = await fetch(200, [("ratelimit-limit", "10"), ("RATELIMIT-REMAINING", "4"), ("RateLimit-Reset", "3")])
    got = read_signal(response.status_code, response.headers, NOW_MONO, NOW_WALL)
    assert got is not None
    assert (got.limit, got.remaining, got.reset_at, got.retry_at) == (10, 4, NOW_MONO + 3, None)


async def test_ietf_policies_sent_as_repeated_header_lines() -> None:
    # Two RateLimit lines reach read_signal comma-joined by httpx: one structured-field list.
    response = await fetch(
        200,
        [
            ("RateLimit-Policy", '"minute";q=60;w=60'),
            ("ratelimit-policy", '"hour";q=1000;w=3600'),
            ("RateLimit", '"minute";r=12;t=20'),
            ("RATELIMIT", '"hour";r=0;t=250'),
        ],
    )
    got = read_signal(response.status_code, response.headers, NOW_MONO, NOW_WALL)
    assert got is not None
    assert (got.remaining, got.limit, got.window_s, got.source) == (0, 1000, 3600.0, "ratelimit")
    assert got.retry_at == NOW_MONO + 250


async def test_bad_header_values_never_raise() -> None:
    response = await fetch(
        429,
        [("Retry-After", "tomorrow-ish"), ("X-RateLimit-Remaining", "-3"), ("RateLimit", '"x";r=1;t=')],
    )
    got = read_signal(response.status_code, response.headers, NOW_MONO, NOW_WALL)
    assert got is not None
    assert got.retry_at is None
    assert set(got.unparseable) == {"retry-after", "x-ratelimit-remaining", "ratelimit"}


async def test_plain_response_carries_no_signal() -> None:
    response = await fetch(200, [("Content-Type", "application/json")])
    assert read_signal(response.status_code, response.headers, NOW_MONO, NOW_WALL) is None


async def test_classify_a_real_429_response() -> None:
    response = await fetch(429, [("Retry-After", "3")])
    outcome = HttpOutcome(response.status_code, response.headers)
    decision = classify_attempt("create", outcome, now_wall=NOW_WALL)
    assert (decision.action, decision.delay, decision.cause) == ("retry", 3.0, "http_429")
