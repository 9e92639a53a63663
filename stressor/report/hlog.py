"""The HDR interval log (``.hlog``): one compressed histogram of queue-to-completion per interval.

Written in HdrHistogram's log format, so every port's log reader (Java ``HistogramLogReader``,
``hdrh.log.HistogramLogReader``, the HdrHistogram plotting tools) can read it back. Values are microseconds;
the max column is in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

from stressor.intervals import Interval


def write_hlog(path: Path, intervals: Iterable[Interval], start_wall_s: float) -> int:
    """Write the intervals that saw runs end; return how many interval histograms were written."""
    written = 0
    with path.open("w", encoding="ascii") as out:
        writer = HistogramLogWriter(out)
        # hdrh's own output_start_time() raises in 0.10.8: the comment is written here instead.
        started = datetime.fromtimestamp(start_wall_s, tz=UTC).isoformat()
        out.write(f"#[StartTime: {start_wall_s:.3f} (seconds since epoch), {started}]\n")
        writer.output_log_format_version()
        writer.output_base_time(start_wall_s * 1000)
        writer.output_comment("stressor queue_to_completion, values in microseconds")
        writer.output_legend()
        for interval in intervals:
            if interval.histogram is None:
                continue
            histogram = HdrHistogram.decode(interval.histogram)
            # hdrh treats a start of 0 as "use the histogram's own stamp": nudge it off zero.
            writer.output_interval_histogram(
                histogram,
                start_time_stamp_sec=interval.start_s or 1e-9,
                end_time_stamp_sec=interval.end_s,
                max_value_unit_ratio=1000.0,
            )
            written += 1
    return written
