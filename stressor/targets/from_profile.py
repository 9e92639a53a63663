"""The test-calls target set up as a profile says: poll cadence, timeouts, submit mode, webhook fallback."""

from __future__ import annotations

import httpx

from stressor.clock import SYSTEM, Clock
from stressor.governor import Governor
from stressor.metrics import Metrics
from stressor.polling import fallback_seconds
from stressor.profile import Profile
from stressor.targets.inbox import CompletionInbox
from stressor.targets.testcalls.target import TestCallsTarget


def build_target(
    profile: Profile,
    base_url: str,
    api_key: str,
    metrics: Metrics,
    governor: Governor,
    inbox: CompletionInbox | None = None,
    *,
    trust_env: bool = True,
    clock: Clock = SYSTEM,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TestCallsTarget:
    """The test-calls target as the profile sets it up (webhook completions arrive in ``inbox``). ``trust_env``:
    reach ``base_url`` through the environment's proxies, as httpx does (off for the embedded simulator);
    ``transport``: reach it through this one instead (an in-memory simulator)."""
    return TestCallsTarget(
        base_url,
        api_key,
        requests=metrics,
        governor=governor,
        submit_mode=profile.target.submit,
        poll_interval_s=profile.target.poll_interval_s,
        poll_max_interval_s=profile.target.poll_interval_max_s,
        timeout_s=profile.target.request_timeout_s,
        inbox=inbox,
        webhook_fallback_s=fallback_seconds(profile) if inbox is not None else None,
        trust_env=trust_env,
        clock=clock,
        transport=transport,
    )
