"""The results fixture the report tests build on: a real results file, small, and what they rely on in it.

``tests/data/results-small.json`` was written by ``stressor run`` (embedded simulator, ``--webhooks``) with the
profile below, saved as ``tiny.toml`` beside ``scenarios.jsonl``, from that directory (so ``profile.source`` is
the relative ``tiny.toml``):

    stressor run tiny.toml --out results-small.json --progress 0 --webhooks

The tests copy it and change figures to craft the cases they need, so regenerating it changes no expectation
that the checks here keep true.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

FIXTURE = Path(__file__).parent / "data" / "results-small.json"

PROFILE = """\
name = "tiny"
description = "Fixture for the report tests: 2 s, 2 variants, 2 scenarios, failures and grades."
grace = "5s"
mean_call_duration = "45ms"
interval = "500ms"

[target]
kind = "test-calls"
submit = "batch"
poll_interval = "50ms"
request_timeout = "5s"

[target.request]
target_type = "agent"
target_id = 101
direction = "outbound"
mode = "bot"

[batch]
runs = 4
stagger = "10ms"

[scenarios]
corpus = "scenarios.jsonl"

[[variants]]
name = "spark"
target_id = 201

[[variants]]
name = "bolt"
target_id = 202

[grades]
threshold = 0.75

[simulator]
failure_rate = 0.15
seed = 7

[[stages]]
name = "warm-up"
duration = "1s"
rate = "3/s"

[[stages]]
name = "steady"
duration = "1s"
rate = "7/s"
"""

CORPUS = """\
{"name": "hours", "scenario_prompt": "Ask for the opening hours on Saturday.", "expected_outcome": "success"}
{"name": "refund", "scenario_prompt": "Ask for a refund of a double charge."}
"""


def load_fixture() -> dict:
    """A fresh copy of the fixture document (tests change it freely)."""
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_the_fixture_is_a_small_real_run_with_what_the_report_tests_need() -> None:
    doc = load_fixture()
    assert doc["schema"] == "stressor.results/1"
    assert doc["runs"]["planned"] == len(doc["run_records"]) == 40
    assert doc["runs"]["failed"] > 0 and doc["runs"]["completed"] > 0
    assert sorted(doc["variants"]) == ["bolt", "spark"]
    assert sorted(doc["scenarios"]) == ["hours", "refund"]
    assert doc["grades"]["threshold"] == 0.75 and doc["grades"]["count"] > 0
    assert len(doc["intervals"]) >= 4
    assert all(figures["hdr"] for figures in doc["measures"].values())
    assert {r["stage"] for r in doc["run_records"]} == {0, 1}


def test_the_fixture_holds_no_path_of_the_machine_that_wrote_it() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    assert not re.search(r"/(?:tmp|home|work|root|Users)/", text)
    assert load_fixture()["profile"]["source"] == "tiny.toml"
