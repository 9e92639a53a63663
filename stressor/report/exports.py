"""Files for other tools: ``.hgrm`` percentile distributions of the histograms, CSV of runs and intervals.

The histograms in a results document are in microseconds; the ``.hgrm`` files print milliseconds, the unit
HdrHistogram's plotter (and most readers) expect. hdrh's ``output_percentile_distribution`` writes the body;
its footer prints the standard deviation unscaled (in µs while the rest is in ms), so that line is rewritten.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

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


def hgrm_files(document: Mapping[str, Any]) -> dict[str, str]:
    """``{"queue_to_completion.hgrm": text, ...}``: one per measure that has samples."""
    files = {}
    measures = document.get("measures")
    if not isinstance(measures, Mapping):
        return files
    for name, figures in measures.items():
        encoded = figures.get("hdr") if isinstance(figures, Mapping) else None
        if isinstance(encoded, str) and encoded:
            files[f"{name}.hgrm"] = hgrm_text(encoded)
    return files


def write_hgrm(document: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write one ``<measure>.hgrm`` per measure with samples into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in hgrm_files(document).items():
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


def _records(document: Mapping[str, Any], key: str) -> Sequence[Mapping[str, Any]]:
    rows = document.get(key)
    return [row for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []


def run_records_csv(document: Mapping[str, Any]) -> str:
    """One row per run, every field of ``run_records``."""
    return rows_csv(_records(document, "run_records"))


def intervals_csv(document: Mapping[str, Any]) -> str:
    """One row per interval, nested figures flattened (``runs.queued``, ``queue_to_completion.p99``...)."""
    return rows_csv(_records(document, "intervals"))


def write_csv(document: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write ``runs.csv`` and ``intervals.csv`` into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("runs.csv", run_records_csv(document)), ("intervals.csv", intervals_csv(document))):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
