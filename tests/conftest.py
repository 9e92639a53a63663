"""Shared test set-up."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``pytestmark = pytest.mark.anyio``) run on asyncio, the backend stressor ships on."""
    return "asyncio"
