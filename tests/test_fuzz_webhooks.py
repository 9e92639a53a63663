"""Fuzzing the webhook receiver over ASGI: whatever a sender posts (bodies, signature headers, paths, methods),
the answer is a 2xx or a 4xx, never a 500 or an exception, and every delivery (a POST, to any path) lands in
exactly one counter.

Half the deliveries are signed correctly (V1 or V2) so that random bodies get past the signature check and
reach the event parser, the deduper and the callback."""

from __future__ import annotations

import string
from typing import Any

import anyio
import httpx
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stressor.webhooks.events import CALL_GRADED, RUN_COMPLETED, WebhookEvent
from stressor.webhooks.receiver import WebhookReceiver
from stressor.webhooks.signature import V1_HEADER, V2_HEADER, sign_v1, sign_v2

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "whsec_fuzz0123456789abcdefABCDEF"
NOW = 1_764_441_849.0

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["completed", "failed", "2026-11-29T18:24:09.011Z", "0001-01-01T00:00:00+23:59", "tc_1"])
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
DATA_KEYS = ["id", "status", "call_id", "error_message", "batch_id", "created_at", "started_at", "completed_at"]
RUN = st.dictionaries(st.sampled_from(DATA_KEYS), JSON, max_size=8)
GRADE_KEYS = ["score", "status", "grader_model", "graded_at", "call_outcome"]
EVENT_DATA = st.dictionaries(
    st.sampled_from([*DATA_KEYS, "grade"]),
    JSON | st.dictionaries(st.sampled_from(GRADE_KEYS), JSON, max_size=5),
    max_size=8,
) | st.fixed_dictionaries({"test_call_run": RUN | JSON})
EVENTS = st.fixed_dictionaries(
    {"type": st.sampled_from([RUN_COMPLETED, CALL_GRADED, "test-call.exploded", ""]) | JSON, "data": EVENT_DATA | JSON}
)
BODIES = (
    EVENTS.map(orjson.dumps)
    | JSON.map(orjson.dumps)
    | st.binary(max_size=200)
    | st.sampled_from([b"", b"{", b"[]", b"null", b'{"type": "call.graded"}', b"\xff\xfe", b"{}" * 1000])
)
HEADER_TEXT = st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=90)
V2_VALUES = HEADER_TEXT | st.builds(
    lambda t, sig: f"t={t},v1={sig}",
    st.sampled_from(["0", "1", str(int(NOW)), "9" * 15, "9" * 16, "-1", "1e9", ""]),
    st.text(alphabet="0123456789abcdefABCDEFxyz", min_size=0, max_size=70),
)


Delivery = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    """(method, path, body, headers): signed right half of the time, garbled the other half."""
    body = draw(BODIES)
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    path = draw(st.sampled_from(["/webhooks", "/webhooks", "/webhooks?x=1", "/other", "/webhooks/"]))
    target = path
    signing = draw(st.sampled_from(["v1", "v2", "v2-stale", "v2-other-path", "garbage", "none"]))
    headers: dict[str, str] = {"content-type": draw(st.sampled_from(["application/json", "text/plain", ""]))}
    if signing == "v1":
        headers[V1_HEADER] = sign_v1(SECRET, body)
    elif signing == "v2":
        headers[V2_HEADER] = sign_v2(SECRET, int(NOW), "POST", target, body)
    elif signing == "v2-stale":
        headers[V2_HEADER] = sign_v2(SECRET, int(NOW) - 10_000, "POST", target, body)
    elif signing == "v2-other-path":
        headers[V2_HEADER] = sign_v2(SECRET, int(NOW), "POST", "/elsewhere", body)
    elif signing == "garbage":
        headers[draw(st.sampled_from([V1_HEADER, V2_HEADER]))] = draw(V2_VALUES)
    if draw(st.booleans()):
        headers["content-length"] = draw(st.sampled_from([str(len(body)), "0", "99999999999", "9" * 5000]))
    return method, path, body, headers


async def deliver_all(batch: list[Delivery]) -> tuple[list[int], Any, int]:
    events: list[WebhookEvent] = []
    receiver = WebhookReceiver(SECRET, lambda event, ns: events.append(event), wall=lambda: NOW, max_body=4096)
    transport = httpx.ASGITransport(app=receiver)  # an exception in the app comes out here, failing the test
    statuses = []
    async with httpx.AsyncClient(transport=transport, base_url="http://stressor.test") as client:
        for method, path, body, headers in batch:
            response = await client.request(method, path, content=body, headers=headers)
            statuses.append(response.status_code)
    return statuses, receiver.stats(), len(events)


@FUZZ
@given(batch=st.lists(deliveries(), min_size=1, max_size=6))
@example(batch=[("POST", "/webhooks", b"{}" * 3000, {"content-type": "application/json"})])
@example(batch=[("POST", "/webhooks", b"x", {V2_HEADER: "t=999999999999999,v1=" + "a" * 64})])
@example(
    batch=[
        (
            "POST",
            "/webhooks",
            orjson.dumps({"type": CALL_GRADED, "data": {"call_id": "c", "grade": {"score": 1e308}}}),
            {V1_HEADER: sign_v1(SECRET, orjson.dumps({"type": CALL_GRADED, "data": {"call_id": "c", "grade": {}}}))},
        )
    ]
)
def test_any_delivery_gets_a_2xx_or_a_4xx_and_is_counted_once(
    batch: list[Delivery],
) -> None:
    statuses, stats, delivered = anyio.run(deliver_all, batch)
    assert all(200 <= status < 300 or 400 <= status < 500 for status in statuses), statuses
    posts = sum(1 for method, _, _, _ in batch if method == "POST")
    astray = sum(1 for method, path, _, _ in batch if method == "POST" and path.split("?")[0] != "/webhooks")
    assert stats.received == posts  # a POST to another path is a delivery too, gone astray
    assert stats.wrong_path == astray
    outcomes = (
        stats.accepted
        + stats.duplicates
        + stats.replayed
        + stats.unknown_type
        + stats.bad_json
        + stats.bad_shape
        + stats.too_large
        + stats.incomplete
        + stats.slow_body
        + stats.wrong_path
        + stats.callback_errors
        + stats.bad_signature_total
    )
    assert outcomes == stats.received  # each delivery in exactly one outcome
    assert delivered == stats.accepted
    assert stats.rejected_route == len(batch) - posts
