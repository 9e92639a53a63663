"""Fuzzing thresholds: any text given to ``--threshold`` (or a profile's ``thresholds``) parses into a Threshold
or is refused with a ThresholdError, never another exception; a parsed one can be evaluated against any
results document the loader accepts without raising (and the loader refuses the others in one sentence)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stressor.document import ResultsError, load_results
from stressor.thresholds import (
    Threshold,
    ThresholdError,
    abort_breaches,
    evaluate,
    parse_threshold,
    render_verdicts,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# fmt: off
PATHS = st.sampled_from([
    "failure_rate", "planned", "completed", "not_started", "not_started.budget", "queue_to_completion.p95",
    "queue_to_completion.p99.9", "queue_to_completion.count", "time_queued.max", "grade.mean", "grade.count",
    "requests_per_ended_run", "offered_runs_per_s", "dispatch_lag.p99", "webhooks.bad_signature",
    "webhooks.received", "limits.throttle_wait", "limits.retries.http_429", "errors", "errors.timeout", "requests",
    "estimated_cost_cents", "elapsed", "variant[default].failure_rate", "variant[*].queue_to_completion.p50",
    "scenario[a b].grade.mean", "scenario[].completed", "variant[x", "grade.", ".p95", "p95", "queue_to_completion.",
    "queue_to_completion.p1000", "x" * 300,
])
OPERATORS = st.sampled_from(["<", "<=", ">", ">=", "==", "!=", "=", "=<", "<<", "~", "^", "!", ""])
VALUES = st.sampled_from([
    "0", "1", "-1", "0.5", "50%", "150%", "-5%", "%", "90s", "1m30s", "250ms", "1h", "2us", "1e309", "1e-400",
    "1e309s", "nan", "inf", "-inf", "20/s", "300/min", "0/s", "1e400/min", "5/fortnight", "9" * 400, "s", "ms",
    "1.", ".5", "+.5e3", "1e", "12abc", "١٢", "²",
])
# fmt: on
PIECE = PATHS | OPERATORS | VALUES | st.sampled_from([" ", "abort", "ABORT", "\t", "\n"]) | st.text(max_size=8)


@st.composite
def threshold_like(draw: st.DrawFn) -> str:
    """Mostly ``<path> <op> <value> [abort]`` with pieces swapped, missing, doubled or random."""
    pieces = [draw(PATHS), draw(OPERATORS), draw(VALUES)]
    if draw(st.booleans()):
        pieces.append("abort")
    if draw(st.booleans()):  # half of them mangled, half well formed (to reach evaluation too)
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(pieces)))
            pieces.insert(at, draw(PIECE))
        if draw(st.booleans()):
            pieces.pop(draw(st.integers(0, len(pieces) - 1)))
    separator = draw(st.sampled_from([" ", "", "  ", "\t"]))
    return separator.join(pieces)


def parsed_or_refused(text: str) -> Threshold | None:
    try:
        threshold = parse_threshold(text)
    except ThresholdError as error:
        assert str(error).startswith("threshold ")  # one sentence naming the expression
        return None
    assert isinstance(threshold, Threshold)
    return threshold


@FUZZ
@given(text=threshold_like())
@example(text="queue_to_completion.p95 < " + "9" * 400 + "s")
@example(text="failure_rate < 1e309%")
@example(text="offered_runs_per_s > 1e400/min")
@example(text="elapsed < 1e309s abort")
@example(text="variant[].completed > 0")
def test_threshold_like_text_is_a_threshold_or_a_threshold_error(text: str) -> None:
    parsed_or_refused(text)


@FUZZ
@given(text=st.text(max_size=60))
def test_any_text_is_a_threshold_or_a_threshold_error(text: str) -> None:
    parsed_or_refused(text)


# results documents from the empty one to odd ones: sections missing, of the wrong type, values of any kind
LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5)
DOCUMENT_VALUES = st.recursive(
    LEAF, lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
)
DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "failure_rate": LEAF,
        "runs": st.dictionaries(st.sampled_from(["planned", "completed", "failed", "not_started"]), DOCUMENT_VALUES),
        "measures": st.dictionaries(
            st.sampled_from(["queue_to_completion", "time_queued"]),
            st.dictionaries(st.sampled_from(["p95", "p50", "count", "max"]), LEAF) | DOCUMENT_VALUES,
        ),
        "grades": DOCUMENT_VALUES,
        "load": DOCUMENT_VALUES,
        "webhooks": DOCUMENT_VALUES,
        "limits": DOCUMENT_VALUES,
        "errors": DOCUMENT_VALUES,
        "requests": DOCUMENT_VALUES,
        "variants": st.dictionaries(st.sampled_from(["default", "x"]), DOCUMENT_VALUES),
        "scenarios": DOCUMENT_VALUES,
        "elapsed_s": LEAF,
    },
)


# and documents of the right types with any section missing, null or empty
COUNT = st.none() | st.integers(0, 10**6)
NUMBER = st.none() | st.integers(-5, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
COUNTS = st.none() | st.dictionaries(st.text(max_size=5), st.integers(0, 100), max_size=3)
STATS = ("p95", "p50", "max", "min", "mean")
FIGURES = st.fixed_dictionaries({}, optional={"count": COUNT, **{k: NUMBER for k in STATS}})
OUTCOME_COUNTS = st.fixed_dictionaries({}, optional={k: COUNT for k in ("completed", "failed", "errored", "open")})
SLICE = st.fixed_dictionaries(
    {}, optional={"outcomes": OUTCOME_COUNTS, "queue_to_completion": FIGURES, "grades": FIGURES}
)
TYPED_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "failure_rate": NUMBER,
        "runs": st.fixed_dictionaries(
            {}, optional={"planned": COUNT, "completed": COUNT, "failed": COUNT, "not_started": COUNTS}
        ),
        "measures": st.dictionaries(st.sampled_from(["queue_to_completion", "time_queued"]), FIGURES),
        "grades": FIGURES,
        "load": st.fixed_dictionaries({}, optional={"offered_runs_per_s": NUMBER, "requests_per_ended_run": NUMBER}),
        "webhooks": st.none() | st.fixed_dictionaries({}, optional={"received": COUNT, "bad_signature": COUNTS}),
        "limits": st.fixed_dictionaries({}, optional={"retries": COUNTS, "throttle_wait_s": NUMBER}),
        "errors": COUNTS,
        "requests": COUNTS,
        "variants": st.dictionaries(st.sampled_from(["default", "x"]), SLICE),
        "scenarios": st.none() | st.dictionaries(st.text(max_size=3), SLICE, max_size=2),
        "elapsed_s": NUMBER,
    },
)


@FUZZ
@given(text=threshold_like(), document=DOCUMENTS | TYPED_DOCUMENTS)
def test_a_parsed_threshold_evaluates_against_any_document(text: str, document: dict[str, Any]) -> None:
    threshold = parsed_or_refused(text)
    if threshold is None:
        return
    try:
        results = load_results(document)
    except ResultsError as error:
        assert str(error).endswith(".") and "\n" not in str(error)  # refused in one sentence, naming the field
        return
    verdicts = evaluate([threshold], results)
    render_verdicts(verdicts)
    abort_breaches([threshold], results)
