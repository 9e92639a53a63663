"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): no driver and no
library, only the browser. ``--dump-dom`` and ``--screenshot`` read a page once, at its load; a live page that
updates by server-sent events is read here while it runs: ``Browser.open(url)`` gives a ``Tab`` whose
``evaluate(js)`` returns a value of the page, and ``screenshot()`` a PNG.

``find_chromium()`` gives the binary, or skips the test, unless ``STRESSOR_REQUIRE_CHROMIUM`` or ``CI`` is set
(``.ci/run`` sets both after installing Debian's ``chromium``): there it fails, so a CI run cannot pass without
a browser.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

REQUIRED_BY = ("STRESSOR_REQUIRE_CHROMIUM", "CI")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",  # a page taller than the window is captured whole, at the window's width
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def find_chromium(what: str = "the browser check") -> Path:
    """The ``chromium`` on the PATH; else the test fails where a browser is required, and skips elsewhere."""
    found = shutil.which("chromium")
    if found is not None:
        return Path(found)
    required = [name for name in REQUIRED_BY if os.environ.get(name)]
    if required:
        pytest.fail(f"{' and '.join(required)} is set, but chromium is not on the PATH: {what} needs it")
    pytest.skip("needs chromium on the PATH (Debian package chromium); CI requires it")


class DevToolsError(RuntimeError):
    """The browser answered a command with an error, or not in time."""


class Browser:
    """A headless Chromium for the block, spoken to over fds 3 (commands) and 4 (answers)."""

    def __init__(self, binary: Path, profile_dir: Path, *, width: int = 1280, height: int = 1600) -> None:
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()

        def pipes_at_3_and_4() -> None:
            os.dup2(commands_read, 3)
            os.dup2(answers_write, 4)

        self._process = subprocess.Popen(
            [str(binary), *FLAGS, f"--user-data-dir={profile_dir}", f"--window-size={width},{height}",
             "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=pipes_at_3_and_4,  # noqa: PLW1509 (a child that runs no Python)
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._next_id = 0
        self.size = (width, height)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._send("Browser.close")
            self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait(timeout=10)
        finally:
            os.close(self._commands)
            os.close(self._answers)

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._next_id

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send a command and wait (30 s at most) for its answer; its ``result``."""
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if message.get("id") == wanted:
                    if "error" in message:
                        raise DevToolsError(f"{method}: {message['error']}")
                    return message.get("result", {})
            ready, _, _ = select.select([self._answers], [], [], 0.5)
            if ready:
                chunk = os.read(self._answers, 1 << 20)
                if not chunk:
                    raise DevToolsError(f"{method}: the browser went away")
                self._buffer += chunk
        raise DevToolsError(f"{method}: no answer in 30 s")

    def open(self, url: str) -> Tab:
        """A new tab loading ``url``."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Tab(self, session)


class Tab:
    """One page of a ``Browser``."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def navigate(self, url: str) -> None:
        """Load ``url`` in this tab, and wait for it to load."""
        self.browser.call("Page.navigate", {"url": url}, self.session)
        self.wait_for(f"location.href === {url!r} && document.readyState === 'complete'")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """The first truthy value of ``expression``, polled every 100 ms (an error counts as false: the page may
        not have loaded yet)."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except DevToolsError as error:
                value, last = None, error
            if value:
                return value
            time.sleep(0.1)
        raise DevToolsError(f"{expression[:80]}: still false after {timeout_s:g} s (last error: {last})")

    def screenshot(self, height: float | None = None) -> bytes:
        """A PNG of the whole page, or of its top ``height`` pixels."""
        options: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if height is not None:
            width = self.evaluate("document.documentElement.scrollWidth")
            options["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = self.browser.call("Page.captureScreenshot", options, self.session)
        return base64.b64decode(data["data"])


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows (RGBA or RGB, 8 bits) of a non-interlaced PNG."""
    assert data.startswith(PNG_MAGIC)
    at, chunks = 8, {}
    idat = b""
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        at += 12 + length
    header = chunks[b"IHDR"]
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    depth, color = header[8], header[9]
    assert depth == 8 and color in (2, 6) and header[12] == 0, header
    size = 4 if color == 6 else 3
    raw, stride = zlib.decompress(idat), width * size
    rows, previous = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - size] if x >= size else 0
            up, corner = previous[x], previous[x - size] if x >= size else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[x] = (line[x] + near[2]) & 0xFF
        rows.append(bytes(line) if size == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        previous = bytes(line)
    return width, height, rows


def coloured(rows: list[bytes], left: float, top: float, width: float, height: float) -> int:
    """Pixels in the box that are neither white nor grey: the charts' lines and dots."""
    count = 0
    for y in range(int(top), int(top + height)):
        row = rows[y]
        for x in range(int(left), int(left + width)):
            r, g, b = row[3 * x : 3 * x + 3]
            if max(r, g, b) - min(r, g, b) > 40:
                count += 1
    return count
