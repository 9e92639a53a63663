"""Webhook signatures of the test-calls API: signing, verifying, and telling a replay from a first delivery.

V1 (``X-ThunderPhone-Signature``, HMAC of the body) and V2 (``X-ThunderPhone-Signature-V2``, HMAC of a
timestamp, the method, the request target and the body). The schemes and the decisions taken on them:
docs/internals.md#webhook-signatures.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

V1_HEADER = "X-ThunderPhone-Signature"
V2_HEADER = "X-ThunderPhone-Signature-V2"
DEFAULT_TOLERANCE_S = 300.0

_V1_KEY = V1_HEADER.lower()
_V2_KEY = V2_HEADER.lower()
# ASCII only: str.isdigit() and \d accept other scripts' digits, and compare_digest raises on non-ASCII str
_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
_UNIX_RE = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of ``verify``.

    ``reason`` is ``ok`` when ``ok``; otherwise one of ``missing`` (no signature header), ``v2_required``
    (only V1 while V2 is required), ``malformed`` (a header that cannot be read), ``mismatch`` (no entry
    matches any secret), ``expired`` / ``future`` (V2 authentic but ``t`` outside the window).
    ``timestamp`` is the V2 ``t`` when one could be read; ``signature`` is the hex that matched (the key for
    ``ReplayGuard``); ``secret_index`` is the position of the matching secret (tells when an old secret
    stops being used during a rotation).
    """

    ok: bool
    scheme: str | None
    reason: str
    timestamp: int | None = None
    signature: str | None = None
    secret_index: int | None = None


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _target_bytes(path_and_query: str | bytes) -> bytes:
    if isinstance(path_and_query, bytes):
        return path_and_query
    # surrogatepass: no str can make encoding raise (a lone surrogate would with the strict handler)
    return path_and_query.encode("utf-8", "surrogatepass")


def _v2_message(timestamp: int, method: str, path_and_query: str | bytes, body: bytes) -> bytes:
    head = f"{timestamp}\n{method.upper()}\n".encode("utf-8", "surrogatepass")
    return head + _target_bytes(path_and_query) + b"\n" + body


def sign_v1(secret: str, body: bytes) -> str:
    """The ``X-ThunderPhone-Signature`` value: lowercase hex HMAC-SHA256 of the raw body."""
    return _hmac_hex(secret, body)


def sign_v2(secret: str, timestamp: int, method: str, path_and_query: str | bytes, body: bytes) -> str:
    """The ``X-ThunderPhone-Signature-V2`` value ``t=<unix>,v1=<hex>`` for one request.

    ``path_and_query`` is the request target as sent (``/webhooks`` or ``/webhooks?x=1``); bytes are used
    as they are, text is encoded as UTF-8.
    """
    return f"t={timestamp},v1={_hmac_hex(secret, _v2_message(timestamp, method, path_and_query, body))}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on any mapping (a plain dict as well as ``httpx.Headers``)."""
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            return value if isinstance(value, str) else None
    return None


def _match(expected: str, candidates: Sequence[str]) -> str | None:
    """The candidate equal to ``expected``, compared in constant time; every candidate is compared."""
    found = None
    for candidate in candidates:
        if hmac.compare_digest(expected, candidate):
            found = candidate
    return found


def _check(secrets: Sequence[str], candidates: Sequence[str], message: bytes) -> tuple[str, int] | None:
    for index, secret in enumerate(secrets):
        matched = _match(_hmac_hex(secret, message), candidates)
        if matched is not None:
            return matched, index
    return None


