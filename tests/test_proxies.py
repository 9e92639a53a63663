"""Proxies from the environment, honoured as httpx honours them, through a real forward proxy on loopback.

``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` are read by httpx's rules; plain http goes to
the proxy as absolute-form requests, https through ``CONNECT`` with TLS to the origin inside the tunnel. Both
stressor transports (the default ``wire`` and ``aiohttp``) are driven against the simulator in this process,
through ``tests/forward_proxy.py``, which counts what it relayed.
"""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from forward_proxy import ForwardProxy, TlsFront
from sessions import profile_of
from support.cli import stressor_here

from stressor.engine import Engine, EngineResult
from stressor.http.client import HttpClient
from stressor.metrics import Metrics, Outcome
from stressor.session import Scale, Session, Where
from stressor.sim.config import SimConfig
from stressor.sim.server import RunningSimulator, serve
from stressor.targets.base import TargetUnavailable
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.timestamps import ClockAnchor

pytestmark = pytest.mark.anyio

KEY = "sk_test_proxies"
BACKENDS = ("wire", "aiohttp")
SECRET = "s3cr3t-pass"


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no proxy in its environment (urllib reads both spellings of each)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command; skipped without it)."""
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
    yield cert, key


@asynccontextmanager
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with serve(SimConfig.from_text(slots=100, seed=3)) as sim:
        yield sim


@asynccontextmanager
async def https_simulator(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The simulator behind TLS on loopback (its base URL), with the client trusting the certificate as a user
    would tell httpx to: SSL_CERT_FILE."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with simulator() as sim, TlsFront(sim.port, context) as front:
        yield f"https://127.0.0.1:{front.port}"


def with_credentials(url: str, user: str, password: str) -> str:
    return url.replace("http://", f"http://{user}:{password}@")


# ------------------------------------------------------------------------------------------ the client


@pytest.mark.parametrize("backend", BACKENDS)
async def test_plain_http_goes_to_http_proxy_as_absolute_form_requests(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with simulator() as sim, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = HttpClient(backend=backend)  # type: ignore[arg-type]
        try:
            health = await client.get(f"{sim.base_url}/v1/healthz")
            bearer = {"Authorization": f"Bearer {KEY}"}
            listed = await client.get(f"{sim.base_url}/v1/test-calls?limit=1", headers=bearer)
        finally:
            await client.aclose()
    assert (health.status_code, listed.status_code) == (200, 200)
    assert proxy.forwarded == [
        ("GET", f"{sim.base_url}/v1/healthz"),
        ("GET", f"{sim.base_url}/v1/test-calls?limit=1"),
    ]
    assert proxy.tunnels == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_no_proxy_and_trust_env_off_go_direct(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with simulator() as sim, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
        listed = HttpClient(backend=backend)  # type: ignore[arg-type]
        monkeypatch.delenv("NO_PROXY")
        untrusting = HttpClient(backend=backend, trust_env=False)  # type: ignore[arg-type]
        by_name = f"http://localhost:{sim.port}/v1/healthz"  # the same server, by a name NO_PROXY does not list
        try:
            assert (await listed.get(f"{sim.base_url}/v1/healthz")).status_code == 200
            assert (await untrusting.get(f"{sim.base_url}/v1/healthz")).status_code == 200
            assert (await untrusting.get(by_name)).status_code == 200
            assert proxy.forwarded == [] and proxy.tunnels == []
            assert (await listed.get(by_name)).status_code == 200
        finally:
            await listed.aclose()
            await untrusting.aclose()
    assert proxy.forwarded == [("GET", by_name)]  # NO_PROXY is matched by host, as httpx matches it


@pytest.mark.parametrize("backend", BACKENDS)
async def test_https_goes_through_a_connect_tunnel_with_tls_to_the_origin(
    backend: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with https_simulator(certificate, monkeypatch) as base_url, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = HttpClient(backend=backend)  # type: ignore[arg-type]
        try:
            answers = [(await client.get(f"{base_url}/v1/healthz")).status_code for _ in range(3)]
        finally:
            await client.aclose()
    assert answers == [200, 200, 200]
    assert proxy.tunnels == [base_url.removeprefix("https://")]  # one tunnel, kept alive for all three
    assert proxy.forwarded == []  # the proxy saw no plain HTTP: TLS ran end to end inside the tunnel


@pytest.mark.parametrize("backend", BACKENDS)
async def test_credentials_in_the_proxy_url_become_proxy_authorization(
    backend: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        simulator() as sim,
        https_simulator(certificate, monkeypatch) as https_url,
        ForwardProxy(user="ci", password=SECRET) as proxy,
    ):
        monkeypatch.setenv("ALL_PROXY", with_credentials(proxy.url, "ci", SECRET))
        client = HttpClient(backend=backend)  # type: ignore[arg-type]
        try:
            plain = await client.get(f"{sim.base_url}/v1/healthz")
            tunnelled = await client.get(f"{https_url}/v1/healthz")
        finally:
            await client.aclose()
    assert (plain.status_code, tunnelled.status_code) == (200, 200)
    expected = "Basic " + base64.b64encode(f"ci:{SECRET}".encode()).decode()
    assert proxy.authorizations == [expected, expected]  # the absolute-form GET and the CONNECT
    assert proxy.refused == []
    assert len(proxy.forwarded) == 1 and len(proxy.tunnels) == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_proxy_that_refuses_is_one_sentence_naming_it_never_its_password(
    backend: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        simulator() as sim,
        https_simulator(certificate, monkeypatch) as https_url,
        ForwardProxy(user="ci", password=SECRET) as guarded,
        ForwardProxy(refuse_tunnels=502) as refusing,
    ):
        failures: dict[str, httpx.ProxyError] = {}
        wrong = with_credentials(guarded.url, "ci", "wrong-" + SECRET)
        for name, variable, proxy_url, url in (
            ("407 to a plain request", "HTTP_PROXY", wrong, f"{sim.base_url}/v1/healthz"),
            ("407 to CONNECT", "HTTPS_PROXY", wrong, f"{https_url}/v1/healthz"),
            ("CONNECT refused", "HTTPS_PROXY", refusing.url, f"{https_url}/v1/healthz"),
            ("nobody listening", "HTTP_PROXY", with_credentials("http://127.0.0.1:9", "ci", SECRET), sim.base_url),
        ):
            monkeypatch.setenv(variable, proxy_url)
            client = HttpClient(backend=backend)  # type: ignore[arg-type]
            try:
                with pytest.raises(httpx.ProxyError) as raised:
                    await client.get(url)
            finally:
                await client.aclose()
                monkeypatch.delenv(variable)
            failures[name] = raised.value
    https_host = https_url.removeprefix("https://")
    hint = "(are the user and password in the proxy's URL right?)"
    assert str(failures["407 to a plain request"]) == (
        f"the proxy {guarded.url} refused the request: it answered 407 Proxy Authentication Required {hint}"
    )
    assert str(failures["407 to CONNECT"]) == (
        f"the proxy {guarded.url} refused the tunnel to {https_host}: it answered 407 Proxy Authentication Required "
        f"{hint}"
    )
    assert str(failures["CONNECT refused"]) == (
        f"the proxy {refusing.url} refused the tunnel to {https_host}: it answered 502 Refused By Test Proxy"
    )
    assert str(failures["nobody listening"]).startswith("cannot connect to the proxy http://127.0.0.1:9: ")
    for failure in failures.values():
        assert SECRET not in str(failure) and "\n" not in str(failure)
        # not chained to the socket's error: its "connection refused" would read as the origin's
        assert failure.__cause__ is None and failure.__context__ is None
    assert refusing.forwarded == [] and guarded.forwarded == []  # nothing reached the simulator


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_proxy_the_transport_cannot_use_fails_each_request_in_one_sentence(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", f"socks5://ci:{SECRET}@127.0.0.1:1080")
    client = HttpClient(backend=backend)  # type: ignore[arg-type]
    try:
        with pytest.raises(httpx.ProxyError) as raised:
            await client.get("http://127.0.0.1:9/v1/healthz")
    finally:
        await client.aclose()
    message = str(raised.value)
    assert message.startswith("the proxy socks5://127.0.0.1:1080 cannot be used: ")
    assert message.endswith("(set in the environment; NO_PROXY lists hosts reached directly)")
    assert SECRET not in message


# ------------------------------------------------------------------------------------------ a run


async def run_through(base_url: str, stages: list[dict[str, object]]) -> EngineResult:
    """A run of the test-calls target as ``stressor run`` drives it (check first), against ``base_url``."""
    profile = profile_of(
        {"grace": "5s", "target": {"poll_interval": "50ms"}, "batch": {"runs": 3}, "stages": stages}
    )
    metrics = Metrics(ClockAnchor.now())
    target = TestCallsTarget(base_url, KEY, metrics, poll_interval_s=profile.target.poll_interval_s)
    try:
        await target.check()
        return await Engine(profile, target, metrics=metrics).run()
    finally:
        await target.aclose()


STAGES: list[dict[str, object]] = [{"duration": "0.5s", "rate": "8/s"}]  # 4 batches


def assert_every_run_completed(result: EngineResult, truth_ids: set[str]) -> None:
    outcomes = result.metrics.outcomes
    assert outcomes[Outcome.COMPLETED] == result.metrics.planned_runs == 12
    assert {record.run_id for record in result.records} == truth_ids


@pytest.mark.e2e
async def test_a_run_over_http_goes_through_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    async with simulator() as sim, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = await run_through(sim.base_url, STAGES)
        truth = {run.id for run in sim.model.truth()}
    assert_every_run_completed(result, truth)
    # every request of the run was relayed by the proxy, and each is counted in the results (the preflight's
    # too: purpose "check")
    assert len(proxy.forwarded) == sum(result.metrics.requests.values())
    assert result.metrics.requests["check ok"] >= 2
    assert {target.split("/v1/")[0] for _, target in proxy.forwarded} == {sim.base_url}
    assert sum(method == "POST" for method, _ in proxy.forwarded) == 4  # one create per batch, none twice


@pytest.mark.e2e
async def test_a_run_with_no_proxy_listing_its_host_goes_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    async with simulator() as sim, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        result = await run_through(sim.base_url, STAGES)
        truth = {run.id for run in sim.model.truth()}
        assert proxy.forwarded == [] and proxy.tunnels == []
        # the same environment sends a host NO_PROXY does not list through the proxy
        by_name = TestCallsTarget(f"http://localhost:{sim.port}", KEY, Metrics(ClockAnchor.now()))
        try:
            await by_name.check()
        finally:
            await by_name.aclose()
        assert [target for _, target in proxy.forwarded][:2] == [
            f"http://localhost:{sim.port}/v1/healthz",
            f"http://localhost:{sim.port}/v1/test-calls?limit=1",
        ]
        assert {target.split("/v1/")[0] for _, target in proxy.forwarded} == {f"http://localhost:{sim.port}"}
    assert_every_run_completed(result, truth)


@pytest.mark.e2e
async def test_a_run_over_https_goes_through_connect(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with simulator() as sim, TlsFront(sim.port, context) as front, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        result = await run_through(f"https://127.0.0.1:{front.port}", STAGES)
        truth = {run.id for run in sim.model.truth()}
    assert_every_run_completed(result, truth)
    assert proxy.tunnels and set(proxy.tunnels) == {f"127.0.0.1:{front.port}"}
    assert len(proxy.tunnels) <= 4  # connections are kept alive through their tunnels, not one per request
    assert proxy.forwarded == []


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [None, 2])
async def test_the_embedded_simulator_is_reached_directly_whatever_the_environment_says(
    workers: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = profile_of({"grace": "5s", "target": {"poll_interval": "50ms"}, "stages": STAGES})
    where = Where(base_url=None, api_key=KEY, simulator=SimConfig.from_text(slots=100, seed=3, api_key=KEY))
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)  # no NO_PROXY: httpx would send 127.0.0.1 through it
        scale = None if workers is None else Scale(workers=workers)
        outcome = await Session(profile, where, enforce_budget=False, scale=scale).run()
    assert outcome.engine.metrics.outcomes[Outcome.COMPLETED] == 4
    assert proxy.forwarded == [] and proxy.tunnels == []


async def test_the_check_before_a_run_names_a_refusing_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    async with simulator() as sim, ForwardProxy(user="ci", password=SECRET) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)  # no credentials
        target = TestCallsTarget(sim.base_url, KEY, Metrics(ClockAnchor.now()))
        try:
            with pytest.raises(TargetUnavailable) as raised:
                await target.check()
        finally:
            await target.aclose()
    assert str(raised.value) == (
        f"cannot reach {sim.base_url}: the proxy {proxy.url} refused the request: it answered 407 Proxy "
        "Authentication Required (are the user and password in the proxy's URL right?)"
    )


def test_stressor_run_says_which_proxy_it_could_not_reach(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('[cost]\nconsent_to_charge = true\nbudget_cents = 100\n[[stages]]\nduration = "1s"\nrate = 1\n')
    done = stressor_here(  # in this process, on the machine's clock: the proxy's port is a real, closed one
        "run",
        str(profile),
        "--base-url",
        "http://127.0.0.1:9",
        "--progress",
        "0",
        env={"THUNDERPHONE_API_KEY": KEY, "HTTP_PROXY": f"http://ci:{SECRET}@127.0.0.1:9"},
        real_time=True,
    )
    assert done.returncode == 3  # the target cannot be used
    assert "cannot reach http://127.0.0.1:9: cannot connect to the proxy http://127.0.0.1:9: " in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
