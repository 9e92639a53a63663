"""Webhook signatures: what the receiver accepts and refuses, and replays told from first deliveries."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.webhooks.signature import (
    V1_HEADER,
    V2_HEADER,
    ReplayGuard,
    Verdict,
    sign_v1,
    sign_v2,
    verify,
)

SECRET = "whsec_current0123456789abcdef"
OLD_SECRET = "whsec_previous9876543210fedcba"
OTHER_SECRET = "whsec_someoneelse000000000000"
NOW = 1_764_441_849  # 2025-11-29T18:44:09Z
PATH = "/webhooks"
BODY = b'{"data":{"id":"tc_1","status":"completed"},"type":"test-call.completed"}'


def v2_headers(
    secret: str = SECRET, t: int = NOW, body: bytes = BODY, method: str = "POST", path: str = PATH
) -> dict[str, str]:
    return {V2_HEADER: sign_v2(secret, t, method, path, body)}


def check(
    headers: dict[str, str],
    body: bytes = BODY,
    secrets: tuple[str, ...] = (SECRET,),
    now: float = NOW,
    path: str = PATH,
    **kwargs: bool,
) -> Verdict:
    return verify(headers, "POST", path, body, secrets, now, **kwargs)


# -- signing -----------------------------------------------------------------------------------------------


def test_v1_is_lowercase_hex_hmac_sha256_of_the_raw_body() -> None:
    # the RFC 4231-style test vector everyone quotes for HMAC-SHA256
    assert sign_v1("key", b"The quick brown fox jumps over the lazy dog") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_v2_signs_timestamp_method_target_and_body_as_documented() -> None:
    header = sign_v2(SECRET, NOW, "post", "/webhooks?run=1", BODY)
    message = f"{NOW}\nPOST\n/webhooks?run=1\n".encode() + BODY
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


# -- V2 ----------------------------------------------------------------------------------------------------


def test_a_good_v2_delivery_is_accepted() -> None:
    verdict = check(v2_headers())
    assert verdict == Verdict(True, "v2", "ok", NOW, verdict.signature, 0)
    assert verdict.signature is not None


def test_header_names_are_case_insensitive() -> None:
    header = sign_v2(SECRET, NOW, "POST", PATH, BODY)
    assert check({V2_HEADER.lower(): header}).ok
    assert check({V2_HEADER.upper(): header}).ok


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (NOW + 300, "ok"),
        (NOW - 300, "ok"),
        (NOW + 301, "expired"),
        (NOW + 86_400, "expired"),
        (NOW - 301, "future"),
    ],
)
def test_v2_window_is_300_seconds_either_way(now: float, reason: str) -> None:
    assert check(v2_headers(), now=now).reason == reason


def test_a_forged_old_delivery_is_a_mismatch_not_expired() -> None:
    # "expired" means authentic but late (a clock problem); a forgery says so whatever its age
    assert check(v2_headers(secret=OTHER_SECRET), now=NOW + 10_000).reason == "mismatch"


def test_a_wrong_secret_is_a_mismatch() -> None:
    verdict = check(v2_headers(secret=OTHER_SECRET))
    assert (verdict.ok, verdict.scheme, verdict.reason) == (False, "v2", "mismatch")


@pytest.mark.parametrize("position", [0, len(BODY) // 2, len(BODY) - 1])
def test_a_body_altered_by_one_byte_is_refused(position: int) -> None:
    altered = bytearray(BODY)
    altered[position] ^= 0x01
    assert check(v2_headers(), body=bytes(altered)).reason == "mismatch"
    assert check({V1_HEADER: sign_v1(SECRET, BODY)}, body=bytes(altered)).reason == "mismatch"


def test_v2_binds_method_and_path() -> None:
    assert check(v2_headers(method="PUT")).reason == "mismatch"
    assert check(v2_headers(path="/elsewhere")).reason == "mismatch"
    assert check(v2_headers(path="/webhooks?a=1"), path="/webhooks?a=1").ok
    assert check(v2_headers(path="/webhooks?a=1"), path="/webhooks?a=2").reason == "mismatch"


def test_several_v1_entries_any_may_match() -> None:
    ours = sign_v2(SECRET, NOW, "POST", PATH, BODY).split(",")[1]
    theirs = sign_v2(OTHER_SECRET, NOW, "POST", PATH, BODY).split(",")[1]
    assert check({V2_HEADER: f"t={NOW},{theirs},{ours}"}).ok
    assert check({V2_HEADER: f"t={NOW}, {ours} ,{theirs}"}).ok
    assert check({V2_HEADER: f"t={NOW},{theirs}"}).reason == "mismatch"


def test_rotated_secrets_old_and_new_both_accepted() -> None:
    secrets = (SECRET, OLD_SECRET)
    new = check(v2_headers(secret=SECRET), secrets=secrets)
    old = check(v2_headers(secret=OLD_SECRET), secrets=secrets)
    assert (new.ok, new.secret_index) == (True, 0)
    assert (old.ok, old.secret_index) == (True, 1)
    assert check({V1_HEADER: sign_v1(OLD_SECRET, BODY)}, secrets=secrets).ok


def test_a_sender_signing_with_both_secrets_during_rotation() -> None:
    both = ",".join([f"t={NOW}"] + [sign_v2(s, NOW, "POST", PATH, BODY).split(",")[1] for s in (OLD_SECRET, SECRET)])
    assert check({V2_HEADER: both}, secrets=(SECRET,)).ok
    assert check({V2_HEADER: both}, secrets=(OLD_SECRET,)).ok


def test_unknown_schemes_in_v2_are_ignored() -> None:
    header = sign_v2(SECRET, NOW, "POST", PATH, BODY) + ",v0=deadbeef,v9=whatever"
    assert check({V2_HEADER: header}).ok


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"t={NOW}",
        "v1=" + "a" * 64,
        f"t=abc,v1={'a' * 64}",
        f"t=-5,v1={'a' * 64}",
        f"t={NOW},v1=nothex",
        f"t={NOW},v1={'a' * 63}",
        f"t={NOW},t={NOW + 1},v1={'a' * 64}",
        f"t=١٢٣,v1={'a' * 64}",  # Arabic-Indic digits: int() would take them
        f"t={NOW},v1={'é' * 64}",  # non-ASCII: compare_digest would raise on it
    ],
)
def test_a_malformed_v2_header_is_refused(value: str) -> None:
    verdict = check({V2_HEADER: value})
    assert (verdict.ok, verdict.scheme, verdict.reason) == (False, "v2", "malformed")


def test_repeated_v2_lines_joined_with_commas_still_verify() -> None:
    header = sign_v2(SECRET, NOW, "POST", PATH, BODY)
    assert check({V2_HEADER: f"{header},{header}"}).ok


# -- V1 and precedence -------------------------------------------------------------------------------------


def test_a_good_v1_delivery_is_accepted_without_any_timestamp() -> None:
    verdict = check({V1_HEADER: sign_v1(SECRET, BODY)}, now=NOW + 10**6)
    assert (verdict.ok, verdict.scheme, verdict.timestamp) == (True, "v1", None)


def test_v1_uppercase_hex_and_surrounding_spaces_are_tolerated() -> None:
    assert check({V1_HEADER: f"  {sign_v1(SECRET, BODY).upper()} "}).ok


@pytest.mark.parametrize("value", ["", "nothex", "a" * 63, "sha256=" + "a" * 64])
def test_a_malformed_v1_header_is_refused(value: str) -> None:
    assert check({V1_HEADER: value}).reason == "malformed"


def test_no_signature_header_is_missing() -> None:
    verdict = check({"content-type": "application/json"})
    assert verdict == Verdict(False, None, "missing")


def test_v2_decides_when_present_even_with_a_good_v1() -> None:
    good_v1 = sign_v1(SECRET, BODY)
    expired = {**v2_headers(t=NOW - 3600), V1_HEADER: good_v1}
    forged = {**v2_headers(secret=OTHER_SECRET), V1_HEADER: good_v1}
    assert check(expired).reason == "expired"
    assert check(forged).reason == "mismatch"
    assert check({V2_HEADER: "junk", V1_HEADER: good_v1}).reason == "malformed"


def test_require_v2_refuses_a_v1_only_delivery() -> None:
    verdict = check({V1_HEADER: sign_v1(SECRET, BODY)}, require_v2=True)
    assert (verdict.ok, verdict.reason) == (False, "v2_required")
    assert check(v2_headers(), require_v2=True).ok


def test_a_lone_secret_string_is_one_secret_not_its_characters() -> None:
    # iterated as characters, "whsec_..." would be 1-char keys: forgeable by trying 256 of them
    forged = {V1_HEADER: sign_v1("w", BODY)}
    assert not verify(forged, "POST", PATH, BODY, SECRET, NOW).ok
    assert verify({V1_HEADER: sign_v1(SECRET, BODY)}, "POST", PATH, BODY, SECRET, NOW).ok


@pytest.mark.parametrize("secrets", [(), ("",), (SECRET, "")])
def test_no_usable_secret_is_a_configuration_error(secrets: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="non-empty secret"):
        check(v2_headers(), secrets=secrets)


# -- replays -----------------------------------------------------------------------------------------------


def test_the_same_signed_delivery_again_is_seen_as_a_replay() -> None:
    guard = ReplayGuard()
    first = check(v2_headers())
    assert first.timestamp is not None and first.signature is not None
    assert not guard.seen(first.timestamp, first.signature, NOW)
    guard.remember(first.timestamp, first.signature, NOW)
    again = check(v2_headers(), now=NOW + 5)
    assert again.ok  # the signature is fine: deciding what to do with a replay is the receiver's job
    assert guard.seen(again.timestamp or 0, again.signature or "", NOW + 5)
    resigned = check(v2_headers(t=NOW + 5), now=NOW + 5)
    assert not guard.seen(resigned.timestamp or 0, resigned.signature or "", NOW + 5)


def test_replay_entries_are_forgotten_once_out_of_the_window() -> None:
    guard = ReplayGuard(window_s=300)
    guard.remember(NOW, "a" * 64, NOW)
    guard.remember(NOW + 100, "b" * 64, NOW + 100)
    assert guard.seen(NOW, "a" * 64, NOW + 300)
    assert not guard.seen(NOW, "a" * 64, NOW + 301)
    assert len(guard) == 1
    # by then verify refuses the delivery anyway
    assert check(v2_headers(), now=NOW + 301).reason == "expired"


def test_replay_memory_is_bounded() -> None:
    guard = ReplayGuard(window_s=300, max_entries=3)
    for i in range(10):
        guard.remember(NOW + i, f"{i:064x}", NOW)
    assert len(guard) == 3
    assert guard.seen(NOW + 9, f"{9:064x}", NOW)
    assert not guard.seen(NOW, f"{0:064x}", NOW)


# -- nothing ever raises -----------------------------------------------------------------------------------

_header_names = st.sampled_from([V1_HEADER, V2_HEADER, V1_HEADER.lower(), V2_HEADER.lower(), "content-type", "x-other"])
_v2_like = st.builds(
    lambda t, sep, entries: f"t={t}{sep}" + sep.join(f"{k}={v}" for k, v in entries),
    st.one_of(st.integers(), st.text(max_size=20)),
    st.sampled_from([",", ", ", ";", ""]),
    st.lists(st.tuples(st.sampled_from(["v1", "t", "v0", "", " v1 "]), st.text(max_size=70)), max_size=4),
)


@given(
    headers=st.dictionaries(_header_names, st.one_of(st.text(max_size=200), _v2_like), max_size=4),
    method=st.text(max_size=10),
    path=st.one_of(st.text(max_size=50), st.binary(max_size=50)),
    body=st.binary(max_size=300),
    now=st.floats(allow_nan=True, allow_infinity=True),
)
def test_arbitrary_headers_and_bodies_never_raise_and_never_pass(
    headers: dict[str, str], method: str, path: str | bytes, body: bytes, now: float
) -> None:
    verdict = verify(headers, method, path, body, (SECRET, OLD_SECRET), now)
    assert isinstance(verdict, Verdict)
    assert not verdict.ok
    assert verdict.reason in {"missing", "malformed", "mismatch"}


@given(body=st.binary(max_size=300), path=st.text(max_size=50), t=st.integers(0, 10**12))
def test_whatever_was_signed_verifies(body: bytes, path: str, t: int) -> None:
    assert verify({V2_HEADER: sign_v2(SECRET, t, "POST", path, body)}, "POST", path, body, (SECRET,), t).ok
    assert verify({V1_HEADER: sign_v1(SECRET, body)}, "POST", path, body, (SECRET,), t).ok
