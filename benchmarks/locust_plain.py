"""Locust's side of the plain workload of ``benchmarks/peers.py``: ``GET /`` as fast as answers come.

``FastHttpUser`` users with no wait time, each sending one request at a time. The requests counted are those
Locust recorded inside a window that opens ``PEERS_WARMUP`` seconds after the test starts and lasts
``PEERS_DURATION`` seconds; the process's CPU (user + system) is read at both ends of the window. At the
window's end the figures go to ``PEERS_OUT`` (JSON) and the test stops. Loopback only: ``peers.py`` passes
``--host http://127.0.0.1:PORT``.

    PEERS_OUT=/tmp/p.json locust -f benchmarks/locust_plain.py --headless -u 64 -r 1000 -t 15s \
        --host http://127.0.0.1:8080 --only-summary
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task
from locust.env import Environment

WARMUP_S = float(os.environ.get("PEERS_WARMUP", "1"))
DURATION_S = float(os.environ.get("PEERS_DURATION", "5"))
OUT = os.environ.get("PEERS_OUT", "locust-plain.json")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(environment: Environment) -> None:
    """Count the requests and CPU of the window, write them, stop the test."""
    gevent.sleep(WARMUP_S)
    total = environment.stats.total
    requests0, failures0, cpu0, t0 = total.num_requests, total.num_failures, cpu_seconds(), time.perf_counter()
    gevent.sleep(DURATION_S)
    requests1, failures1, cpu1, t1 = total.num_requests, total.num_failures, cpu_seconds(), time.perf_counter()
    with open(OUT, "w", encoding="utf-8") as out:
        json.dump(
            {
                "requests": requests1 - requests0,
                "failures": failures1 - failures0,
                "window_s": t1 - t0,
                "cpu_s_window": cpu1 - cpu0,
            },
            out,
        )
    if environment.runner is not None:
        environment.runner.quit()


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    gevent.spawn(measure, environment)


class PlainUser(FastHttpUser):
    """One ``GET /`` after another."""

    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get("/")
