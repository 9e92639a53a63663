"""Typed results documents for the tests of their readers: a JSON-like dict, crafted or from a fixture file,
through the one loader (so a test's document is checked as a file's would be)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stressor.document import Results, load_results


def results(document: Mapping[str, Any] | Results) -> Results:
    """The typed document of ``document`` (a typed one is taken as it is)."""
    return document if isinstance(document, Results) else load_results(document)
