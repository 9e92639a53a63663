"""Tasks beside a block of code: a task group cancelled when the block ends, which lets the block's own exception
out as itself rather than wrapped in an exception group."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup


@asynccontextmanager
async def tasks_beside() -> AsyncIterator[TaskGroup]:
    """A task group for tasks that run beside the block and are cancelled when it ends; an exception of the
    block comes out as itself, not wrapped in the group's."""
    body_error: BaseException | None = None
    try:
        async with anyio.create_task_group() as tasks:
            try:
                yield tasks
            except BaseException as raised:
                body_error = raised
                raise
            finally:
                tasks.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if body_error is not None and len(group.exceptions) == 1 and group.exceptions[0] is body_error:
            raise body_error from None
        raise
