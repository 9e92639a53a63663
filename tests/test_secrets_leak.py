"""Secrets never leak: the API key and the webhook signing secret appear in no artifact, no output, no error.

End to end with the command line: ``stressor run`` against a separately started simulator with its own key,
writing every artifact there is (results, runs log, HDR log, HTML, JUnit), then each artifact, stdout and
stderr are searched for the key, for its middle part and (in the webhook runs) for the signing secret and
anything shaped like one. The key end to end runs as a user runs it (a subprocess against ``stressor sim`` on
loopback); the others run in this process, on virtual time against the simulator or an API of their own in
memory. Covered: the key end to end; the key and a webhook secret given by environment, with the simulator
posting signed webhooks to stressor's receiver; the secret stressor makes up for the embedded simulator; a
refused key; a server that echoes the key in its 401 or in its runs' errors. The secrets are made up inside the
test, fresh each time: they are nowhere else on the machine to be found by chance.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.cli import stressor_here

from stressor.distributed.worker import WorkerSpec
from stressor.profile import parse_profile
from stressor.secrets import mask_secret, redact
from stressor.session import Where
from stressor.shares import Share
from stressor.sim.config import SimConfig

RUN_TIMEOUT_S = 120
WHSEC_SHAPED = re.compile(rb"whsec_[A-Za-z0-9+/=_-]{8,}")  # a signing secret, not its mask (whsec_...abcd)


def fake_key() -> str:
    return "sk_live_" + secrets.token_hex(16)  # 32 random hex characters, made here and nowhere else


def write_profile(directory: Path, *, webhooks: bool = False) -> Path:
    """A tiny profile: 1 s of 4 batches/s of 2 runs, with consent and a budget (a real API bills every run)."""
    profile = directory / "tiny.toml"
    profile.write_text(
        'name = "tiny"\ngrace = "5s"\n'
        '[target]\npoll_interval = "20ms"\n'
        "[batch]\nruns = 2\n"
        "[cost]\nconsent_to_charge = true\nbudget_cents = 10000\n"
        + ("[webhooks]\nenabled = true\n" if webhooks else "")
        + '[[stages]]\nduration = "1s"\nrate = "4/s"\n'
    )
    return profile


@dataclass(frozen=True, slots=True)
class Finished:
    """A finished ``stressor run``: its exit code, output and the artifacts it was asked to write."""

    returncode: int
    stdout: bytes
    stderr: bytes
    artifacts: tuple[Path, ...]

    def everything(self) -> dict[str, bytes]:
        """Every artifact that exists (by name), plus stdout and stderr."""
        found = {path.name: path.read_bytes() for path in self.artifacts if path.exists()}
        return {**found, "stdout": self.stdout, "stderr": self.stderr}


def _arguments(directory: Path, profile: Path, *flags: str) -> tuple[list[str], tuple[Path, ...]]:
    """The arguments of ``stressor run`` with every artifact it can write, in ``directory``; the artifacts."""
    artifacts = {
        "--out": directory / "results.json",
        "--runs-log": directory / "runs.jsonl",
        "--hlog": directory / "q2c.hlog",
        "--html": directory / "report.html",
        "--junit": directory / "junit.xml",
    }
    arguments = ["run", str(profile), "--progress", "1", *flags]
    for flag, path in artifacts.items():
        arguments += [flag, str(path)]
    arguments += ["--threshold", "failure_rate < 0.5"]  # so the JUnit and HTML reports carry a verdict
    return arguments, tuple(artifacts.values())


def stressor_run(directory: Path, profile: Path, env: dict[str, str], *flags: str) -> Finished:
    """``stressor run`` in its own process with every artifact it can write, in ``directory``."""
    arguments, artifacts = _arguments(directory, profile, *flags)
    command = [sys.executable, "-m", "stressor", *arguments]
    done = subprocess.run(command, env=env, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    return Finished(done.returncode, done.stdout, done.stderr, artifacts)


def stressor_run_here(
    directory: Path, profile: Path, env: dict[str, str], *flags: str, **options: object
) -> Finished:
    """``stressor_run`` in this process (``options`` for ``stressor_here``: servers, real time)."""
    arguments, artifacts = _arguments(directory, profile, *flags)
    done = stressor_here(*arguments, env=env, **options)  # type: ignore[arg-type]
    return Finished(done.returncode, done.stdout.encode(), done.stderr.encode(), artifacts)


def server(key: str, **settings: object) -> SimConfig:
    """What ``stressor sim --seed 11 --api-key KEY`` serves, with ``settings``; stressor_here serves the first at
    ``SIMULATOR_URL``."""
    return SimConfig.from_mapping({"api_key": key, "seed": 11, **settings})


SIMULATOR_URL = "http://simulator-1.test"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this one's, without any real key or secret, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("THUNDERPHONE_API_KEY", "STRESSOR_WEBHOOK_SECRET", "STRESSOR_SIM_API_KEY", "STRESSOR_BASE_URL")
    }
    return {**env, **extra}


@contextmanager
def simulator(*flags: str, **env: str) -> Iterator[str]:
    """``stressor sim`` in its own process on a free loopback port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "sim", "--port", "0", "--seed", "11", *flags],
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on " in line, line
        yield line.split("listening on ")[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=10)


