"""Just enough of RFC 8941 (structured field values) to read the IETF rate-limit headers.

Lists and dictionaries are read alike, as a sequence of members, since the drafts changed shape between
versions. Unlike RFC 8941, which rejects a whole field on the first error, a broken member is skipped and
reported: a server that gets one policy wrong should still be obeyed on the others.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

BareItem = int | float | str | bool | bytes

_KEY = re.compile(r"[A-Za-z*][A-Za-z0-9_\-.*]*")
_NUMBER = re.compile(r"-?([0-9]+)(\.[0-9]+)?")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
# RFC 8941 allows 15 digits; longer numbers are still read (and clamped by the caller) up to a size that
# int() handles instantly, rather than throwing away a header over a silly but harmless value.
_MAX_DIGITS = 100


class SfError(ValueError):
    """A member that is not valid structured-field syntax."""


@dataclass(frozen=True, slots=True)
class Member:
    """One list or dictionary member: `key` is set for dictionary members (`key=value`), None for list items.

    `value` is a bare item, or for an inner list a tuple of `(bare item, parameters)` pairs.
    """

    key: str | None
    value: BareItem | tuple[tuple[BareItem, Mapping[str, BareItem]], ...]
    params: Mapping[str, BareItem] = field(default_factory=dict)


def parse_members(text: str) -> tuple[list[Member], bool]:
    """Parse a list or dictionary field; return the members that parsed and whether any member was skipped."""
    members: list[Member] = []
    skipped = False
    for chunk in _split_members(text):
        try:
            members.append(_parse_member(chunk))
        except SfError:
            skipped = True
    return members, skipped


def _split_members(text: str) -> list[str]:
    # Commas inside strings or inner lists do not separate members.
    parts: list[str] = []
    start = 0
    in_string = escaped = False
    depth = 0
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        found = pattern.match(self.text, self.pos)
        if found:
            self.pos = found.end()
        return found


def _parse_member(chunk: str) -> Member:
    cursor = _Cursor(chunk.strip(" \t"))
    if not cursor.text:
        raise SfError("empty member")
    key: str | None = None
    found = _KEY.match(cursor.text)
    if found and cursor.text[found.end() : found.end() + 1] == "=":
        key = found.group().lower()
        cursor.pos = found.end() + 1
    value: BareItem | tuple[tuple[BareItem, Mapping[str, BareItem]], ...]
    value = _parse_inner_list(cursor) if cursor.peek() == "(" else _parse_bare(cursor)
    params = _parse_params(cursor)
    if cursor.pos != len(cursor.text):
        raise SfError(f"unexpected {cursor.text[cursor.pos :]!r}")
    return Member(key=key, value=value, params=params)


def _parse_inner_list(cursor: _Cursor) -> tuple[tuple[BareItem, Mapping[str, BareItem]], ...]:
    cursor.pos += 1
    items: list[tuple[BareItem, Mapping[str, BareItem]]] = []
    while True:
        cursor.skip_spaces()
        if cursor.peek() == ")":
            cursor.pos += 1
            return tuple(items)
        if not cursor.peek():
            raise SfError("unterminated inner list")
        items.append((_parse_bare(cursor), _parse_params(cursor)))
        if cursor.peek() not in (" ", ")"):
            raise SfError("inner list items must be separated by spaces")


def _parse_params(cursor: _Cursor) -> dict[str, BareItem]:
    params: dict[str, BareItem] = {}
    while cursor.peek() == ";":
        cursor.pos += 1
        cursor.skip_spaces()
        found = cursor.match(_KEY)
        if not found:
            raise SfError("bad parameter key")
        value: BareItem = True
        if cursor.peek() == "=":
            cursor.pos += 1
            value = _parse_bare(cursor)
        params[found.group().lower()] = value  # a repeated key keeps its last value, as RFC 8941 says
    return params


def _parse_bare(cursor: _Cursor) -> BareItem:
    char = cursor.peek()
    if not char:
        raise SfError("missing value")
    if char == '"':
        return _parse_string(cursor)
    if char in "-0123456789":
        return _parse_number(cursor)
    if char == "?":
        flag = cursor.text[cursor.pos + 1 : cursor.pos + 2]
        if flag not in ("0", "1"):
            raise SfError("bad boolean")
        cursor.pos += 2
        return flag == "1"
    if char == ":":
        end = cursor.text.find(":", cursor.pos + 1)
        if end < 0:
            raise SfError("unterminated byte sequence")
        try:
            raw = base64.b64decode(cursor.text[cursor.pos + 1 : end], validate=True)
        except binascii.Error:
            raise SfError("bad base64") from None
        cursor.pos = end + 1
        return raw
    found = cursor.match(_TOKEN)
    if not found:
        raise SfError(f"unexpected {char!r}")
    return found.group()


def _parse_string(cursor: _Cursor) -> str:
    out: list[str] = []
    pos = cursor.pos + 1
    text = cursor.text
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            following = text[pos + 1 : pos + 2]
            if following not in ('"', "\\"):
                raise SfError("bad escape in string")
            out.append(following)
            pos += 2
        elif char == '"':
            cursor.pos = pos + 1
            return "".join(out)
        elif not " " <= char <= "~":
            raise SfError("control or non-ASCII character in string")
        else:
            out.append(char)
            pos += 1
    raise SfError("unterminated string")


def _parse_number(cursor: _Cursor) -> int | float:
    found = cursor.match(_NUMBER)
    if not found:
        raise SfError("bad number")
    if len(found.group(1)) > _MAX_DIGITS:
        raise SfError("number too long")
    if found.group(2):
        return float(found.group())
    return int(found.group())