def _parse_v2(value: str) -> tuple[int, list[str]] | None:
    """``(t, [hex, ...])`` from a V2 header, or None when it is malformed.

    Unknown keys are skipped (room for future schemes, as the ``v1`` name suggests); ``v1`` entries that are
    not 64 hex digits are skipped too; duplicated header lines joined with commas are fine as long as every
    ``t`` agrees.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for item in value.split(","):
        key, sep, entry = item.partition("=")
        if not sep:
            continue
        key, entry = key.strip(), entry.strip()
        if key == "t":
            if not _UNIX_RE.fullmatch(entry):
                return None
            if timestamp is not None and int(entry) != timestamp:
                return None
            timestamp = int(entry)
        elif key == "v1" and _HEX_RE.fullmatch(entry):
            candidates.append(entry.lower())
    if timestamp is None or not candidates:
        return None
    return timestamp, candidates


def verify(
    headers: Mapping[str, str],
    method: str,
    path_and_query: str | bytes,
    body: bytes,
    secrets: Sequence[str],
    now_wall: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    require_v2: bool = False,
) -> Verdict:
    """Check a delivery's signature headers against ``secrets`` (any may match: rotation).

    ``headers`` maps names (any case) to values; ``now_wall`` is epoch seconds. V2 decides when its header is
    present; otherwise V1 (unless ``require_v2``). Never parses the body and never raises on any header value
    or body. Raises ValueError when ``secrets`` is empty or holds an empty secret (a configuration error).
    """
    if isinstance(secrets, str):
        # a lone "whsec_..." would otherwise be iterated as one-character keys: trivially forgeable
        secrets = (secrets,)
    if not secrets or not all(secrets):
        raise ValueError("webhook verification needs at least one non-empty secret")
    v2 = _header(headers, _V2_KEY)
    if v2 is not None:
        parsed = _parse_v2(v2)
        if parsed is None:
            return Verdict(False, "v2", "malformed")
        timestamp, candidates = parsed
        found = _check(secrets, candidates, _v2_message(timestamp, method, path_and_query, body))
        if found is None:
            return Verdict(False, "v2", "mismatch", timestamp)
        signature, index = found
        if not math.isfinite(now_wall) or timestamp < now_wall - tolerance_s:
            return Verdict(False, "v2", "expired", timestamp, signature, index)
        if timestamp > now_wall + tolerance_s:
            return Verdict(False, "v2", "future", timestamp, signature, index)
        return Verdict(True, "v2", "ok", timestamp, signature, index)
    v1 = _header(headers, _V1_KEY)
    if v1 is None:
        return Verdict(False, None, "missing")
    if require_v2:
        return Verdict(False, "v1", "v2_required")
    candidate = v1.strip()
    if not _HEX_RE.fullmatch(candidate):
        return Verdict(False, "v1", "malformed")
    found = _check(secrets, [candidate.lower()], body)
    if found is None:
        return Verdict(False, "v1", "mismatch")
    return Verdict(True, "v1", "ok", None, found[0], found[1])


class ReplayGuard:
    """Remembers authentic V2 deliveries, by ``(t, signature)``, for as long as they could be replayed.

    A V2 delivery is only accepted while ``t`` is within ``window_s`` of now, so an entry whose ``t`` fell out
    of the window can be forgotten: a replay of it would fail verification as ``expired``. ``max_entries``
    bounds memory even under a flood of authentic deliveries (the oldest ``t`` is dropped first).

    "Seen" does not mean "reject" (docs/internals.md#webhook-signatures): a resend and a replay are the same
    bytes, and the caller answers 2xx without processing. Check with ``seen`` and ``remember`` only once the
    delivery was processed, so a delivery whose processing failed is processed again when the sender retries it.
    """

    def __init__(self, window_s: float = DEFAULT_TOLERANCE_S, max_entries: int = 100_000) -> None:
        if window_s <= 0 or max_entries <= 0:
            raise ValueError("ReplayGuard needs a positive window and a positive max_entries")
        self.window_s = window_s
        self.max_entries = max_entries
        self._keys: set[tuple[int, str]] = set()
        self._by_age: list[tuple[int, str]] = []  # a heap: the oldest t first

    def __len__(self) -> int:
        return len(self._keys)

    def _forget_before(self, now_wall: float) -> None:
        horizon = now_wall - self.window_s
        while self._by_age and (self._by_age[0][0] < horizon or len(self._by_age) > self.max_entries):
            self._keys.discard(heapq.heappop(self._by_age))

    def seen(self, timestamp: int, signature: str, now_wall: float) -> bool:
        """Whether this exact signed delivery was remembered before (forgets entries out of the window)."""
        self._forget_before(now_wall)
        return (timestamp, signature) in self._keys

    def remember(self, timestamp: int, signature: str, now_wall: float) -> None:
        """Remember a processed delivery."""
        key = (timestamp, signature)
        if key not in self._keys:
            self._keys.add(key)
            heapq.heappush(self._by_age, key)
        self._forget_before(now_wall)
