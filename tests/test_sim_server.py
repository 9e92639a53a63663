"""The simulator on real loopback sockets: in the test's event loop, and in a child process."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time

import anyio
import httpx
import pytest

from stressor.sim.config import Distribution, SimConfig
from stressor.sim.records import RunRequest
from stressor.sim.server import (
    LISTENING_PREFIX,
    SimulatorProcess,
    SimulatorStartError,
    fetch_truth,
    fetch_truth_async,
    monotonic_seconds,
    serve,
    simulator_command,
)
from stressor.sim.windows import Stall
from stressor.timestamps import parse_iso

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer sk_live_test"}
BODY = {"target_type": "agent", "target_id": 9, "consent_to_charge": True, "scenario_prompt": "hello"}
FAST = SimConfig(slots=2, call_duration=Distribution.uniform(20, 40), time_scale=0.002, seed=5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def follow_batch(client: httpx.AsyncClient, batch_id: str, timeout: float = 5.0) -> dict[str, object]:
    with anyio.fail_after(timeout):
        while True:
            batch = (await client.get(f"/v1/test-call-batches/{batch_id}")).json()
            if batch["status"] in ("completed", "failed"):
                return batch
            await anyio.sleep(0.01)


async def test_serve_on_port_zero_runs_a_batch_to_completion_over_http() -> None:
    async with serve(FAST, port=0) as running:
        assert running.base_url == f"http://127.0.0.1:{running.port}" and running.port > 0
        async with httpx.AsyncClient(base_url=running.base_url, headers=AUTH, trust_env=False) as client:
            assert (await client.get("/v1/healthz")).json() == {"ok": True}
            created = await client.post("/v1/test-call-batches", json={**BODY, "run_count": 6, "stagger_seconds": 0.01})
            assert created.status_code == 201
            batch = await follow_batch(client, created.json()["id"])
            assert batch["status"] == "completed" and batch["completed_runs"] == 6
            runs = (await client.get("/v1/test-calls")).json()
        truth = running.model.truth()
        assert len(truth) == 6 and all(record.status == "completed" for record in truth)
        # the API's millisecond stamps are the truth truncated to the millisecond (taken to the microsecond
        # first: an instant 0.4 µs below .220 reads .220)
        by_id = {record.id: record for record in truth}
        for run in runs:
            record = by_id[str(run["id"])]  # the truth holds ids as text
            assert record.started is not None and record.completed is not None
            assert -1e-6 <= record.started - parse_iso(run["started_at"]) < 0.001
            assert -1e-6 <= record.completed - parse_iso(run["completed_at"]) < 0.001
        polls = running.stats.count("GET", "/v1/test-call-batches/{batch_id}")
        assert polls >= 1 and running.stats.count("POST", "/v1/test-call-batches", 201) == 1
    assert port_is_closed(running.port)


async def test_answers_are_not_held_back_by_delayed_acks() -> None:
    # without TCP_NODELAY on accepted sockets each answer waited ~40 ms for the client's delayed ACK
    async with (
        serve(FAST) as running,
        httpx.AsyncClient(base_url=running.base_url, trust_env=False) as client,
    ):
        await client.get("/v1/healthz")
        started = time.perf_counter()
        for _ in range(30):
            await client.get("/v1/healthz")
        assert time.perf_counter() - started < 0.8


async def test_embedding_leaves_signal_handlers_alone() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    async with serve(FAST):
        assert {sig: signal.getsignal(sig) for sig in before} == before
    assert {sig: signal.getsignal(sig) for sig in before} == before


async def test_model_advances_without_requests() -> None:
    # the driver task moves the model at event times, so state changes even when nobody asks
    async with serve(FAST) as running:
        async with httpx.AsyncClient(base_url=running.base_url, headers=AUTH, trust_env=False) as client:
            await client.post("/v1/test-call-batches", json={**BODY, "run_count": 2, "stagger_seconds": 0})
        with anyio.fail_after(3):
            while running.model.status_counts()["completed"] < 2:
                await anyio.sleep(0.01)


async def test_an_error_in_the_block_comes_out_as_itself_and_the_port_is_freed() -> None:
    with pytest.raises(ValueError, match="boom"):
        async with serve(FAST) as running:
            raise ValueError("boom")
    assert port_is_closed(running.port)
    with anyio.move_on_after(0.2):
        async with serve(FAST) as cancelled:
            await anyio.sleep(10)
    assert port_is_closed(cancelled.port)


async def test_serve_refuses_a_busy_port() -> None:
    async with serve(FAST) as running:
        with pytest.raises(OSError):
            async with serve(FAST, port=running.port):
                pass  # pragma: no cover


def test_simulator_process_serves_and_is_gone_after_exit() -> None:
    sim = SimulatorProcess(FAST)
    with sim as base_url:
        process = sim.process
        assert process is not None and process.poll() is None
        with httpx.Client(base_url=base_url, headers=AUTH, trust_env=False) as client:
            assert client.get("/v1/healthz").json() == {"ok": True}
            created = client.post("/v1/test-call-batches", json={**BODY, "run_count": 3, "stagger_seconds": 0})
            assert created.status_code == 201
            deadline = time.monotonic() + 5
            while client.get(f"/v1/test-call-batches/{created.json()['id']}").json()["status"] != "completed":
                assert time.monotonic() < deadline
                time.sleep(0.01)
        truth = fetch_truth(base_url)
        assert [record.id for record in truth] == [str(run_id) for run_id in created.json()["run_ids"]]
        assert all(record.status == "completed" and record.started is not None for record in truth)
        assert [record.index for record in truth] == [0, 1, 2]
    assert process.returncode == 0  # SIGTERM is a clean stop
    assert sim.process is None
    port = int(base_url.rsplit(":", 1)[1])
    assert port_is_closed(port)


async def test_simulator_process_async_with_key_and_async_truth() -> None:
    config = SimConfig(api_key="sk_live_secret", time_scale=0.0001, seed=1)
    async with (
        SimulatorProcess(config) as base_url,
        httpx.AsyncClient(base_url=base_url, trust_env=False) as c,
    ):
        assert (await c.get("/v1/test-calls", headers=AUTH)).status_code == 401
        good = {"Authorization": "Bearer sk_live_secret"}
        assert (await c.post("/v1/test-calls", headers=good, json=BODY)).status_code == 201
        truth = await fetch_truth_async(base_url, client=c)
        assert len(truth) == 1
        document = (await c.get("/_sim/truth")).json()
        assert document["config"]["seed"] == 1 and document["config"]["api_key_required"] is True


def test_simulator_process_reports_a_failed_start(monkeypatch: pytest.MonkeyPatch) -> None:
    # a config the child refuses (it re-validates its flags): the parent gets one clear error
    monkeypatch.setattr("stressor.sim.server.simulator_command", lambda *_: [*simulator_command(FAST), "--slots", "0"])
    with pytest.raises(SimulatorStartError, match="exited with code 2") as caught, SimulatorProcess(FAST):
        pass  # pragma: no cover
    assert "slots must be" in str(caught.value)  # the child's own sentence, from its stderr
    assert isinstance(caught.value, OSError)


def test_child_stops_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen(
        simulator_command(FAST),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(LISTENING_PREFIX + "http://127.0.0.1:")
        with httpx.Client(trust_env=False) as client:
            assert client.get(line.removeprefix(LISTENING_PREFIX).strip() + "/v1/healthz").status_code == 200
        os.kill(process.pid, signal.SIGINT)
        assert process.wait(timeout=5) == 0
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# -- faults on real sockets ----------------------------------------------------------------------------------


def raw_exchange(port: int, request: bytes) -> bytes | None:
    """Send one raw HTTP request; what came back before the connection ended (None: it was reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            return received or None
        return received


async def test_reset_drops_the_connection_without_any_answer(caplog: pytest.LogCaptureFixture) -> None:
    config = SimConfig(reset_rate=1.0, fault_after_create=1.0, seed=2, time_scale=0.0001)
    caplog.set_level(logging.WARNING)
    async with (
        serve(config) as running,
        httpx.AsyncClient(base_url=running.base_url, headers=AUTH, trust_env=False) as client,
    ):
        assert (await client.get("/v1/healthz")).status_code == 200  # never faulted
        for _ in range(3):
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await client.get("/v1/test-calls")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.post("/v1/test-calls", json=BODY)
        # not a single byte of a status line: the connection is reset (or closed) with nothing sent
        raw = await anyio.to_thread.run_sync(
            raw_exchange, running.port, b"GET /v1/test-calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"
        )
        assert not raw
        # the POST created its run before its connection went (fault_after_create 1)
        assert len(running.model.truth()) == 1
        stats = (await client.get("/_sim/stats")).json()
    assert stats["faults"]["reset"] == 5 and stats["faults"]["after_create"] == 1
    assert stats["requests"]["GET /v1/test-calls"] == {"0": 4}
    # uvicorn saw a clean disconnect: no "returned without starting response", no traceback
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_stall_holds_answers_on_real_sockets_while_the_model_goes_on() -> None:
    config = SimConfig(stall=Stall(at=0.0, duration=0.4), call_duration=Distribution.fixed(50), time_scale=0.001)
    async with (
        serve(config) as running,
        httpx.AsyncClient(base_url=running.base_url, headers=AUTH, trust_env=False) as client,
    ):
        # a run made in the model directly (the API is stalled): a 50 ms call that ends during the stall
        run = running.model.create_run(RunRequest(target_type="agent", target_id=1), monotonic_seconds())
        started = time.perf_counter()
        assert (await client.get("/v1/healthz")).status_code == 200
        assert time.perf_counter() - started < 0.2  # readiness checks are never held
        held = await client.get("/v1/test-calls")
        answered_wall = time.time()
        assert held.status_code == 200 and 0.2 <= time.perf_counter() - started < 2.0
        # the answer, though late, shows the run ended at its true time, well before the stall lifted
        (listed,) = held.json()
        assert listed["id"] == run.id and listed["status"] == "completed"
        assert parse_iso(listed["completed_at"]) - run.created == pytest.approx(0.05, abs=0.01)
        assert answered_wall - parse_iso(listed["completed_at"]) > 0.1
        stats = (await client.get("/_sim/stats")).json()
    assert stats["faults"]["stalled"] == 1
