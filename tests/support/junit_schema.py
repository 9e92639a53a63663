"""The rules of the strict JUnit schema Jenkins' xUnit plugin validates against (its ``junit-10.xsd``), checked
here without an XML schema library: which elements may hold which, the attributes each allows and requires,
where text may stand, and the form of ``time`` on suites. ``problems(xml)`` lists what breaks them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

# Surefire's form of a time: digits, optionally grouped by commas in threes, then an optional fraction.
SUREFIRE_TIME = re.compile(r"(?:(?:[0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(?:\.[0-9]*)?")


@dataclass(frozen=True)
class Rule:
    """What one element may be: its child elements (None: text only, no child), its attributes, and whether it
    may hold text beside its children."""

    children: frozenset[str] | None
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    text: bool = False


_RERUNS = ("rerunFailure", "rerunError", "flakyFailure", "flakyError")  # Surefire's re-runs of a flaky test
_RESULT = Rule(frozenset(), optional=frozenset({"type", "message"}), text=True)
_RERUN = Rule(
    frozenset({"stackTrace", "system-out", "system-err"}),
    required=frozenset({"type"}),
    optional=frozenset({"message"}),
    text=True,
)
RULES = {
    "testsuites": Rule(frozenset({"testsuite"}), optional=frozenset({"name", "time", "tests", "failures", "errors"})),
    "testsuite": Rule(
        frozenset({"testsuite", "properties", "testcase", "system-out", "system-err"}),
        required=frozenset({"name", "tests", "failures", "errors"}),
        optional=frozenset(
            {"group", "time", "skipped", "timestamp", "hostname", "id", "package", "file", "log", "url"}
        ),
    ),
    "properties": Rule(frozenset({"property"})),
    "property": Rule(frozenset(), required=frozenset({"name", "value"})),
    "testcase": Rule(
        frozenset({"skipped", "error", "failure", "system-out", "system-err"}) | frozenset(_RERUNS),
        required=frozenset({"name"}),
        optional=frozenset({"time", "classname", "group"}),
    ),
    "failure": _RESULT,
    "error": _RESULT,
    "skipped": _RESULT,
    "system-out": Rule(None),
    "system-err": Rule(None),
    "stackTrace": Rule(None),
    "rerunFailure": _RERUN,
    "rerunError": _RERUN,
    "flakyFailure": _RERUN,
    "flakyError": _RERUN,
}
_TIMED = ("testsuites", "testsuite")  # the elements whose ``time`` must have Surefire's form


def problems(xml: str | bytes) -> list[str]:
    """Every way the document breaks the strict schema (empty when it is valid)."""
    root = ET.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    found: list[str] = []
    if root.tag not in ("testsuites", "testsuite"):
        found.append(f"the root is <{root.tag}>, not <testsuites> or <testsuite>")
    _check(root, root.tag, found)
    return found


def _check(element: ET.Element, where: str, found: list[str]) -> None:
    rule = RULES.get(element.tag)
    if rule is None:
        found.append(f"{where}: <{element.tag}> is not an element of the schema")
        return
    attributes = set(element.attrib)
    for missing in sorted(rule.required - attributes):
        found.append(f"{where}: lacks the attribute {missing}")
    for extra in sorted(attributes - rule.required - rule.optional):
        found.append(f"{where}: the attribute {extra} is not allowed")
    if element.tag in _TIMED and "time" in element.attrib and not SUREFIRE_TIME.fullmatch(element.attrib["time"]):
        found.append(f"{where}: time={element.attrib['time']!r} is not a time of the schema's form")
    allowed = rule.children if rule.children is not None else frozenset()
    if not (rule.text or rule.children is None):
        texts = [element.text, *(child.tail for child in element)]
        if any(text and text.strip() for text in texts):
            found.append(f"{where}: holds text, where only elements may stand")
    for index, child in enumerate(element):
        inner = f"{where}/{child.tag}[{index}]"
        if child.tag not in allowed:
            found.append(f"{where}: <{child.tag}> may not stand in <{element.tag}>")
            continue
        _check(child, inner, found)
