"""Locust's side of the lifecycle workload of ``benchmarks/peers.py``: create a batch, poll it to its end.

Every user is a ``FastHttpUser`` that takes the next slot of one schedule shared by all users of the process
(batch *k* is due at ``t0 + k / rate``), sleeps until the slot's due time, sends
``POST /v1/test-call-batches`` (``consent_to_charge`` true), then polls ``GET /v1/test-call-batches/{id}``
until the batch's status is ``completed`` or ``failed``. Polls follow stressor's cadence
(``TestCallsTarget._poll``): the first at a random point of the first interval after the create's answer, then
one every interval on a fixed grid, so both clients send about as many polls per batch.

Start lateness is defined as stressor defines it: the batch's due time on the schedule -> the moment the user
sends the create request. A slot is handed out only when a user is free, so when every user is busy (or the
process has no CPU left) the wait shows as lateness, never as a shifted schedule (no coordinated omission).

Settings come from the environment (``peers.py`` sets them):
``PEERS_RATE`` batches per second (or ``PEERS_IN_FLIGHT`` runs kept in flight: a closed loop, one batch per
user at a time, the users peers.py starts), ``PEERS_DURATION`` seconds of schedule, ``PEERS_RUNS`` runs per batch,
``PEERS_POLL_INTERVAL`` seconds, ``PEERS_LEAD`` seconds from the test's start to the first due time (the users
are spawned in it), ``PEERS_OUT`` the JSON file the figures are written to when the test stops,
``PEERS_API_KEY`` the Bearer key. Loopback only: ``peers.py`` passes ``--host http://127.0.0.1:PORT``.

    PEERS_OUT=/tmp/l.json locust -f benchmarks/locustfile.py --headless -u 100 -r 1000 -t 30s \
        --host http://127.0.0.1:8080 --only-summary
"""

from __future__ import annotations

import json
import os
import random
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from lifecycle_workload import Workload, batch_body
from locust import FastHttpUser, constant, events, task
from locust.env import Environment

RATE, DURATION_S, RUNS_PER_BATCH, POLL_INTERVAL_S, OUT, API_KEY, IN_FLIGHT = Workload.from_env("locust-lifecycle.json")
LEAD_S = float(os.environ.get("PEERS_LEAD", "1.0"))
ENDED = ("completed", "failed")
BATCH_BODY = batch_body(RUNS_PER_BATCH)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Schedule:
    """The slots every user of this process takes from, and what came of them (gevent: one thread, no lock)."""

    total: int = 0 if IN_FLIGHT else round(RATE * DURATION_S)  # closed: the batches taken so far
    t0: float = 0.0  # perf_counter of slot 0's due time; set when the test starts
    taken: int = 0
    settled: int = 0  # batches whose lifecycle ended, one way or another
    lateness_s: list[float] = field(default_factory=list)
    completed_runs: int = 0
    failed_runs: int = 0
    errored_runs: int = 0  # the create failed: the runs may not exist
    abandoned_runs: int = 0  # a poll failed: the batch was given up
    environment: Environment | None = None  # set when the test starts; used to stop it after the last batch
    cpu_at_t0: float = 0.0
    cpu_at_last: float = 0.0
    last_settled: float = 0.0

    def take(self) -> float | None:
        """The due time (perf_counter seconds) of the next free slot, or None when the schedule is used up.
        Closed (``PEERS_IN_FLIGHT``): a user starts its next batch as soon as its last one ended, until the end."""
        if IN_FLIGHT:
            now = time.perf_counter()
            if now >= self.t0 + DURATION_S:
                return None
            self.taken += 1
            self.total = self.taken
            return max(now, self.t0)
        if self.taken >= self.total:
            return None
        due = self.t0 + self.taken / RATE
        self.taken += 1
        return due

    def settle(self) -> None:
        """One batch has ended (or was given up); after the last one the test stops at once."""
        self.settled += 1
        self.last_settled = time.perf_counter()
        self.cpu_at_last = cpu_seconds()
        over = not IN_FLIGHT or self.last_settled >= self.t0 + DURATION_S
        if over and self.settled == self.total and self.environment is not None and self.environment.runner is not None:
            gevent.spawn(self.environment.runner.quit)


SCHEDULE = Schedule()


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    """Anchor the schedule: the first batch is due ``PEERS_LEAD`` seconds from now, once the users are up."""
    SCHEDULE.environment = environment
    SCHEDULE.t0 = time.perf_counter() + LEAD_S
    gevent.spawn(mark_t0)


def mark_t0() -> None:
    """Note the CPU spent when the first batch falls due: start-up and spawning are not the load's."""
    gevent.sleep(max(0.0, SCHEDULE.t0 - time.perf_counter()))
    SCHEDULE.cpu_at_t0 = cpu_seconds()


@events.test_stop.add_listener
def on_test_stop(environment: Environment, **_: Any) -> None:
    """Write the figures for ``peers.py``."""
    figures = {
        "scheduled": SCHEDULE.total,
        "taken": SCHEDULE.taken,
        "settled": SCHEDULE.settled,
        "lateness_s": SCHEDULE.lateness_s,
        "completed_runs": SCHEDULE.completed_runs,
        "failed_runs": SCHEDULE.failed_runs,
        "errored_runs": SCHEDULE.errored_runs,
        "abandoned_runs": SCHEDULE.abandoned_runs,
        "cpu_s_in_load": SCHEDULE.cpu_at_last - SCHEDULE.cpu_at_t0,
        "load_s": SCHEDULE.last_settled - SCHEDULE.t0,
        "requests": environment.stats.total.num_requests,
        "request_failures": environment.stats.total.num_failures,
    }
    with open(OUT, "w", encoding="utf-8") as out:
        json.dump(figures, out)


class LifecycleUser(FastHttpUser):
    """One batch at a time: wait for a slot's due time, create the batch, poll it to its end."""

    wait_time = constant(0)  # the shared schedule paces the users, not a think time

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}

    @task
    def lifecycle(self) -> None:
        due = SCHEDULE.take()
        if due is None:
            gevent.sleep(3600)  # the schedule is used up: idle until the test is stopped
            return
        gevent.sleep(max(0.0, due - time.perf_counter()))
        SCHEDULE.lateness_s.append(time.perf_counter() - due)
        with self.client.post(
            "/v1/test-call-batches", json=BATCH_BODY, headers=self.headers, catch_response=True
        ) as created:
            if created.status_code not in (200, 201):
                created.failure(f"create answered {created.status_code}")
                SCHEDULE.errored_runs += RUNS_PER_BATCH
                SCHEDULE.settle()
                return
            batch_id = created.json()["id"]
        self.poll(batch_id)
        SCHEDULE.settle()

    def poll(self, batch_id: str) -> None:
        """Poll the batch on a fixed grid (the first poll at a random point of the first interval)."""
        next_poll = time.perf_counter() + random.uniform(0, POLL_INTERVAL_S)
        while True:
            gevent.sleep(max(0.0, next_poll - time.perf_counter()))
            next_poll += POLL_INTERVAL_S
            with self.client.get(
                f"/v1/test-call-batches/{batch_id}",
                headers=self.headers,
                name="/v1/test-call-batches/[id]",  # one stats entry for all batches, as Locust users do
                catch_response=True,
            ) as polled:
                if polled.status_code != 200:
                    polled.failure(f"poll answered {polled.status_code}")
                    SCHEDULE.abandoned_runs += RUNS_PER_BATCH
                    return
                batch = polled.json()
            if batch["status"] in ENDED:
                SCHEDULE.completed_runs += batch["completed_runs"]
                SCHEDULE.failed_runs += batch["failed_runs"]
                return
