"""Fuzzing the simulator's app over ASGI: any method, path, query, headers and body get an answer below 500
(the API's own 4xx), never an exception; the app keeps serving afterwards."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stressor.sim.app import create_app
from stressor.sim.config import SimConfig
from stressor.sim.model import SimModel
from stressor.sim.server import monotonic_seconds

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = "sk_test_fuzz_simulator"

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["agent", "phone_number", "outbound", "inbound", "bot", "sip", "+14155550123", ""])
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
REQUEST_KEYS = [
    "target_type", "target_id", "direction", "mode", "scenario_prompt", "consent_to_charge", "target_number",
    "run_count", "stagger_seconds", "scenario_prompts", "name",
]  # fmt: skip
CREATE_BODIES = st.dictionaries(st.sampled_from(REQUEST_KEYS), JSON, max_size=11).map(
    lambda body: {"target_type": "agent", "target_id": 1, "consent_to_charge": True, **body}
)
BODIES = CREATE_BODIES.map(orjson.dumps) | JSON.map(orjson.dumps) | st.binary(max_size=100)
PATHS = st.sampled_from(
    [
        "/v1/test-calls",
        "/v1/test-call-batches",
        "/v1/test-call-batches/tcb_000001",
        "/v1/test-call-batches/%00",
        "/v1/calls/call_000001",
        "/v1/calls/x/transcript",
        "/v1/calls/x/grade",
        "/v1/healthz",
        "/_sim/truth",
        "/_sim/stats",
        "/",
        "//v1//test-calls",
        "/v1/test-calls/",
        "/v1/%ff%fe",
    ]
)
QUERY_VALUES = st.sampled_from(["", "0", "1", "-1", "200", "201", "9" * 30, "9" * 5000, "abc", "%ff", "queued"])
QUERIES = st.dictionaries(
    st.sampled_from(["limit", "offset", "status", "target_type", "agent_id", "other"]), QUERY_VALUES, max_size=4
)
AUTH = st.sampled_from([f"Bearer {KEY}", f"Bearer {KEY}", "Bearer wrong", "Basic abc", "Bearer", "", "bearer  " + KEY])


@given(
    requests=st.lists(
        st.tuples(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), PATHS, QUERIES, AUTH, BODIES),
        min_size=1,
        max_size=6,
    )
)
@FUZZ
@example(requests=[("POST", "/v1/test-call-batches", {}, f"Bearer {KEY}", b'{"run_count": 20, "stagger_seconds": 60}')])
@example(requests=[("GET", "/v1/test-calls", {"limit": "9" * 5000, "offset": "9" * 30}, f"Bearer {KEY}", b"")])
def test_any_request_gets_an_answer_below_500(requests: list[tuple[str, str, dict[str, str], str, bytes]]) -> None:
    async def send_all() -> list[int]:
        model = SimModel(SimConfig(api_key=KEY, seed=1), wall_at_zero=1_764_441_849.0)
        app = create_app(model, monotonic_seconds)
        statuses = []
        transport = httpx.ASGITransport(app=app)  # an exception in the app comes out here, failing the test
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as client:
            for method, path, query, auth, body in requests:
                headers = {"authorization": auth} if auth else {}
                response = await client.request(method, path, params=query, headers=headers, content=body)
                statuses.append(response.status_code)
                if response.headers.get("content-type") == "application/json":
                    orjson.loads(response.content)  # whatever the app answers is JSON
            health = await client.get("/v1/healthz")
            assert health.status_code == 200
        return statuses

    statuses: list[Any] = anyio.run(send_all)
    assert all(status < 500 for status in statuses), statuses
