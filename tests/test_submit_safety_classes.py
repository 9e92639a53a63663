"""Failures mid-run get classes of their own in the results, each logged once: a host name that does not resolve
(``dns``), a TLS handshake or certificate that fails (``tls``, over a real self-signed TLS socket on loopback),
a run its batch says has ended but that the run list never shows (``unknown_run``)."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from collections import Counter
from pathlib import Path

import anyio
import anyio.abc
import anyio.streams.tls
import pytest
import respx
from anyio.abc import SocketStream

from stressor.governor import Governor
from stressor.profile import Limits, RunRequest
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmitError, SubmittedRun
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.timestamps import parse_iso

pytestmark = pytest.mark.anyio

KEY = "sk_live_0123456789abcdef0123456789abcdef"
LOGGER = "stressor.targets.testcalls.target"
FAST = Limits(backoff_base_s=0.001, backoff_cap_s=0.005, max_retries=1)


class Log:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, kind: str, outcome: str) -> None:
        self.counts[f"{kind} {outcome}"] += 1


def logged(caplog: pytest.LogCaptureFixture, kind: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and f"[{kind}]" in r.getMessage()]


async def test_a_name_that_does_not_resolve_is_counted_dns_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    log = Log()
    the_target = TestCallsTarget("http://nonexistent.invalid:9", KEY, log, governor=Governor(FAST), timeout_s=5)
    for _ in range(3):
        assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
    order = BatchOrder(seq=0, name="n", request=RunRequest(), prompts=("a",), stagger_s=0)
    with pytest.raises(SubmitError) as info:
        await the_target.submit(order)
    await the_target.aclose()
    assert info.value.cause == "dns"  # the errored runs say why as precisely as the requests do
    assert log.counts["poll_batch dns"] == 3
    assert log.counts["submit dns"] >= 1 and "submit connect" not in log.counts
    lines = logged(caplog, "dns")
    assert len(lines) == 1 and "did not resolve" in lines[0]
    assert not logged(caplog, "connect")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_a_certificate_that_is_not_trusted_is_counted_tls_and_logged_once(
    self_signed: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(stream: SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(2):
                await stream.receive()  # the client refuses the certificate: nothing comes

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    tls_listener = anyio.streams.tls.TLSListener(listener, context, standard_compatible=False)
    log = Log()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tls_listener.serve, answer)
        the_target = TestCallsTarget(f"https://127.0.0.1:{port}", KEY, log, governor=Governor(FAST), timeout_s=5)
        for _ in range(3):
            assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        await the_target.aclose()
        tasks.cancel_scope.cancel()
    assert log.counts == {"poll_batch tls": 3}
    lines = logged(caplog, "tls")
    assert len(lines) == 1 and "TLS" in lines[0]
    assert not logged(caplog, "connect")


async def test_https_to_a_plain_http_port_is_counted_tls(caplog: pytest.LogCaptureFixture) -> None:
    async def plain(stream: SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(2):
                await stream.receive()
                await stream.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    log = Log()
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, plain)
        the_target = TestCallsTarget(f"https://127.0.0.1:{port}", KEY, log, governor=Governor(FAST), timeout_s=5)
        assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        await the_target.aclose()
        tasks.cancel_scope.cancel()
    assert log.counts == {"poll_batch tls": 1}


@pytest.mark.respx(using="httpx")
async def test_a_run_that_never_appears_in_the_run_list_is_ended_unknown_and_logged_once(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    base = "http://127.0.0.1:9"
    created = "2026-11-29T18:24:09.011Z"
    # The batch's runs are the newest in the list: they are followed in it, the batch is never polled.
    ended = {"id": "tc_1", "status": "completed", "created_at": created, "completed_at": created}
    older = {"id": "tc_0", "status": "completed", "created_at": "2026-11-29T18:00:00.000Z"}
    respx_mock.get(f"{base}/v1/test-calls").respond(200, json=[ended, older])  # tc_2 is not there
    log = Log()
    the_target = TestCallsTarget(base, KEY, log, governor=Governor(FAST), poll_interval_s=0.005)
    runs = (SubmittedRun("tc_1", 0, parse_iso(created), None), SubmittedRun("tc_2", 1, parse_iso(created), None))
    ends: list[RunEnd] = []
    with anyio.fail_after(5.0):
        await the_target.follow(Submission("tcb_1", runs), ends.append)
    await the_target.aclose()
    # tc_2 is not left "open" (a run still going): three scans read past its creation missed it, so it is lost
    assert [(end.run_id, end.status) for end in ends] == [("tc_1", "completed"), ("tc_2", "unknown")]
    assert the_target.unknown_runs == 1
    lines = logged(caplog, "unknown_run")
    assert len(lines) == 1 and "'tc_2'" in lines[0]