def assert_nowhere(found: dict[str, bytes], *needles: str) -> None:
    for name, content in found.items():
        for needle in needles:
            assert needle.encode() not in content, f"{needle[:12]}... appears in {name}"


@pytest.mark.e2e
def test_the_api_key_appears_in_no_artifact_and_no_output(tmp_path: Path) -> None:
    key = fake_key()
    with simulator("--api-key", key) as base_url:
        finished = stressor_run(
            tmp_path, write_profile(tmp_path), child_env(THUNDERPHONE_API_KEY=key), "--base-url", base_url
        )
    assert finished.returncode == 0, finished.stderr.decode()
    found = finished.everything()
    assert set(found) == {"results.json", "runs.jsonl", "q2c.hlog", "report.html", "junit.xml", "stdout", "stderr"}
    # the key, its secret part and a middle slice of it: none anywhere
    assert_nowhere(found, key, key[len("sk_live_") :], key[12:-8])
    results = orjson.loads(found["results.json"])
    assert results["runs"]["completed"] == results["runs"]["planned"] == 8  # the key did work
    assert results["target"]["api_key"] == mask_secret(key) == f"sk_live_...{key[-4:]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_key_and_the_webhook_secret_from_the_environment_appear_nowhere(tmp_path: Path) -> None:
    # against a separately started API (the simulator): stressor's receiver on a known port, the simulator
    # told to post there, both given the secret by environment as a user would
    key, secret = fake_key(), "whsec_" + secrets.token_hex(24)
    port = free_port()
    api = server(key, webhook_url=f"http://127.0.0.1:{port}/webhooks", webhook_secret=secret)
    finished = stressor_run_here(
        tmp_path,
        write_profile(tmp_path, webhooks=True),
        {"THUNDERPHONE_API_KEY": key, "STRESSOR_WEBHOOK_SECRET": secret},
        *("--base-url", SIMULATOR_URL, "--webhook-listen", f"127.0.0.1:{port}"),
        servers=[api],
    )
    assert finished.returncode == 0, finished.stderr.decode()
    found = finished.everything()
    assert orjson.loads(found["results.json"])["webhooks"]["accepted"] > 0  # signed with it, checked with it
    assert_nowhere(found, key, key[len("sk_live_") :], key[12:-8], secret, secret[len("whsec_") :], secret[12:-8])
    for name, content in found.items():
        assert not WHSEC_SHAPED.search(content), f"a signing secret appears in {name}"


