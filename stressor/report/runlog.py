"""The runs log: one JSON line per run as it ends, flushed at least every second, so nothing is lost.

A killed stressor (even ``kill -9``) loses at most the last second of runs; ``stressor report runs.jsonl``
rebuilds the summary from the log alone. Lines:

- ``{"type": "start", "profile": ..., "source": ..., "started_at": <epoch>, "target": {...}}`` first;
- ``{"type": "run", ...}``: a run record (``RunRecord.to_json``: client times in seconds since the start);
- ``{"type": "end", "ended_at": <epoch>, "interrupted": ..., "stop_reason": ...}`` when the run ended cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from stressor.metrics import Outcome, RunRecord
from stressor.timestamps import NS_PER_S, ClockAnchor


class RunLog:
    """Appends lines to the log; ``flush`` writes what is buffered (call it at least once a second)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[bytes] = path.open("wb")
        self._pending: list[bytes] = []

    def write(self, line: Mapping[str, Any]) -> None:
        self._pending.append(orjson.dumps(line) + b"\n")

    def flush(self) -> None:
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending.clear()
        self._file.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()


class RunLogError(ValueError):
    """A runs log that cannot be read back; the message names the line."""


def read_runs_log(path: Path) -> tuple[dict[str, Any], list[RunRecord], dict[str, Any] | None, ClockAnchor]:
    """The start line, the run records (client times rebuilt on a clock that starts at 0) and the end line
    (None when the run was killed). A last line cut off by a kill is ignored."""
    lines = list(_lines(path))
    if not lines or lines[0].get("type") != "start":
        raise RunLogError(f"{path}: line 1: expected the start line of a stressor runs log")
    start = lines[0]
    anchor = ClockAnchor(wall_ns=round(float(start["started_at"]) * NS_PER_S), mono_ns=0)
    records, end = [], None
    for number, line in enumerate(lines[1:], start=2):
        kind = line.get("type")
        if kind == "run":
            try:
                records.append(_record(line))
            except (KeyError, TypeError, ValueError) as exc:
                raise RunLogError(f"{path}: line {number}: not a run record ({exc})") from None
        elif kind == "end":
            end = line
    return start, records, end, anchor


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        raw = path.read_bytes().split(b"\n")
    except OSError as exc:
        raise RunLogError(f"{path}: cannot read ({exc.strerror})") from None
    for number, text in enumerate(raw, start=1):
        if not text.strip():
            continue
        try:
            line = orjson.loads(text)
        except orjson.JSONDecodeError:
            if number == len(raw):  # the line a kill cut in half
                return
            raise RunLogError(f"{path}: line {number}: not JSON") from None
        if not isinstance(line, dict):
            raise RunLogError(f"{path}: line {number}: not a JSON object")
        yield line


def _ns(seconds: object) -> int | None:
    return None if seconds is None else round(float(seconds) * NS_PER_S)  # type: ignore[arg-type]


def _record(line: Mapping[str, Any]) -> RunRecord:
    due_ns = _ns(line["due_s"])
    assert due_ns is not None
    return RunRecord(
        batch_seq=int(line["batch_seq"]),
        index=int(line["index"]),
        stage=int(line["stage"]),
        variant=str(line["variant"]),
        scenario=str(line["scenario"]),
        outcome=Outcome(line["outcome"]),
        due_ns=due_ns,
        run_id=line.get("run_id"),
        batch_id=line.get("batch_id"),
        error=line.get("error"),
        detected_ns=_ns(line.get("detected_s")),
        created_at=line.get("created_at"),
        started_at=line.get("started_at"),
        completed_at=line.get("completed_at"),
        stagger_s=float(line.get("stagger_s", 0.0)),
        cost_cents=line.get("cost_cents"),
        call_id=line.get("call_id"),
        grade=line.get("grade"),
    )
