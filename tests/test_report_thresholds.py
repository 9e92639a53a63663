"""Thresholds: parsing every unit and operator, clear sentences for bad expressions, and verdicts."""

from __future__ import annotations

import pytest
from support.documents import results
from test_report_fixture import load_fixture

from stressor.thresholds import (
    Kind,
    Status,
    ThresholdError,
    abort_breaches,
    breached,
    evaluate,
    parse_threshold,
    render_verdicts,
    verdict,
)

# ------------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("queue_to_completion.p95 < 90s", 90.0),
        ("queue_to_completion.p95 < 250ms", 0.25),
        ("time_queued.p99 <= 500us", 0.0005),
        ("time_queued.p99 <= 500µs", 0.0005),
        ("queue_to_completion.max < 2m", 120.0),
        ("queue_to_completion.max < 1h", 3600.0),
        ("queue_to_completion.p99 < 1m30s", 90.0),
        ("queue_to_completion.p99 < 1.5s", 1.5),
        ("queue_to_completion.p99 < 90 s", 90.0),
        ("time_queued.max == 0", 0.0),
        ("failure_rate < 1%", 0.01),
        ("failure_rate < 0.5%", 0.005),
        ("failure_rate < 0.05", 0.05),
        ("grade.mean >= 0.8", 0.8),
        ("grade.mean >= 80%", 0.8),
        ("not_started == 0", 0.0),
        ("requests_per_ended_run < 3", 3.0),
        ("achieved_runs_per_s >= 20", 20.0),
        ("achieved_runs_per_s >= 20/s", 20.0),
        ("achieved_runs_per_s >= 300/min", 5.0),
        ("estimated_cost_cents <= 2000", 2000.0),
    ],
)
def test_limits_are_read_in_the_documents_units(text: str, limit: float) -> None:
    assert parse_threshold(text).limit == pytest.approx(limit)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_every_operator_parses_with_or_without_spaces(op: str) -> None:
    assert parse_threshold(f"failed {op} 3").op == op
    assert parse_threshold(f"failed{op}3").op == op


@pytest.mark.parametrize(
    ("text", "name", "kind"),
    [
        ("queue_to_completion.p95 < 90s", "queue_to_completion.p95", Kind.DURATION),
        ("queue_to_completion.p99.9 < 90s", "queue_to_completion.p99_9", Kind.DURATION),
        ("queue_to_completion.count > 10", "queue_to_completion.count", Kind.COUNT),
        ("failure_rate < 1%", "failure_rate", Kind.SHARE),
        ("errored == 0", "errored", Kind.COUNT),
        ("rejected == 0", "rejected", Kind.COUNT),
        ("not_started.budget == 0", "not_started.budget", Kind.COUNT),
        ("grade.p10 >= 0.5", "grade.p10", Kind.SCORE),
        ("grade.below_threshold <= 2", "grade.below_threshold", Kind.COUNT),
        ("dispatch_lag.p99 < 2ms", "dispatch_lag.p99", Kind.DURATION),
        ("webhooks.bad_signature == 0", "webhooks.bad_signature", Kind.COUNT),
        ("limits.server_pause < 1s", "limits.server_pause", Kind.DURATION),
        ("limits.retries.http_429 < 5", "limits.retries.http_429", Kind.COUNT),
        ("errors.timeout == 0", "errors.timeout", Kind.COUNT),
    ],
)
def test_measure_names_resolve_to_a_kind(text: str, name: str, kind: Kind) -> None:
    threshold = parse_threshold(text)
    assert (threshold.path.name, threshold.path.kind, threshold.path.scope) == (name, kind, None)


def test_per_variant_and_per_scenario_paths() -> None:
    variant = parse_threshold("variant[spark].queue_to_completion.p99 < 60s")
    assert (variant.path.scope, variant.path.scope_name, variant.path.name) == (
        "variant",
        "spark",
        "queue_to_completion.p99",
    )
    assert variant.path.text == "variant[spark].queue_to_completion.p99"
    scenario = parse_threshold("scenario[prompt-1 (hours)].failure_rate < 5%")
    assert (scenario.path.scope_name, scenario.path.kind) == ("prompt-1 (hours)", Kind.SHARE)
    assert parse_threshold("scenario[refund].grade.mean >= 0.8").path.kind is Kind.SCORE