def test_the_webhook_secret_stressor_makes_up_appears_nowhere(tmp_path: Path) -> None:
    # embedded simulator + webhooks: stressor makes the signing secret up and hands it to the simulator
    finished = stressor_run_here(tmp_path, write_profile(tmp_path, webhooks=True), {}, "--webhooks")
    assert finished.returncode == 0, finished.stderr.decode()
    results = orjson.loads(finished.everything()["results.json"])
    assert results["webhooks"]["accepted"] > 0  # the secret was used: signatures were checked and matched
    for name, content in finished.everything().items():
        assert not WHSEC_SHAPED.search(content), f"a signing secret appears in {name}"


def test_a_refused_key_is_not_repeated_in_the_error(tmp_path: Path) -> None:
    key, other = fake_key(), fake_key()
    finished = stressor_run_here(  # the simulator wants a different key: 401
        tmp_path,
        write_profile(tmp_path),
        {"THUNDERPHONE_API_KEY": key},
        *("--base-url", SIMULATOR_URL),
        servers=[server(other)],
    )
    assert finished.returncode == 3
    assert b"API key was refused" in finished.stderr
    assert_nowhere(finished.everything(), key, key[len("sk_live_") :], key[12:-8])


Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _answer(send: Send, status: int, body: object) -> None:
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _request(scope: Message, receive: Receive) -> tuple[str, str, bytes, str]:
    """The method, the path with its query, the body and the Authorization header of an ASGI request."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    query = scope["query_string"].decode()
    headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
    return scope["method"], scope["path"] + (f"?{query}" if query else ""), body, headers.get("authorization", "")


async def echoing_api(scope: Message, receive: Receive, send: Send) -> None:
    """An API that answers the health check and the key probe, then refuses every create with 401, repeating
    the Authorization header it got in the error (as careless servers do)."""
    method, path, _, authorization = await _request(scope, receive)
    if method == "POST":
        await _answer(send, 401, {"detail": f"Invalid API key: got {authorization!r}"})
    else:
        await _answer(send, 200, {"ok": True} if path.startswith("/v1/healthz") else [])


def run_against(app: object, tmp_path: Path, key: str) -> Finished:
    """``stressor run`` with ``key`` against the API ``app`` (in memory, on virtual time)."""
    return stressor_run_here(
        tmp_path, write_profile(tmp_path), {"THUNDERPHONE_API_KEY": key}, "--base-url", API_URL, servers=[app]
    )


API_URL = "http://api-1.test"


def test_a_401_that_echoes_the_key_is_masked_in_every_artifact(tmp_path: Path) -> None:
    key = fake_key()
    finished = run_against(echoing_api, tmp_path, key)
    assert finished.returncode == 3  # stopped by a fatal answer, with the results written
    assert b"API key was refused" in finished.stderr
    assert mask_secret(key).encode() in finished.stderr  # the server's words are shown, the key masked in them
    assert_nowhere(finished.everything(), key, key[len("sk_live_") :], key[12:-8])


class EchoingRunApi:
    """An API that creates batches and fails every run with an ``error_message`` repeating the Authorization
    header of the create (as a careless server might): the message reaches the records, the runs log and
    the summary, and must carry the key masked."""

    def __init__(self) -> None:
        self.runs: list[dict[str, object]] = []
        self.batches: dict[str, list[str]] = {}

    async def __call__(
        self, scope: Message, receive: Receive, send: Send
    ) -> None:
        method, path, body, authorization = await _request(scope, receive)
        if method == "POST":
            await self._create(send, orjson.loads(body), authorization)
        elif path.startswith("/v1/healthz"):
            await _answer(send, 200, {"ok": True})
        elif path.startswith("/v1/test-call-batches/"):
            run_ids = self.batches.get(path.rsplit("/", 1)[1], [])
            await _answer(send, 200, {"id": "b", "completed_runs": 0, "failed_runs": len(run_ids), "run_ids": run_ids})
        elif path.startswith("/v1/test-calls?") and "offset=" in path:
            await _answer(send, 200, list(reversed(self.runs)))
        else:
            await _answer(send, 200, [])

    async def _create(self, send: Send, body: Any, authorization: str) -> None:
        now = "2026-11-29T18:24:09.011Z"
        batch_id = f"tcb_{len(self.batches)}"
        run_ids = [f"tc_{len(self.runs) + i}" for i in range(body["run_count"])]
        message = f"upstream refused the call: Authorization {authorization}"
        for run_id in run_ids:
            times = {"created_at": now, "started_at": now, "completed_at": now}
            self.runs.append({"id": run_id, "status": "failed", "error_message": message, **times})
        self.batches[batch_id] = run_ids
        await _answer(send, 201, {"id": batch_id, "run_ids": run_ids, "created_at": now, "status": "pending"})


def test_a_run_error_message_that_echoes_the_key_is_masked_in_every_artifact(tmp_path: Path) -> None:
    key = fake_key()
    finished = run_against(EchoingRunApi(), tmp_path, key)
    found = finished.everything()
    results = orjson.loads(found["results.json"])
    assert results["runs"]["failed"] == results["runs"]["planned"] == 8, finished.stderr.decode()
    assert mask_secret(key).encode() in found["runs.jsonl"]  # the server's message is kept, the key masked in it
    assert_nowhere(found, key, key[len("sk_live_") :], key[12:-8])


def test_the_reprs_that_carry_the_key_mask_it() -> None:
    # a repr lands in tracebacks and in dask's "Compute Failed" log lines (repr(run_spec)[:1000])
    key, secret = fake_key(), "whsec_" + secrets.token_hex(24)
    where = Where(base_url="http://127.0.0.1:9", api_key=key, webhook_secrets=(secret,))
    profile = parse_profile({"name": "tiny", "stages": [{"duration": "1s", "rate": "1/s"}]}, "tiny.toml", Path())
    spec = WorkerSpec(profile, Share(), "http://127.0.0.1:9", key, 0.0, enforce_budget=False)
    for shown in (repr(where), repr(spec)):
        assert key not in shown and key[len("sk_live_") :] not in shown and secret[len("whsec_") :] not in shown
        assert mask_secret(key) in shown
    assert mask_secret(secret) in repr(where)


# ------------------------------------------------------------------------------------------------ mask_secret


@pytest.mark.parametrize(
    ("secret", "mask"),
    [
        (None, "(none)"),
        ("", "(none)"),
        ("sk_live_" + "0123456789abcdef" * 2, "sk_live_...cdef"),
        ("whsec_" + "A" * 40, "whsec_...AAAA"),
        ("sk_test_stressor_embedded_simulator", "sk_test_...ator"),
        # no prefix: nothing but the tail
        ("0123456789abcdef0123456789abcdef", "...cdef"),
        # short: not even the tail, which would be a quarter or more of the secret
        ("sk_live_abcd", "sk_live_..."),
        ("sk_live_0123456789abcde", "sk_live_..."),  # 15 characters after the prefix
        ("abc", "..."),
        ("x", "..."),
        # digits or a long word before an underscore are part of the secret, not a prefix
        ("0123456789a_bcdefghijklmnopqrs", "...pqrs"),
        ("abcdefghijk_0123456789abcdef01", "...ef01"),
    ],
)
def test_mask_secret(secret: str | None, mask: str) -> None:
    assert mask_secret(secret) == mask


def test_a_mask_never_shows_more_than_a_quarter_of_the_secret() -> None:
    for length in range(1, 80):
        for secret in ("k" * length, "sk_live_" + "k" * length, "_" * length):
            shown = mask_secret(secret).replace("...", "")
            prefix = shown if mask_secret(secret).endswith("...") else shown[:-4]
            secret_part = secret[len(prefix) :]
            tail = len(shown) - len(prefix)
            assert tail <= len(secret_part) / 4, (secret, mask_secret(secret))


def test_redact_masks_every_occurrence_and_ignores_empty_secrets() -> None:
    key = fake_key()
    text = f"got {key!r}, expected a key, not {key}"
    assert redact(text, key, None, "") == text.replace(key, mask_secret(key))
    assert key not in redact(text, key)
    assert redact("nothing to hide", key) == "nothing to hide"
