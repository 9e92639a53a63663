"""A create answered before the one under test: the witness a reconciliation needs to prove anything."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import respx

from stressor.profile import RunRequest
from stressor.targets.base import BatchOrder
from stressor.targets.testcalls.target import TestCallsTarget

WITNESS_ORDER = BatchOrder(seq=1, name="stressor t", request=RunRequest(target_id=7), prompts=("w",), stagger_s=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def create_witness(
    respx_mock: respx.MockRouter, target: TestCallsTarget, base: str, created: datetime, *, single: bool = False
) -> dict[str, Any]:
    """Have ``target`` create one batch (or run) first, answered at once; the object as a list shows it. The
    router's call counts are reset afterwards, so a test counts only its own requests."""
    if single:
        made: dict[str, Any] = {
            "id": "tc_w",
            "status": "queued",
            "target_type": "agent",
            "target_id": 7,
            "scenario_prompt": "w",
            "created_at": iso(created),
        }
        respx_mock.post(f"{base}/v1/test-calls").respond(201, json=made)
    else:
        made = {
            "id": "tcb_w",
            "name": target.batch_name(WITNESS_ORDER),
            "run_ids": ["tc_w1"],
            "created_at": iso(created),
        }
        respx_mock.post(f"{base}/v1/test-call-batches").respond(201, json=made)
    await target.submit(WITNESS_ORDER)
    respx_mock.reset()
    return made