def test_abort_flag_and_the_text_kept_for_reports() -> None:
    threshold = parse_threshold("  failure_rate   <  5%   abort ")
    assert threshold.abort is True
    assert threshold.text == "failure_rate < 5% abort"
    assert threshold.limit_text == "5%"
    assert parse_threshold("failure_rate < 5%").abort is False


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("foo < 1", "unknown measure 'foo'; known: failure_rate, planned"),
        ("failur_rate < 1%", "did you mean failure_rate?"),
        ("queue_to_completion.p42 < 1s", "unknown statistic 'p42' of queue_to_completion; known: min, mean"),
        ("grade.avg > 0.5", "unknown statistic 'avg' of grade"),
        ("webhooks.lost == 0", "unknown webhooks figure 'lost'"),
        ("queue_to_completion.p95 < 5%", "a percent (5%) does not fit queue_to_completion.p95, a duration"),
        ("failed < 5%", "a percent (5%) does not fit failed, a count; use failure_rate for a share of runs"),
        ("failed < 3ms", "a duration (3ms) does not fit failed, a count"),
        ("failure_rate < 5s", "a duration (5s) does not fit failure_rate, a share"),
        ("failed < 5/s", "a rate (5/s) does not fit failed, a count"),
        ("queue_to_completion.p95 < 90", "is a duration: give the limit a unit, like 90s or 90ms"),
        ("failure_rate < 5", "failure_rate is a share, so a value without % must be a fraction below 1 (0.05 means"),
        ("grade.mean > 80", "grade.mean is a score, so a value without % must be a fraction below 1"),
        ("queue_to_completion.p95 < 90 parsecs", "unknown unit 'parsecs'"),
        ("queue_to_completion.p95 < 5min", "'5min' is not a duration like 250ms, 90s or 1m30s"),
        ("failure_rate =< 5%", "unknown operator '=<'; use one of <, <=, >, >=, ==, !="),
        ("failure_rate = 5%", "unknown operator '='"),
        ("failure_rate", "no comparison; use one of <, <="),
        ("failure_rate 5%", "no comparison before '5%'"),
        ("failure_rate <", "no value after '<'"),
        ("failure_rate < abort", "no value after '<'"),
        ("failure_rate < 5% abrt", "unexpected 'abrt' after the value (only 'abort' may follow it)"),
        ("failure_rate < lots", "'lots' is not a number with an optional unit"),
        ("", "it is empty"),
        ("variant[].failed == 0", "variant[] names no variant"),
        ("variant[spark].not_started == 0", "not_started is not available per variant; per variant: failure_rate"),
        ("scenario[refund].start_lateness.p99 < 1s", "start_lateness.p99 is not available per scenario"),
    ],
)
def test_bad_expressions_fail_with_one_sentence_naming_them(text: str, fragment: str) -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(text)
    message = str(caught.value)
    assert message.startswith(f"threshold {text.strip()!r}: ")
    assert fragment in message
    assert message.endswith(".") and ". " not in message  # one sentence
    assert isinstance(caught.value, ValueError)


# ---------------------------------------------------------------------------------------------- evaluation


def _doc() -> dict:
    doc = load_fixture()
    doc["measures"]["queue_to_completion"]["p95"] = 95.2
    doc["runs"].update(completed=90, failed=8, errored=2, rejected=0, open=1)
    doc["runs"]["not_started"] = {"budget": 3, "breaker": 2}
    doc["failure_rate"] = 0.1
    doc["grades"]["mean"] = 0.74
    return doc


def test_a_failed_threshold_says_the_value_and_by_how_much_it_missed() -> None:
    result = verdict(parse_threshold("queue_to_completion.p95 < 90s"), results(_doc()))
    assert result.status is Status.FAILED and not result.passed
    assert result.actual == 95.2
    assert result.detail == "was 1m35.2s, 5.78% over 90s"
    assert result.sentence == "queue_to_completion.p95 < 90s failed: was 1m35.2s, 5.78% over 90s"


@pytest.mark.parametrize(
    ("text", "status", "detail"),
    [
        ("queue_to_completion.p95 < 2m", Status.PASSED, "was 1m35.2s"),
        ("queue_to_completion.p95 <= 95.2s", Status.PASSED, "was 1m35.2s"),
        ("queue_to_completion.p95 > 95.2s", Status.FAILED, "was 1m35.2s, at the limit 95.2s, which > excludes"),
        ("failure_rate < 5%", Status.FAILED, "was 10%, 5 points over 5%"),
        ("failure_rate >= 10%", Status.PASSED, "was 10%"),
        ("grade.mean >= 0.8", Status.FAILED, "was 0.74, 7.5% under 0.8"),
        ("errored == 0", Status.FAILED, "was 2, expected 0"),
        ("errored != 2", Status.FAILED, "was 2, which it must not be"),
        ("errored != 0", Status.PASSED, "was 2"),
        ("not_started == 0", Status.FAILED, "was 5, expected 0"),
        ("not_started.budget <= 3", Status.PASSED, "was 3"),
        ("not_started.fatal == 0", Status.PASSED, "was 0"),
        ("open < 1", Status.FAILED, "was 1, at the limit 1, which < excludes"),
        ("open <= 0", Status.FAILED, "was 1, 1 over 0"),
        ("rejected == 0", Status.PASSED, "was 0"),
        ("requests_per_ended_run < 3", Status.PASSED, "was 0.25"),
        ("variant[spark].failure_rate < 20%", Status.FAILED, "was 25%, 5 points over 20%"),
        ("scenario[refund].failure_rate <= 10%", Status.PASSED, "was 10%"),
        ("scenario[hours].failed == 6", Status.PASSED, "was 6"),
        ("variant[bolt].queue_to_completion.p99 < 60s", Status.PASSED, "was 82.6ms"),
        ("webhooks.bad_signature == 0", Status.PASSED, "was 0"),
    ],
)
def test_verdicts(text: str, status: Status, detail: str) -> None:
    result = verdict(parse_threshold(text), results(_doc()))
    assert (result.status, result.detail) == (status, detail)


