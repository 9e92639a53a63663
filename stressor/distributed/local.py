"""Workers as processes of this machine (``--workers N``): spawned, fed their spec, read through one queue.

Each worker process ignores SIGINT (Ctrl-C reaches the whole process group; the coordinator relays it, so
that every worker ends the same orderly way) and reads the coordinator's command from a shared integer. A
process that exits without its final snapshot is reported lost, with its exit status or the signal that
killed it.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Callable, Sequence
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized

import anyio

from stressor.distributed.snapshot import Snapshot, WorkerLost
from stressor.distributed.worker import Command, WorkerSpec, run_worker

COMMANDS: tuple[Command, ...] = ("run", "stop", "interrupt")
READ_TIMEOUT_S = 0.2


def _process_main(spec: WorkerSpec, snapshots: multiprocessing.Queue, command: Synchronized) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_worker(spec, snapshots.put, lambda: COMMANDS[command.value])


def _exit_reason(process: SpawnProcess) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with status {code} before its final snapshot"


def _read(snapshots: multiprocessing.Queue) -> bytes | None:
    try:
        return snapshots.get(timeout=READ_TIMEOUT_S)
    except queue.Empty:
        return None


class LocalWorkers:
    """Runs the specs in spawned processes of this machine."""

    async def capacity(self) -> int:
        """One worker per core this process may run on."""
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

    async def run(
        self,
        specs: Sequence[WorkerSpec],
        deliver: Callable[[Snapshot | WorkerLost], None],
        command: Callable[[], Command],
    ) -> None:
        """Start one process per spec and deliver what they stream until every one has ended."""
        context = multiprocessing.get_context("spawn")  # no fork: the coordinator runs an event loop
        snapshots = context.Queue()
        shared = context.Value("b", 0, lock=False)
        processes = [
            context.Process(
                target=_process_main,
                args=(spec, snapshots, shared),
                name=f"stressor-worker-{spec.share.index}",
                daemon=True,
            )
            for spec in specs
        ]
        for process in processes:
            process.start()
        ended: set[int] = set()
        try:
            while len(ended) < len(processes):
                shared.value = COMMANDS.index(command())
                # Which processes had exited before the read: whatever they sent is in the queue by then.
                gone = [i for i, process in enumerate(processes) if i not in ended and not process.is_alive()]
                blob = await anyio.to_thread.run_sync(_read, snapshots)
                if blob is not None:
                    snapshot: Snapshot = pickle.loads(blob)
                    deliver(snapshot)
                    if snapshot.final:
                        ended.add(snapshot.worker)
                    continue
                for index in gone:  # the queue is drained and holds no final snapshot of theirs
                    if index not in ended:
                        ended.add(index)
                        deliver(WorkerLost(index, _exit_reason(processes[index])))
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
            with anyio.CancelScope(shield=True):
                for process in processes:
                    await anyio.to_thread.run_sync(process.join, 5.0)
            snapshots.close()
