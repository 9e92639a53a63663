"""`dropped` (the issue's own example) and how large misses read."""

from __future__ import annotations

import pytest
from support.documents import results

from stressor.document import Results
from stressor.thresholds import Status, ThresholdError, parse_threshold, verdict


def _doc(not_started: dict[str, int]) -> Results:
    return results(
        {
            "runs": {"planned": 10, "submitted": 10, "completed": 10, "not_started": not_started},
            "measures": {"queue_to_completion": {"count": 10, "p99": 0.125, "p50": 0.05}},
        }
    )


@pytest.mark.parametrize(
    ("text", "limit"),
    [("dropped == 0", 0.0), ("dropped < 3", 3.0), ("dropped.threshold == 0", 0.0), ("dropped.budget<=2", 2.0)],
)
def test_dropped_parses_as_the_runs_that_never_started(text: str, limit: float) -> None:
    threshold = parse_threshold(text)
    assert threshold.limit == limit
    assert threshold.path.name.startswith("dropped")


def test_dropped_with_a_bad_limit_is_one_sentence() -> None:
    with pytest.raises(ThresholdError, match=r"^threshold 'dropped == 5%': a percent \(5%\) does not fit dropped"):
        parse_threshold("dropped == 5%")


@pytest.mark.parametrize(
    ("text", "not_started", "status", "detail"),
    [
        ("dropped == 0", {}, Status.PASSED, "was 0"),
        ("dropped == 0", {"budget": 2, "threshold": 3}, Status.FAILED, "was 5, expected 0"),
        ("dropped.threshold == 0", {"budget": 2, "threshold": 3}, Status.FAILED, "was 3, expected 0"),
        ("dropped.fatal == 0", {"budget": 2}, Status.PASSED, "was 0"),
        ("dropped < 2", {"interrupted": 7}, Status.FAILED, "was 7, 5 over 2"),
    ],
)
def test_dropped_reads_runs_not_started_like_not_started(
    text: str, not_started: dict[str, int], status: Status, detail: str
) -> None:
    result = verdict(parse_threshold(text), _doc(not_started))
    assert (result.status, result.detail) == (status, detail)
    twin = verdict(parse_threshold(text.replace("dropped", "not_started")), _doc(not_started))
    assert (twin.status, twin.actual) == (result.status, result.actual)


def test_dropped_without_the_section_fails_for_no_data() -> None:
    result = verdict(parse_threshold("dropped == 0"), results({"runs": {}}))
    assert result.status is Status.MISSING


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("queue_to_completion.p99 < 10ms", "was 125ms, 12.5x the limit 10ms"),
        ("queue_to_completion.p99 < 50ms", "was 125ms, 2.5x the limit 50ms"),
        ("queue_to_completion.p99 < 100ms", "was 125ms, 25% over 100ms"),
        ("queue_to_completion.p50 > 1s", "was 50ms, 95% under 1s"),
    ],
)
def test_a_large_miss_reads_as_a_factor_not_in_exponent_notation(text: str, detail: str) -> None:
    result = verdict(parse_threshold(text), _doc({}))
    assert result.detail == detail
    assert "e+" not in result.sentence