def test_a_missing_measure_fails_with_a_note_so_a_gate_never_passes_on_no_data() -> None:
    doc = _doc()
    doc["measures"]["queue_to_completion"].update(count=0, p95=None)
    doc["failure_rate"] = None
    doc["webhooks"] = None
    verdicts = evaluate(
        [
            parse_threshold("queue_to_completion.p95 < 90s"),
            parse_threshold("failure_rate < 1%"),
            parse_threshold("variant[storm].failed == 0"),
            parse_threshold("webhooks.bad_signature == 0"),
        ],
        results(doc),
    )
    assert [v.status for v in verdicts] == [Status.MISSING] * 4
    assert [v.note for v in verdicts] == [
        "no run ended",
        "no run settled (completed, failed, errored or rejected)",
        "no variant 'storm' in the results (variants: bolt, spark)",
        "the run did not use webhooks",
    ]
    assert verdicts[0].sentence == (
        "queue_to_completion.p95 < 90s failed: no data, no run ended; a gate never passes on no data"
    )
    assert breached(verdicts)


def test_a_wildcard_threshold_gives_one_verdict_per_slice() -> None:
    verdicts = evaluate([parse_threshold("variant[*].failure_rate < 20% abort")], results(_doc()))
    assert [(v.threshold.text, v.status) for v in verdicts] == [
        ("variant[bolt].failure_rate < 20% abort", Status.PASSED),
        ("variant[spark].failure_rate < 20% abort", Status.FAILED),
    ]
    doc = _doc()
    doc["scenarios"] = {}
    (only,) = evaluate([parse_threshold("scenario[*].failed == 0")], results(doc))
    assert only.status is Status.MISSING and only.note == "the results have no scenarios"
    breaches = abort_breaches([parse_threshold("variant[*].failed < 4 abort")], results(_doc()))
    assert [v.threshold.text for v in breaches] == [
        "variant[spark].failed < 4 abort"
    ]


def test_breached_only_when_something_did_not_pass() -> None:
    doc = results(_doc())
    assert not breached(evaluate([parse_threshold("errored <= 2"), parse_threshold("failure_rate < 50%")], doc))
    assert breached(evaluate([parse_threshold("errored <= 2"), parse_threshold("errored == 0")], doc))
    assert not breached([])


def test_abort_thresholds_on_a_partial_document_stop_only_on_a_real_breach() -> None:
    partial = {"runs": {"completed": 10, "failed": 5, "errored": 0, "rejected": 0}, "failure_rate": 1 / 3}
    thresholds = [
        parse_threshold("failure_rate < 5% abort"),
        parse_threshold("errored == 0 abort"),
        parse_threshold("queue_to_completion.p99 < 1ms abort"),  # no measures yet: never a reason to stop
        parse_threshold("failed == 0"),  # breached, but not an abort threshold
    ]
    breaches = abort_breaches(thresholds, results(partial))
    assert [v.threshold.text for v in breaches] == ["failure_rate < 5% abort"]
    assert abort_breaches(thresholds, results({})) == []


def test_rendering_gives_one_line_per_threshold_under_a_count() -> None:
    doc = results(_doc())
    text = render_verdicts(
        evaluate(
            [
                parse_threshold("failure_rate < 25%"),
                parse_threshold("queue_to_completion.p95 < 90s"),
                parse_threshold("variant[none].failed == 0"),
            ],
            doc,
        )
    )
    lines = text.splitlines()
    assert lines[0] == "thresholds: 1 of 3 passed"
    assert lines[1].split() == ["pass", "failure_rate", "<", "25%", "was", "10%"]
    assert lines[2].startswith("  FAIL ") and lines[2].endswith("was 1m35.2s, 5.78% over 90s")
    assert lines[3].startswith("  NO DATA ") and "no variant 'none'" in lines[3]
    assert render_verdicts([]) == ""
