"""`stressor run --progress N` with stderr not a terminal (a CI log): plain lines every N seconds, with the rates
of the last seconds (a faster stage shows its own rate; the grace period offers nothing), in this process on
virtual time. On a terminal (a pseudo-terminal here, a real process): the live table instead."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from support.cli import stressor_here

PROFILE = """
name = "two speeds"
grace = "10s"
[target]
poll_interval = "20ms"
[batch]
runs = 1
[[stages]]
name = "slow"
duration = "2s"
rate = "2/s"
[[stages]]
name = "fast"
duration = "2s"
rate = "20/s"
"""
# the same two speeds, shorter: what a terminal shows does not depend on the plan's length
TERMINAL_PROFILE = PROFILE.replace('duration = "2s"', 'duration = "1.5s"')
LINE = re.compile(
    r"^\[\s*([\d.]+)s/4s\] (?:(\w+), [^|,]+ left, ends in [^|]+|grace, \d+ in flight, ends [^|]+) \| runs planned 44 "
    r"due \d+ submitted \d+ ended \d+ .*\| (?:last [^:]+|so far): ([\d.]+)/s offered"
)


def test_a_log_gets_plain_periodic_lines_with_the_current_rates(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE)
    out = str(tmp_path / "r.json")
    done = stressor_here(  # stderr is not a terminal: no live table
        "run", str(profile), "--out", out, "--progress", "0.4", "--sim-call-duration", "fixed(1500)"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(lines) >= 6, done.stderr[-3000:]
    assert not re.search("[┏━┃╭─]", done.stderr)  # no table drawing in a log
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), [line for line, match in zip(lines, parsed, strict=True) if not match]
    offered = {"slow": [], "fast": [], "grace": []}
    for match in parsed:
        assert match is not None
        offered[match[2] or "grace"].append(float(match[3]))
    assert offered["slow"] and offered["fast"] and offered["grace"], lines
    # The whole-run average never gets above 11 runs/s here ((4 + 40) / 4 s); the fast stage offers 20 (its
    # first second's windows reach back into the slow stage, for at least 1 s of arrivals).
    assert max(offered["fast"]) >= 13, lines
    assert max(offered["slow"]) <= 6, lines
    assert offered["grace"] == [0.0] * len(offered["grace"]), lines


@pytest.mark.e2e
@pytest.mark.parametrize("columns", [160, 50])
def test_a_terminal_gets_the_live_view_instead_never_wider_than_80_columns(tmp_path: Path, columns: int) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(TERMINAL_PROFILE)
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "run", str(profile), "--out", str(tmp_path / "r.json"), "--progress", "5"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end closed: the run is over
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.wait(timeout=30) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))  # what the terminal shows
    # Refreshed twice a second over a 3 s plan: many views, with the window's figures; no log lines.
    assert len(re.findall(r"s of 3\.0s, stage \d of 2  ends in ", text)) >= 4, text[-3000:]
    assert re.search(r"last \d", text) and "q2c p50" in text and "█" in text
    assert not re.search(r"\[\s*[\d.]+s/3s\] ", text)
    # Every line drawn fits the terminal and 80 columns: none wraps into the next.
    drawn = re.split(r"\r\n|\r|\n", text)
    widest = max(drawn, key=len)
    assert len(widest) <= min(columns, 80), widest
    assert any(len(line) > 45 for line in drawn)  # the view uses the width it has
