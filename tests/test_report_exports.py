"""Exports: .hgrm distributions in milliseconds that match the histograms, CSV of runs and intervals."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from support.documents import results
from test_report_fixture import load_fixture

from stressor.metrics import LatencyRecorder
from stressor.report.exports import hgrm_text, intervals_csv, rows_csv, run_records_csv, write_csv, write_hgrm

_LINE = re.compile(r"^\s*([\d.]+)\s+([\d.]+)\s+(\d+)(?:\s+([\d.]+|inf))?\s*$")


def _body(text: str) -> list[tuple[float, float, int]]:
    rows = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            rows.append((float(match[1]), float(match[2]), int(match[3])))
    return rows


def test_hgrm_values_are_milliseconds_and_match_the_histogram() -> None:
    encoded = load_fixture()["measures"]["queue_to_completion"]["hdr"]
    histogram = LatencyRecorder.decode(encoded)
    text = hgrm_text(encoded)
    assert text.splitlines()[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    rows = _body(text)
    assert rows[-1][1:] == (1.0, histogram.get_total_count())
    recorded = [(step.value_iterated_to, step.count_at_value_iterated_to) for step in histogram.get_recorded_iterator()]
    for value_ms, _, count in rows:
        # Each line is the upper edge of a bucket holding values (in µs), and the count of values up to it.
        value_us = round(value_ms * 1000)
        assert histogram.get_count_at_value(value_us) > 0
        assert count == sum(n for v, n in recorded if v <= value_us)
    assert rows[-1][0] == pytest.approx(histogram.get_max_value() / 1000, abs=0.001)
    # The fixture's runs took tens of milliseconds: a unit slip would be off by 1000.
    assert 10 < rows[len(rows) // 2][0] < 1000


def test_hgrm_footer_is_in_milliseconds_including_the_standard_deviation() -> None:
    encoded = load_fixture()["measures"]["queue_to_completion"]["hdr"]
    histogram = LatencyRecorder.decode(encoded)
    footer = dict(re.findall(r"(\w+)\s*=\s*([\d.]+)", "\n".join(hgrm_text(encoded).splitlines()[-3:])))
    assert float(footer["Mean"]) == pytest.approx(histogram.get_mean_value() / 1000, abs=0.001)
    assert float(footer["StdDeviation"]) == pytest.approx(histogram.get_stddev() / 1000, abs=0.001)
    assert float(footer["Max"]) == pytest.approx(histogram.get_max_value() / 1000, abs=0.001)
    assert 0 < float(footer["StdDeviation"]) < float(footer["Max"])


def test_one_hgrm_file_per_measure_with_samples(tmp_path: Path) -> None:
    doc = load_fixture()
    doc["measures"]["time_queued"].update(count=0, hdr=None)
    written = write_hgrm(results(doc), tmp_path / "hgrm")
    names = sorted(p.name for p in written)
    assert names == sorted(f"{m}.hgrm" for m in doc["measures"] if m != "time_queued")
    assert all(p.read_text(encoding="ascii").rstrip().endswith("]") for p in written)


def test_runs_csv_has_one_row_per_run_with_every_field() -> None:
    doc = load_fixture()
    rows = list(csv.DictReader(io.StringIO(run_records_csv(results(doc)))))
    assert len(rows) == len(doc["run_records"])
    assert list(rows[0]) == list(doc["run_records"][0])
    for row, record in zip(rows, doc["run_records"], strict=True):
        assert row["run_id"] == record["run_id"]
        assert row["outcome"] == record["outcome"]
        assert float(row["due_at"]) == record["due_at"]  # every digit kept
        assert row["grade"] == ("" if record["grade"] is None else repr(record["grade"]))


def test_intervals_csv_is_flattened() -> None:
    doc = load_fixture()
    rows = list(csv.DictReader(io.StringIO(intervals_csv(results(doc)))))
    assert len(rows) == len(doc["intervals"])
    assert {"start", "end", "runs.queued", "runs.completed", "requests_per_s", "queue_to_completion.p99"} <= set(
        rows[0]
    )
    assert int(rows[0]["runs.completed"]) == doc["intervals"][0]["runs"]["completed"]


def test_csv_columns_are_the_union_of_keys_and_values_are_plain() -> None:
    text = rows_csv([{"a": 1, "b": {"c": None}}, {"a": True, "d": [1, 2], "e": 'say "hi", then'}])
    assert text.splitlines() == ["a,b.c,d,e", "1,,,", 'true,,1;2,"say ""hi"", then"']


def test_write_csv_writes_both_files(tmp_path: Path) -> None:
    written = write_csv(results(load_fixture()), tmp_path / "csv")
    assert [p.name for p in written] == ["runs.csv", "intervals.csv"]
    assert all(p.stat().st_size > 0 for p in written)
