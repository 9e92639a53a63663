"""The server's push-back, read from a response into one value: when to resume, and how much quota is left.

Reads ``Retry-After``, the IETF ``RateLimit`` / ``RateLimit-Policy`` fields, the older draft's ``RateLimit-*``
and ``X-RateLimit-*``; never raises on a header, and clamps every delay to ``max_pause``. The forms and which
wins: docs/internals.md#server-push-back-headers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from stressor.limits.structured import parse_members

DEFAULT_MAX_PAUSE = 300.0
"""The longest pause any header can impose by default, in seconds."""

SOURCE_RETRY_AFTER = "retry-after"
SOURCE_RATELIMIT = "ratelimit"
SOURCE_RATELIMIT_DRAFT = "ratelimit-draft"
SOURCE_X_RATELIMIT = "x-ratelimit"
SOURCE_NONE = "none"

_EPOCH_S = 1e9  # 2001-09-09: no API asks for a delay of 31 years
_EPOCH_MS = 1e12
_SATURATED = 2**63 - 1
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_PAUSE_STATUSES = frozenset({429, 503})

_WANTED = frozenset(
    {
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-rate-limit-limit",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
    }
)


@dataclass(frozen=True, slots=True)
class ServerSignal:
    """What one response said about the client's pace.

    - `retry_at`: monotonic time before which nothing more should be sent, or None (the governor decides which
      requests it holds: every one for an exhausted quota, the kind refused for a refusal's Retry-After).
    - `remaining`, `limit`: requests left in the current quota window and the quota size, when given.
    - `source`: which header family the pause (or, without a pause, the quota) came from: `retry-after`,
      `ratelimit` (IETF structured fields), `ratelimit-draft` (`RateLimit-Limit/-Remaining/-Reset`),
      `x-ratelimit`, or `none`.
    - `reset_at`: monotonic time the quota window resets, whether or not it is exhausted.
    - `window_s`: the quota window length from `RateLimit-Policy` (`w=`), when given.
    - `unparseable`: lower-case names of headers that were present but could not be read.
    """

    retry_at: float | None
    remaining: int | None
    limit: int | None
    source: str
    reset_at: float | None = None
    window_s: float | None = None
    unparseable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Quota:
    remaining: int | None
    limit: int | None
    reset_delay: float | None
    window_s: float | None = None


@dataclass(frozen=True, slots=True)
class _Policy:
    name: str | None
    quota: int | None
    window_s: float | None


@dataclass(frozen=True, slots=True)
class _State:
    name: str | None
    remaining: int | None
    reset_delay: float | None


def parse_retry_after(value: str, now_wall: float, max_delay: float = DEFAULT_MAX_PAUSE) -> float | None:
    """Seconds to wait according to a `Retry-After` value, or None when it is not a valid value.

    Accepts delay-seconds (a fractional value is tolerated) and HTTP-dates; `now_wall` (epoch seconds) is the
    wall-clock time the response was received. A date in the past gives 0; anything beyond `max_delay` gives
    `max_delay`, including numbers too large for a float.
    """
    if max_delay < 0:
        raise ValueError(f"max_delay must be >= 0, got {max_delay}")
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DECIMAL.fullmatch(text):
        # float() of a long digit string gives inf rather than raising, and min() then clamps it.
        return min(float(text), max_delay)
    # Every HTTP-date names a month; this keeps "-5" or "1e3" from reaching the lenient date parser.
    if not any(char.isalpha() for char in text):
        return None
    try:
        stamp = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    if stamp.tzinfo is None:
        # The asctime form and a "-0000" zone carry no offset; HTTP-dates are always GMT.
        stamp = stamp.replace(tzinfo=UTC)
    return min(max(stamp.timestamp() - now_wall, 0.0), max_delay)


def read_signal(
    status: int,
    headers: Mapping[str, str],
    now_mono: float,
    now_wall: float,
    max_pause: float = DEFAULT_MAX_PAUSE,
) -> ServerSignal | None:
    """Read the rate-limit push-back of one response; None when it has nothing to say about the pace.

    None means: no pause, no quota header, and no unreadable header (a Retry-After on a 2xx is ignored).

    `headers` may be any mapping (httpx.Headers or a plain dict; names are matched case-insensitively).
    `now_mono` is the monotonic time the response arrived and `now_wall` the wall clock at the same moment:
    dates and epoch resets are converted with the wall clock, and `retry_at` / `reset_at` are monotonic.

    The pause (`retry_at`):
    - 429 or 503: from `Retry-After`; without a readable one, from the quota reset when the quota is exhausted
      (remaining 0) or its remaining count is not given;
    - any other status: from the quota reset when remaining is 0 (the next request would be refused).
    Among the quota headers the IETF structured fields win over the older draft's, which win over
    `X-RateLimit-*`.
    """
    if max_pause < 0:
        raise ValueError(f"max_pause must be >= 0, got {max_pause}")
    found = _wanted_headers(headers)
    if not found:
        return None
    unparseable: list[str] = []

    retry_delay: float | None = None
    if "retry-after" in found:
        retry_delay = parse_retry_after(found["retry-after"], now_wall, max_pause)
        if retry_delay is None:
            unparseable.append("retry-after")

    quota: _Quota | None = None
    source = SOURCE_NONE
    # Every family is read, even after one has answered, so that all unreadable headers get reported.
    for family, reader in _FAMILIES:
        read = reader(found, now_wall, max_pause, unparseable)
        if read is not None and quota is None:
            quota, source = read, family

    pause: float | None = None
    if status in _PAUSE_STATUSES:
        if retry_delay is not None:
            pause, source = retry_delay, SOURCE_RETRY_AFTER
        elif quota is not None and quota.reset_delay is not None and quota.remaining in (None, 0):
            pause = quota.reset_delay
    elif quota is not None and quota.reset_delay is not None and quota.remaining == 0:
        pause = quota.reset_delay

    if pause is None and quota is None and not unparseable:
        return None
    return ServerSignal(
        retry_at=None if pause is None else now_mono + pause,
        remaining=None if quota is None else quota.remaining,
        limit=None if quota is None else quota.limit,
        source=source,
        reset_at=None if quota is None or quota.reset_delay is None else now_mono + quota.reset_delay,
        window_s=None if quota is None else quota.window_s,
        unparseable=tuple(dict.fromkeys(unparseable)),  # each name once, in the order met
    )


def _wanted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # Lower-casing only the handful of names we read keeps a plain dict as usable as httpx.Headers; the first
    # spelling wins when a dict holds the same name twice in different cases.
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in _WANTED and key not in found and isinstance(value, str):
            found[key] = value
    return found


def _read_ietf(found: Mapping[str, str], now_wall: float, max_pause: float, bad: list[str]) -> _Quota | None:
    policy_text = found.get("ratelimit-policy")
    state_text = found.get("ratelimit")
    if policy_text is None and state_text is None:
        return None
    policies = [] if policy_text is None else _read_policies(policy_text, bad)

    remaining: int | None = None
    limit: int | None = None
    reset: float | None = None
    window: float | None = None
    chosen: _Policy | None = None
    if state_text is not None:
        members, skipped = parse_members(state_text)
        entries = {m.key: m.value for m in members if m.key is not None}
        if entries.keys() & {"limit", "remaining", "reset"}:
            # The earlier draft's dictionary form: one quota, no policy names.
            limit = _sf_count(entries.get("limit"), "ratelimit", bad)
            remaining = _sf_count(entries.get("remaining"), "ratelimit", bad)
            reset = _sf_seconds(entries.get("reset"), "ratelimit", bad)
            chosen = policies[0] if len(policies) == 1 else None
        else:
            states = [
                _State(
                    name=m.value if isinstance(m.value, str) else None,
                    remaining=_sf_count(m.params.get("r"), "ratelimit", bad),
                    reset_delay=_sf_seconds(m.params.get("t"), "ratelimit", bad),
                )
                for m in members
                if m.key is None
            ]
            remaining, reset, chosen = _bind(states, policies)
        if skipped:
            bad.append("ratelimit")
    elif policies:
        chosen = min(policies, key=_policy_pace)

    if chosen is not None:
        limit = chosen.quota if limit is None else limit
        window = chosen.window_s
    if reset is not None:
        reset = min(reset, max_pause)
    if remaining is None and limit is None and reset is None:
        return None
    return _Quota(remaining=remaining, limit=limit, reset_delay=reset, window_s=window)


def _read_policies(text: str, bad: list[str]) -> list[_Policy]:
    members, skipped = parse_members(text)
    if skipped:
        bad.append("ratelimit-policy")
    policies: list[_Policy] = []
    for member in members:
        if member.key is not None:
            continue
        if "q" in member.params:
            quota = _sf_count(member.params["q"], "ratelimit-policy", bad)
            name = member.value if isinstance(member.value, str) else None
        else:
            # The earlier draft wrote the quota as the item itself: `100;w=60`.
            quota = _sf_count(member.value, "ratelimit-policy", bad)
            name = None
        window = _sf_seconds(member.params.get("w"), "ratelimit-policy", bad)
        policies.append(_Policy(name=name, quota=quota, window_s=window))
    return policies


def _bind(states: list[_State], policies: list[_Policy]) -> tuple[int | None, float | None, _Policy | None]:
    """Pick the quota that binds: the one with the fewest requests left (the longest reset breaks ties)."""
    counted = [s for s in states if s.remaining is not None]
    if not counted:
        return None, None, (policies[0] if len(policies) == 1 else None)
    binding = min(counted, key=lambda s: (s.remaining, -(s.reset_delay or 0.0)))
    reset = binding.reset_delay
    if binding.remaining == 0:
        # With several quotas exhausted, nothing can go until the last of them resets.
        exhausted = [s.reset_delay for s in counted if s.remaining == 0 and s.reset_delay is not None]
        reset = max(exhausted, default=None)
    named = [p for p in policies if p.name is not None and p.name == binding.name]
    if named:
        chosen: _Policy | None = named[0]
    else:
        chosen = policies[0] if len(policies) == 1 else None
    return binding.remaining, reset, chosen


def _policy_pace(policy: _Policy) -> float:
    # Without a current state, the most restrictive policy (fewest requests per second) is the one to heed.
    if policy.quota is None:
        return math.inf
    if policy.window_s:
        return policy.quota / policy.window_s
    return float(policy.quota)


def _sf_count(value: object, header: str, bad: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, _SATURATED)
    bad.append(header)
    return None


def _sf_seconds(value: object, header: str, bad: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value) if value < _SATURATED else math.inf
    bad.append(header)
    return None


def _read_separate(prefix: str) -> Callable[[Mapping[str, str], float, float, list[str]], _Quota | None]:
    """A reader for the `<prefix>limit`, `<prefix>remaining`, `<prefix>reset` header trio."""
    names = (f"{prefix}limit", f"{prefix}remaining", f"{prefix}reset")

    def read(found: Mapping[str, str], now_wall: float, max_pause: float, bad: list[str]) -> _Quota | None:
        limit_name, remaining_name, reset_name = names
        if not any(name in found for name in names):
            return None
        limit = _header_count(found, limit_name, bad)
        remaining = _header_count(found, remaining_name, bad)
        reset: float | None = None
        if reset_name in found:
            raw = _parse_decimal(found[reset_name])
            if raw is None:
                bad.append(reset_name)
            else:
                reset = _reset_delay(raw, now_wall, max_pause)
        if remaining is None and limit is None and reset is None:
            return None
        return _Quota(remaining=remaining, limit=limit, reset_delay=reset)

    return read


def _header_count(found: Mapping[str, str], name: str, bad: list[str]) -> int | None:
    if name not in found:
        return None
    raw = _parse_decimal(found[name])
    if raw is None:
        bad.append(name)
        return None
    return _SATURATED if raw >= _SATURATED else math.floor(raw)


def _parse_decimal(text: str) -> float | None:
    # Only the first member counts: repeated headers arrive comma-joined, and the older draft allowed
    # `RateLimit-Limit: 100, 100;w=60` (the quota, then its policies).
    first = text.split(",", 1)[0].split(";", 1)[0].strip()
    if not _DECIMAL.fullmatch(first):
        return None
    return float(first)


def _reset_delay(value: float, now_wall: float, max_pause: float) -> float:
    if value > _EPOCH_MS:
        value = value / 1000.0 - now_wall
    elif value > _EPOCH_S:
        value = value - now_wall
    return min(max(value, 0.0), max_pause)


_FAMILIES: tuple[tuple[str, Callable[[Mapping[str, str], float, float, list[str]], _Quota | None]], ...] = (
    (SOURCE_RATELIMIT, _read_ietf),
    (SOURCE_RATELIMIT_DRAFT, _read_separate("ratelimit-")),
    (SOURCE_X_RATELIMIT, _read_separate("x-ratelimit-")),
    (SOURCE_X_RATELIMIT, _read_separate("x-rate-limit-")),
)
