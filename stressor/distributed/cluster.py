"""Workers on a Dask distributed cluster (``--cluster tcp://host:8786``): the same worker function and snapshots,
carried by Dask's own queue. ``distributed`` (the ``stressor[dask]`` extra) is imported only when used.

A Dask scheduler re-runs a task whose worker died, which would bill that share's runs twice: so each task first
takes its one-time ticket from a queue holding exactly one per worker; a re-run finds none and runs nothing.
"""

from __future__ import annotations

import functools
import pickle
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from stressor.distributed.snapshot import Snapshot, WorkerLost
from stressor.distributed.worker import Command, WorkerSpec, run_worker

REFUSED = "refused: this share already started once (Dask re-ran the task after its worker died)"
READ_EVERY_S = 0.2
COMMAND_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 10.0


class ClusterUnavailable(Exception):
    """The Dask scheduler could not be reached, or distributed is not installed."""


def _dask_task(spec: WorkerSpec, run: str) -> str:
    """The task each Dask worker runs: its ticket, then ``run_worker`` streaming into the run's queue."""
    from distributed import Queue, Variable  # noqa: PLC0415 (optional, see above)

    if not Queue(f"{run}-ticket-{spec.share.index}").get(batch=True):
        return REFUSED
    snapshots, told = Queue(f"{run}-snapshots"), Variable(f"{run}-command")

    def command() -> Command:
        try:
            return told.get(timeout=COMMAND_TIMEOUT_S)
        except TimeoutError:  # not set (yet), or the scheduler is slow: go on as told last
            return "run"

    run_worker(spec, snapshots.put, command, own_process=False)
    return "done"


class ClusterWorkers:
    """Runs the specs as tasks on the Dask cluster whose scheduler is at ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def capacity(self) -> int:
        """One worker per thread of the cluster's Dask workers."""
        client = await anyio.to_thread.run_sync(self._connect)
        try:
            workers = client.scheduler_info()["workers"].values()
            return max(1, sum(int(w.get("nthreads", 1)) for w in workers))
        finally:
            await anyio.to_thread.run_sync(client.close)

    def _connect(self) -> Any:
        try:
            from distributed import Client  # noqa: PLC0415 (optional, see above)
        except ImportError:
            raise ClusterUnavailable(
                "--cluster needs Dask distributed: pip install 'stressor[dask]' (here and on every worker)"
            ) from None
        try:
            return Client(self.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnavailable(f"cannot reach the Dask scheduler at {self.address} ({exc})") from None

    async def run(
        self,
        specs: Sequence[WorkerSpec],
        deliver: Callable[[Snapshot | WorkerLost], None],
        command: Callable[[], Command],
    ) -> None:
        """Submit one task per spec and deliver what they stream until every one has ended."""
        from distributed import Queue, Variable  # noqa: PLC0415 (optional, see above)

        client = await anyio.to_thread.run_sync(self._connect)
        run = f"stressor-{secrets.token_hex(6)}"
        try:
            told = Variable(f"{run}-command", client=client)
            await anyio.to_thread.run_sync(told.set, "run")
            for spec in specs:
                ticket = Queue(f"{run}-ticket-{spec.share.index}", client=client)
                await anyio.to_thread.run_sync(ticket.put, 1)
            snapshots = Queue(f"{run}-snapshots", client=client)
            futures = [
                client.submit(_dask_task, spec, run, key=f"{run}-worker-{spec.share.index}", pure=False)
                for spec in specs
            ]
            await self._follow(futures, snapshots, told, deliver, command)
        finally:
            await anyio.to_thread.run_sync(client.close)

    async def _follow(
        self,
        futures: list[Any],
        snapshots: Any,
        told: Any,
        deliver: Callable[[Snapshot | WorkerLost], None],
        command: Callable[[], Command],
    ) -> None:
        ended: set[int] = set()
        last_command: Command = "run"
        while len(ended) < len(futures):
            if (now := command()) != last_command:
                await anyio.to_thread.run_sync(told.set, now)
                last_command = now
            # Which tasks had ended before the queue is read: whatever they sent is in it by then.
            done = [i for i, future in enumerate(futures) if i not in ended and future.done()]
            # batch=True takes what is there without waiting: a get that times out logs a traceback on the
            # scheduler every time.
            blobs = await anyio.to_thread.run_sync(functools.partial(snapshots.get, batch=True))
            for blob in blobs:
                snapshot: Snapshot = pickle.loads(blob)
                deliver(snapshot)
                if snapshot.final:
                    ended.add(snapshot.worker)
            for index in done:
                if index not in ended:
                    ended.add(index)
                    deliver(WorkerLost(index, _loss(futures[index])))
            if not blobs:
                await anyio.sleep(READ_EVERY_S)


def _loss(future: Any) -> str:
    """Why a task that ended without its final snapshot did."""
    if future.status == "finished":
        return REFUSED if future.result() == REFUSED else "ended without its final snapshot"
    return f"its task failed on the cluster ({future.exception()!r})"
