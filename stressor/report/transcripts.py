"""Two calls' transcripts side by side: how alike their words are, and a compact diff of what each side said,
the agent's lines first. Pure (docs/reports.md, ``stressor compare --scenarios``)."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# The API's roles, as a reader of the diff knows them.
ROLE_NAMES = {"assistant": "agent", "user": "caller"}
ROLE_ORDER = ("agent", "caller")  # the diff shows the agent's lines first: a prompt changes what the agent says
DIFF_LINES = 20  # lines of a diff shown (hunk headers included); the rest are counted


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn of a conversation: who spoke (``agent``, ``caller``, or the role as the API wrote it) and what."""

    role: str
    text: str


Transcript = tuple[Turn, ...]


@dataclass(frozen=True, slots=True)
class TranscriptDiff:
    """What differs between two transcripts: unified-diff-like lines (``@@ agent turns 2-3 @@``, ``  agent: ...``
    context, ``- agent: ...`` base, ``+ agent: ...`` new), and how many more lines the cap left out."""

    lines: tuple[str, ...]
    omitted: int = 0


def turns_of(value: object) -> Transcript | None:
    """The turns of a calls log line's ``transcript`` (a list of ``{role, content}``); None when it holds none.
    Whitespace in a turn is collapsed; a turn that is not an object, or says nothing, is left out."""
    if not isinstance(value, list):
        return None
    turns = []
    for item in value:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        text = " ".join(content.split()) if isinstance(content, str) else ""
        if not text:
            continue
        role = item.get("role")
        role = role if isinstance(role, str) and role else "?"
        turns.append(Turn(ROLE_NAMES.get(role, role), text))
    return tuple(turns)


def digest(transcript: Transcript) -> bytes:
    """A short fingerprint of a transcript's words (two transcripts that say the same have the same one)."""
    hasher = hashlib.blake2b(digest_size=16)
    for turn in transcript:
        hasher.update(turn.role.encode())
        hasher.update(b"\x1f")
        hasher.update(turn.text.encode())
        hasher.update(b"\x1e")
    return hasher.digest()


def _words(transcript: Transcript) -> list[str]:
    words: list[str] = []
    for turn in transcript:
        words.append(f"{turn.role}:")
        words.extend(turn.text.split())
    return words


def similarity(base: Transcript, new: Transcript) -> float:
    """How alike two transcripts are, 0..1: difflib's ratio over their words in order, each turn's role a word
    too (1.0: the same words, by the same speakers)."""
    if base == new:
        return 1.0
    return difflib.SequenceMatcher(None, _words(base), _words(new), autojunk=False).ratio()


def _roles(base: Transcript, new: Transcript) -> list[str]:
    seen = [turn.role for turn in (*base, *new)]
    return [r for r in ROLE_ORDER if r in seen] + list(dict.fromkeys(r for r in seen if r not in ROLE_ORDER))


def _span(start: int, end: int) -> str:
    return f"turn {start + 1}" if end - start <= 1 else f"turns {start + 1}-{end}"


def _role_diff(role: str, base: Sequence[str], new: Sequence[str]) -> list[str]:
    if list(base) == list(new):
        return [f"@@ {role}: the same {len(base)} turn{'s' if len(base) != 1 else ''} @@"]
    lines = []
    matcher = difflib.SequenceMatcher(None, list(base), list(new), autojunk=False)
    for group in matcher.get_grouped_opcodes(1):
        first, last = group[0], group[-1]
        where = _span(first[1], last[2]) if last[2] > first[1] else _span(first[3], last[4]) + " (new)"
        lines.append(f"@@ {role} {where} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [f"  {role}: {text}" for text in base[i1:i2]]
                continue
            lines += [f"- {role}: {text}" for text in base[i1:i2]]
            lines += [f"+ {role}: {text}" for text in new[j1:j2]]
    return lines


def transcript_diff(
    base: Transcript, new: Transcript, max_lines: int = DIFF_LINES, width: int | None = None
) -> TranscriptDiff:
    """The turns that differ, role by role (the agent's first, then the caller's), each with a line of context;
    a role whose turns are all the same is one line. At most ``max_lines`` lines, each cut to ``width``
    characters when given."""
    lines: list[str] = []
    for role in _roles(base, new):
        lines += _role_diff(role, [t.text for t in base if t.role == role], [t.text for t in new if t.role == role])
    shown = lines[:max_lines]
    if width is not None:
        shown = [line if len(line) <= width else line[: max(width - 1, 1)] + "…" for line in shown]
    return TranscriptDiff(tuple(shown), len(lines) - len(shown))
