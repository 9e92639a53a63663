"""Shared test set-up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn.server


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``pytestmark = pytest.mark.anyio``) run on asyncio, the backend stressor ships on; a module
    whose tests run on virtual time returns ``support.virtual.VIRTUAL`` from its own ``anyio_backend``."""
    return "asyncio"


class _QuickPolls:
    """uvicorn's view of asyncio in this test process: its 100 ms polls (for ``should_exit``, and for
    connections to close at shutdown) poll every 5 ms, so that each server a test starts stops in a few
    milliseconds rather than ~0.2 s. Its timeouts (the graceful shutdown's) are asyncio's own, unchanged."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: Any = None) -> Any:
        return await asyncio.sleep(min(delay, 0.005), result)


uvicorn.server.asyncio = _QuickPolls()  # type: ignore[assignment]
