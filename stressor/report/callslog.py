"""A results file's calls log read back for the baseline diff: found where the results say (or beside them),
indexed in one pass (each run's line by its offset), and each transcript read when its pair is compared, so a
large log is never held in memory."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from stressor.document import Results
from stressor.report.baseline import SaidState
from stressor.report.transcripts import Transcript, turns_of

_HINT = "run it with --transcripts"


class CallsLogError(ValueError):
    """A calls log named on the command line that cannot be read; the message is one sentence."""


@dataclass(frozen=True, slots=True)
class CallsLogState:
    """What one side's calls log gave: its path (None: not found), the lines read, those that could not be
    (cut off, not JSON), the lines of the results' runs, and those with a transcript; ``problem``: one sentence
    when its transcripts cannot be compared, or ``caveat``, one when some are missing."""

    path: str | None
    lines: int = 0
    unreadable: int = 0
    runs: int = 0
    transcripts: int = 0
    problem: str | None = None
    caveat: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None


def locate(results_path: Path, results: Results, given: Path | None, which: str) -> tuple[Path | None, str | None]:
    """Where the calls log of ``results`` (read from ``results_path``) is: ``given`` when the user named one,
    else the path the results name, as written (from here), else a file of that name beside the results, else
    ``<results>.calls.jsonl`` beside them. Gives (None, why) when there is none; raises CallsLogError for a
    ``given`` file that cannot be read."""
    if given is not None:
        if not given.is_file():
            raise CallsLogError(f"{given}: the {which} calls log cannot be read (no such file).")
        return given, None
    logged = results.calls.log if results.calls is not None else None
    beside = results_path.parent
    candidates = [Path(logged), beside / Path(logged).name] if logged else []
    candidates.append(beside / f"{results_path.stem}.calls.jsonl")
    for candidate in candidates:
        if candidate.is_file():
            return candidate, None
    if results.calls is None:
        return None, f"the {which} run fetched no call logs ({_HINT})"
    if not logged:
        return None, f"the {which} run wrote no calls log ({_HINT})"
    return None, f"the {which} calls log {logged} is not there (nor beside {results_path}): transcripts not compared"


class CallsLogReader:
    """An open calls log: one pass finds the line of each run wanted (its first, by run id); ``transcript`` then
    reads a run's turns from its line. Use it as a context manager."""

    def __init__(self, path: Path, wanted: Collection[str], which: str) -> None:
        self.path = path
        self._which = which
        self._file: IO[bytes] = path.open("rb")
        self._offsets: dict[str, int] = {}
        try:
            self.state = self._index(wanted)
        except OSError:
            self._file.close()
            raise

    def __enter__(self) -> CallsLogReader:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def _index(self, wanted: Collection[str]) -> CallsLogState:
        lines = unreadable = transcripts = 0
        offset = 0
        for raw in self._file:
            at, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            lines += 1
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                unreadable += 1
                continue
            if not isinstance(line, dict):
                unreadable += 1
                continue
            run_id = line.get("run_id")
            key = str(run_id) if run_id is not None else None
            if key is None or key not in wanted or key in self._offsets:
                continue
            self._offsets[key] = at
            if isinstance(line.get("transcript"), list):
                transcripts += 1
        return self._state(lines, unreadable, transcripts, len(wanted))

    def _state(self, lines: int, unreadable: int, transcripts: int, wanted: int) -> CallsLogState:
        name, runs = f"the {self._which} calls log {self.path}", len(self._offsets)
        problem = caveat = None
        cut = f"{unreadable} of its {lines} lines could not be read (cut off, or not JSON)" if unreadable else None
        if lines == 0:
            problem = f"{name} is empty: transcripts not compared"
        elif runs == 0:
            problem = f"{name} holds none of its run's calls" + (f"; {cut}" if cut else " (another run's log?)")
        elif transcripts == 0:
            problem = f"{name} holds no transcripts ({_HINT}): transcripts not compared"
        elif cut:
            caveat = f"{name}: {cut}; the runs they were are compared without transcripts"
        elif transcripts < wanted:
            caveat = f"{name} has transcripts of {transcripts} of the run's {wanted} runs"
        return CallsLogState(str(self.path), lines, unreadable, runs, transcripts, problem, caveat)

    def transcript(self, run_id: str | None) -> Transcript | None:
        """The turns of the call of run ``run_id``; None when the log has no line of it, or no transcript."""
        at = self._offsets.get(str(run_id)) if run_id is not None else None
        if at is None:
            return None
        try:
            self._file.seek(at)
            line = orjson.loads(self._file.readline())
        except (OSError, orjson.JSONDecodeError):  # changed since it was indexed: as if it had no line
            return None
        return turns_of(line.get("transcript")) if isinstance(line, dict) else None


def open_said(
    results_path: Path, results: Results, given: Path | None, which: str, stack: ExitStack
) -> tuple[CallsLogReader | None, SaidState]:
    """The transcripts of one side (None when they cannot be compared) and what its calls log came to; the log
    stays open until ``stack`` closes. Raises CallsLogError for a ``given`` log that cannot be read."""
    path, why = locate(results_path, results, given, which)
    if path is None:
        return None, SaidState(None, problem=why)
    wanted = {str(r.run_id) for r in results.run_records if r.run_id is not None and r.call_id is not None}
    try:
        reader = stack.enter_context(CallsLogReader(path, wanted, which))
    except OSError as exc:
        if given is not None:
            raise CallsLogError(f"{path}: the {which} calls log cannot be read ({exc.strerror or exc}).") from None
        return None, SaidState(
            str(path), problem=f"the {which} calls log {path} cannot be read ({exc.strerror or exc})"
        )
    state = reader.state
    return (reader if state.usable else None), SaidState(state.path, state.problem, state.caveat)
