"""Files for other tools: ``.hgrm`` percentile distributions of the histograms, CSV of runs and intervals.

The histograms in a results document are in microseconds; the ``.hgrm`` files print milliseconds, the unit
HdrHistogram's plotter (and most readers) expect. hdrh's ``output_percentile_distribution`` writes the body;
its footer prints the standard deviation unscaled (in µs while the rest is in ms), so that line is rewritten.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from stressor.document import Results
from stressor.metrics import LatencyRecorder

US_PER_MS = 1000.0
TICKS_PER_HALF_DISTANCE = 5
_FOOTER_STDDEV = re.compile(
    r"^(?P<head>#\[Mean\s*=\s*[-\d.]+, StdDeviation\s*=)\s*(?P<stddev>[-\d.]+)\]$", re.MULTILINE
)


def hgrm_text(encoded: str, *, ticks_per_half_distance: int = TICKS_PER_HALF_DISTANCE) -> str:
    """The percentile distribution of an encoded µs histogram, values in milliseconds (HdrHistogram's format)."""
    histogram = LatencyRecorder.decode(encoded)
    return histogram_hgrm(histogram, ticks_per_half_distance=ticks_per_half_distance)


def histogram_hgrm(histogram: HdrHistogram, *, ticks_per_half_distance: int = TICKS_PER_HALF_DISTANCE) -> str:
    """The percentile distribution of a µs histogram, values in milliseconds."""
    out = io.BytesIO()
    histogram.output_percentile_distribution(out, US_PER_MS, ticks_per_half_distance)
    text = out.getvalue().decode("ascii")
    digits = histogram.significant_figures

    def rescale(match: re.Match[str]) -> str:
        # hdrh scales the mean but prints the standard deviation in the histogram's own unit (µs).
        stddev_ms = float(match["stddev"]) / US_PER_MS
        return f"{match['head']} {stddev_ms:12.{digits}f}]"

    return _FOOTER_STDDEV.sub(rescale, text, count=1)


def hgrm_files(results: Results) -> dict[str, str]:
    """``{"queue_to_completion.hgrm": text, ...}``: one per measure that has samples."""
    return {f"{name}.hgrm": hgrm_text(figures.hdr) for name, figures in results.measures.items() if figures.hdr}


def write_hgrm(results: Results, directory: Path) -> list[Path]:
    """Write one ``<measure>.hgrm`` per measure with samples into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in hgrm_files(results).items():
        path = directory / name
        path.write_text(text, encoding="ascii")
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------------------- CSV


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted columns: ``{"runs": {"queued": 1}}`` -> ``{"runs.queued": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # every digit the document has
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return value


def rows_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV of flattened records; the columns are every key seen, in the order first seen."""
    flat = [_flatten(row) for row in rows]
    columns: dict[str, None] = {}
    for row in flat:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in flat:
        writer.writerow(_cell(row.get(column)) for column in columns)
    return out.getvalue()


def run_records_csv(results: Results) -> str:
    """One row per run, every field of ``run_records`` (as the file has them)."""
    return rows_csv(record.to_json() for record in results.run_records)


def intervals_csv(results: Results) -> str:
    """One row per interval, nested figures flattened (``runs.queued``, ``queue_to_completion.p99``...)."""
    return rows_csv(interval.to_json() for interval in results.intervals)


def write_csv(results: Results, directory: Path) -> list[Path]:
    """Write ``runs.csv`` and ``intervals.csv`` into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("runs.csv", run_records_csv(results)), ("intervals.csv", intervals_csv(results))):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
