"""The typed results document and its one loader: a file written by a run loads and writes back the same JSON;
older and partial files load, what they lack read as not there; a field of the wrong type is refused in one
sentence that names it.

``tests/data/results-current.json`` was written by ``stressor run`` with the profile of
``tests/test_report_fixture.py`` (from the directory holding ``tiny.toml`` and ``scenarios.jsonl``):

    stressor run tiny.toml --out results-current.json --progress 0 --webhooks \
        -t "failure_rate < 50%" -t "queue_to_completion.p99 < 10s"

``tests/data/results-small.json`` is the same profile's, written by an earlier version (no ``runs.unknown``,
``server``, ``stages``, per-slice ``measures``...).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stressor.document import (
    Figures,
    IntervalFigures,
    MeasureFigures,
    ResultsError,
    RunEntry,
    Slice,
    load_results,
)

DATA = Path(__file__).parent / "data"
CURRENT = DATA / "results-current.json"
OLDER = DATA / "results-small.json"


def _json(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


def test_a_file_written_by_a_run_loads_into_typed_parts() -> None:
    results = load_results(_json(CURRENT))
    assert (results.profile.name, results.runs.planned, results.runs.unknown) == ("tiny", 40, 0)
    assert results.runs.completed + results.runs.failed == 40 and results.runs.settled == 40
    q2c = results.measures["queue_to_completion"]
    assert isinstance(q2c, MeasureFigures) and q2c.count == 40 and q2c.hdr and q2c.p99 is not None
    assert set(results.variants) == {"spark", "bolt"} and isinstance(results.variants["spark"], Slice)
    assert results.scenarios["hours"].expected_outcome == "success"
    assert results.scenarios["refund"].expected_outcome is None
    assert results.webhooks is not None and results.webhooks.accepted
    assert results.server is not None and results.server.clock_offset is not None
    assert [stage.name for stage in results.stages or ()] == ["warm-up", "steady"]
    assert isinstance(results.intervals[0], IntervalFigures) and isinstance(results.run_records[0], RunEntry)
    assert results.thresholds == ("failure_rate < 50%", "queue_to_completion.p99 < 10s")


def test_a_file_written_by_a_run_writes_back_the_same_json() -> None:
    written = CURRENT.read_bytes()
    again = orjson.dumps(load_results(orjson.loads(written)).to_json(), option=orjson.OPT_INDENT_2)
    assert again == written  # every field, every value, in the same order


def test_the_typed_document_is_frozen() -> None:
    results = load_results(_json(CURRENT))
    with pytest.raises(AttributeError):
        results.failure_rate = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        results.runs.not_started["budget"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        results.measures["queue_to_completion"] = Figures()  # type: ignore[index]


def test_an_older_file_loads_and_what_it_lacks_reads_as_not_there() -> None:
    older = _json(OLDER)
    results = load_results(older)
    assert results.runs.unknown is None  # written before unknown runs were counted
    assert results.limits.client_wait_s is None and results.limits.learned_rates is None
    assert results.limits.throttle_wait_s == 0.0
    assert results.server is None and results.stages is None and results.thresholds is None
    assert results.variants["spark"].measures is None  # slices had queue_to_completion alone
    assert results.variants["spark"].queue_to_completion.count == 20
    assert results.intervals[0].runs.in_flight is None and results.intervals[0].runs.open == 0
    assert results.run_records[0].clock_offset_s is None and results.run_records[0].grade is None
    # its run records and intervals write back with the fields they had (their CSV columns)
    assert [r.to_json() for r in results.run_records] == older["run_records"]
    assert [i.to_json() for i in results.intervals] == older["intervals"]


def test_the_calls_section_and_the_call_log_fields_of_run_records_load_typed_and_write_back() -> None:
    calls = {
        "log": "r.calls.jsonl",
        "fetched": 38,
        "failed": {"http_404": 1, "not_fetched": 1},
        "transcripts": 37,
        "transcripts_failed": {"timeout": 1},
    }
    document = _current_with("calls", calls)
    joined = {"call_duration_s": 55, "end_reason": "hangup", "product": "bolt", "billable_minutes": 1}
    document["run_records"][0] |= {**joined, "billing_total_cents": 16.5}
    results = load_results(document)
    assert results.calls is not None and results.calls.failed == {"http_404": 1, "not_fetched": 1}
    first = results.run_records[0]
    fields = (first.call_duration_s, first.end_reason, first.product, first.billing_total_cents)
    assert fields == (55, "hangup", "bolt", 16.5)
    assert results.run_records[1].call_duration_s is None  # not fetched: not there
    assert orjson.loads(orjson.dumps(results.to_json())) == document
    assert load_results(_json(CURRENT)).calls is None  # a run that fetched no call logs has no section
    with pytest.raises(ResultsError, match=r"^run_records\[0\]\.call_duration_s is \"55\", not a number\.$"):
        load_results(_current_with("run_records.0.call_duration_s", "55"))


def test_a_learned_rate_from_before_the_rates_per_kind_is_kept() -> None:
    results = load_results({"limits": {"learned_rate": 9.5}})
    assert (results.limits.learned_rate, results.limits.learned_rates) == (9.5, None)


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"schema": "stressor.results/1"},
        {"runs": {"planned": 3, "not_started": None}, "webhooks": None, "server": None, "stages": None},
        {"runs": None, "measures": None, "variants": None, "grades": None, "intervals": None},
    ],
)
def test_a_partial_document_loads_with_what_it_lacks_empty(document: dict[str, Any]) -> None:
    results = load_results(document)
    assert results.runs.completed is None and results.runs.settled == 0
    assert results.measures == {} and results.variants == {} and results.intervals == ()
    assert results.webhooks is None and results.failure_rate is None and results.interrupted is False
    assert results == load_results(json.loads(json.dumps(document)))


def _current_with(path: str, value: object) -> dict[str, Any]:
    """The current file with the field at ``path`` (dots, [index] for lists) set to ``value``."""
    document = copy.deepcopy(_json(CURRENT))
    *parents, last = path.split(".")
    node: Any = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("runs.completed", "32", 'runs.completed is "32", not a count (a whole number, 0 or more).'),
        ("runs.failed", -1, "runs.failed is -1, not a count (a whole number, 0 or more)."),
        ("runs.planned", 2.5, "runs.planned is 2.5, not a count (a whole number, 0 or more)."),
        ("runs.open", True, "runs.open is true, not a count (a whole number, 0 or more)."),
        ("failure_rate", "20%", 'failure_rate is "20%", not a number.'),
        ("elapsed_s", False, "elapsed_s is false, not a number."),
        ("interrupted", "no", 'interrupted is "no", not true or false.'),
        ("stop_reason", 3, "stop_reason is 3, not a string."),
        ("runs", [1, 2], "runs is a list, not an object."),
        ("intervals", {"start": 0}, "intervals is an object, not a list."),
        ("runs.not_started", {"budget": "3"}, 'runs.not_started.budget is "3", not a count'),
        ("requests.submit ok", None, 'requests["submit ok"] is null, not a count'),
        ("measures.queue_to_completion.p99", "fast", 'measures.queue_to_completion.p99 is "fast", not a number.'),
        ("measures.queue_to_completion.hdr", 12, "measures.queue_to_completion.hdr is 12, not a string."),
        ("variants.spark.outcomes", "all good", 'variants.spark.outcomes is "all good", not an object.'),
        ("scenarios.hours.grades.mean", [0.8], "scenarios.hours.grades.mean is a list, not a number."),
        ("limits.learned_rates.create", "fast", 'limits.learned_rates.create is "fast", not a number.'),
        ("webhooks.by_type", 5, "webhooks.by_type is 5, not an object."),
        ("server.clock_offset.offset_s", "+1s", 'server.clock_offset.offset_s is "+1s", not a number.'),
        ("stages.1.target.start", "3/s", 'stages[1].target.start is "3/s", not a number.'),
        ("intervals.2.runs.completed", "4", 'intervals[2].runs.completed is "4", not a count'),
        ("run_records.7.due_s", "0.5", 'run_records[7].due_s is "0.5", not a number.'),
        ("run_records.7", "tc_1", 'run_records[7] is "tc_1", not an object.'),
        ("thresholds.1", 5, "thresholds[1] is 5, not a string."),
        ("schema", "stressor.results/2", 'schema is "stressor.results/2", not "stressor.results/1".'),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_in_one_sentence_naming_it(path: str, value: object, message: str) -> None:
    with pytest.raises(ResultsError) as caught:
        load_results(_current_with(path, value))
    sentence = str(caught.value)
    assert sentence.startswith(message)
    assert sentence.endswith(".") and sentence.count(". ") == 0 and "\n" not in sentence


def test_a_name_that_is_not_a_word_is_quoted_in_the_sentence() -> None:
    document = {"scenarios": {"prompt 1 (hours)": {"outcomes": {"failed": "x"}}}}
    with pytest.raises(ResultsError, match=r'^scenarios\["prompt 1 \(hours\)"\]\.outcomes\.failed is "x"'):
        load_results(document)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400])
def test_a_number_a_float_cannot_hold_is_refused(value: object) -> None:
    with pytest.raises(ResultsError, match=r"^failure_rate is .*, not a number\.$"):
        load_results({"failure_rate": value})


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ResultsError, match=r"^the document is a list, not an object\.$"):
        load_results([1, 2])  # type: ignore[arg-type]


def test_a_value_shown_in_a_sentence_is_cut_short() -> None:
    with pytest.raises(ResultsError) as caught:
        load_results({"runs": {"planned": "x" * 500}})
    assert str(caught.value).startswith('runs.planned is "xxx') and len(str(caught.value)) < 120



def _paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every field of a JSON document (the first few items of each list)."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, item in node.items():
            found += _paths(item, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node[:3]):
            found += _paths(item, (*path, index))
    return found


def _named(path: tuple[str | int, ...]) -> str:
    """A path as the loader's sentences name it: ``run_records[7].due_s``, ``requests["submit ok"]``."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        elif key.isidentifier():
            text += f".{key}" if text else key
        else:
            text += f"[{json.dumps(key)}]"
    return text


FIELDS = _paths(_json(CURRENT))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_value_in_any_field_loads_or_is_refused_naming_it(path: tuple[str | int, ...], value: object) -> None:
    document = copy.deepcopy(_json(CURRENT))
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        load_results(document)
    except ResultsError as error:
        assert str(error).startswith(_named(path)), (path, str(error))
        assert str(error).endswith(".") and "\n" not in str(error)
