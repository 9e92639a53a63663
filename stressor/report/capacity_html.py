"""The capacity search as one self-contained HTML page (``stressor capacity --html``). Pure.

The load sustained in a sentence, the knee marked on every chart, achieved against offered load, latency and
failures per step with the SLO bounds, and every measurement in a table. What it shows: docs/reports.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stressor.report.charts import Axis, Guide, Series, line_chart
from stressor.report.html import (
    PERCENTILE_COLORS,
    _badge,
    _duration_axis,
    _e,
    _Raw,
    _seconds,
    _share,
    _table,
    page,
)
from stressor.thresholds import Threshold
from stressor.units import format_rate

Step = Mapping[str, Any]
_SET_ASIDE = "#718096"


def _decides(step: Step) -> bool:
    """Whether the level's verdict rests on this measurement (rows written without ``decides`` all do)."""
    return bool(step.get("decides", True))


def _knee(steps: Sequence[Step]) -> tuple[Step | None, Step | None]:
    """The highest level held below the lowest broken, and that lowest broken (each None when there is none),
    by the measurements that decide their levels."""
    decided = [step for step in steps if _decides(step)]
    broken = [step for step in decided if not step.get("held")]
    first_broke = min(broken, key=lambda step: float(step["level"]), default=None)
    ceiling = float(first_broke["level"]) if first_broke is not None else float("inf")
    held = [step for step in decided if step.get("held") and float(step["level"]) < ceiling]
    return max(held, key=lambda step: float(step["level"]), default=None), first_broke


def _knee_sentence(held: Step | None, broke: Step | None, load_label: str) -> str:
    if broke is None:
        return (
            f"No step broke the SLO: the last held at {float(held['level']):g} {load_label}."
            if held is not None
            else "No step ran."
        )
    if held is None:
        return f"Knee: the first step, {float(broke['level']):g} {load_label}, already broke the SLO."
    return f"Knee: held at {float(held['level']):g}, broke at {float(broke['level']):g} {load_label}."


def _runs_rate(per_s: float) -> str:
    """``19 runs/s``, ``1.2 runs/s``, as the search's sentence says it (``conclude.about``); per minute below one a
    second."""
    if 0 < per_s < 1:
        return f"{per_s * 60:.2g} runs/min"
    return f"{per_s:.0f} runs/s" if per_s >= 10 else f"{per_s:.2g} runs/s"


def _sustained(held: Step | None, load_label: str, slos: Sequence[Threshold]) -> str:
    """The load sustained in a sentence, when the caller has none of its own."""
    if held is None:
        return "No level held the SLO: no load is sustained."
    within = " and ".join(t.text for t in slos)
    rate = held.get("runs_per_s", held.get("completed_per_s"))
    about = f"about {_runs_rate(float(rate))}" if rate is not None else "the load"
    return f"Sustains {about} ({float(held['level']):g} {load_label})" + (f" with {within}." if within else ".")


def _slo_bounds(slos: Sequence[Threshold], prefix: str) -> list[Guide]:
    """The SLOs on the whole run's measure ``prefix`` as horizontal bounds (scoped ones are per slice: not one
    line to draw)."""
    return [
        Guide("slo", f"SLO {t.text}", "#6b46c1", y=t.limit)
        for t in slos
        if t.path.scope is None and (t.path.name == prefix or t.path.name.startswith(prefix + "."))
    ]


def _points(steps: Sequence[Step], key: str) -> tuple[tuple[float, float | None], ...]:
    return tuple((float(s["level"]), s.get(key)) for s in steps)


def _what(step: Step) -> str:
    """A measurement's kind: climb, narrow or re-check."""
    return "re-check" if step.get("recheck") else str(step.get("phase") or "climb")


def _verdict(step: Step) -> str:
    return "held" if step.get("held") else "BROKE: " + "; ".join(step.get("broken") or ())


def render_capacity_html(
    title: str,
    load_label: str,
    steps: Sequence[Step],
    slos: Sequence[Threshold] = (),
    *,
    sentence: str | None = None,
    interrupted: bool = False,
) -> str:
    """A capacity search as one page: the load sustained and the knee in words; achieved against offered load,
    latency (p95 dashed, drawn over p99) and failure rate per step, the knee marked on each (a band from the
    last level held to the first broken) and the SLO bounds dashed; every measurement in a table.

    ``steps`` are the search's measurements (``--out``'s ``steps``: ``level``, ``phase``, ``recheck``,
    ``decides``, ``p50``, ``p95``, ``p99``, ``failure_rate``, ``completed_per_s``, ``runs_per_s``,
    ``offered_per_s``, ``held``, ``broken``), in the order they ran; the lines join the measurements that decide
    their levels, and the others (a first break that a re-check then judged) are hollow markers.
    """
    load_axis = Axis(load_label, lambda v: f"{v:g}", point=lambda v: f"{v:g} {load_label}")
    deciding = sorted((s for s in steps if _decides(s)), key=lambda s: float(s["level"]))
    set_aside = [s for s in steps if not _decides(s)]
    held, broke = _knee(steps)
    knee: list[Guide] = []
    if broke is not None:
        low = float(held["level"]) if held is not None else float(broke["level"])
        label = f"knee: held {low:g}, broke {float(broke['level']):g}" if held else f"broke {float(broke['level']):g}"
        knee.append(Guide("capacity-knee", label, "#c53030", x=(low, float(broke["level"]))))
    elif held is not None:
        knee.append(
            Guide("capacity-knee", f"held up to {float(held['level']):g}", "#2f855a", x=(float(held["level"]),) * 2)
        )
    by_level: dict[float, list[Step]] = {}
    for step in steps:
        by_level.setdefault(float(step["level"]), []).append(step)

    def describe(level: float) -> str:
        return "; ".join(f"{_what(s)}: {_verdict(s)}" for s in by_level.get(level, ()))

    def aside(key: str) -> list[Series]:
        points = _points(set_aside, key)
        if not any(y is not None for _, y in points):
            return []
        return [Series(f"{key}, a break then re-checked (the re-check decides)", _SET_ASIDE, points, kind="dots")]

    latency = [
        Series(key, PERCENTILE_COLORS[key], _points(deciding, key), dashed=dashed, width=width)
        for key, dashed, width in (("p50", False, 2.0), ("p99", False, 3.5), ("p95", True, 2.5))
    ]
    offered = _points(deciding, "offered_per_s")
    throughput = [
        *(
            [Series("offered (runs due per second)", "#a0aec0", offered, width=5.0)]
            if any(y is not None for _, y in offered)
            else []
        ),
        Series("achieved (runs created per second)", "#2b6cb0", _points(deciding, "runs_per_s")),
        Series("completed per second", "#2f855a", _points(deciding, "completed_per_s")),
    ]
    charts = [
        line_chart(
            "capacity-throughput",
            "Achieved against offered load, per step",
            [*throughput, *aside("runs_per_s")],
            load_axis,
            Axis("runs per second", format_rate),
            knee,
            describe_x=describe,
        ),
        line_chart(
            "capacity-latency",
            "Queue-to-completion per step",
            [*latency, *aside("p95")],
            load_axis,
            _duration_axis("queue-to-completion"),
            [*knee, *_slo_bounds(slos, "queue_to_completion")],
            describe_x=describe,
        ),
        line_chart(
            "capacity-failures",
            "Failure rate per step",
            [Series("failure rate", "#c53030", _points(deciding, "failure_rate")), *aside("failure_rate")],
            load_axis,
            Axis("failure rate", lambda v: f"{v * 100:.3g}%", least=0.01),
            [*knee, *_slo_bounds(slos, "failure_rate")],
            describe_x=describe,
        ),
    ]
    rows = [
        [
            index,
            f"{float(s['level']):g}",
            _what(s),
            "yes" if _decides(s) else "no (re-checked)",
            _seconds(s.get("p50")),
            _seconds(s.get("p95")),
            _seconds(s.get("p99")),
            _share(s.get("failure_rate")),
            "-" if s.get("offered_per_s") is None else format_rate(float(s["offered_per_s"])),
            "-" if s.get("runs_per_s") is None else format_rate(float(s["runs_per_s"])),
            f"{float(s.get('completed_per_s') or 0):.3g}",
            _Raw(
                (_badge("held", "ok") if s.get("held") else _badge("BROKE", "bad"))
                + (f" {_e('; '.join(s.get('broken') or ()))}" if s.get("broken") else "")
            ),
        ]
        for index, s in enumerate(steps, start=1)
    ]
    headers = ["#", load_label, "step", "decides", "p50", "p95", "p99", "failure rate", "offered/s", "achieved/s",
               "completed/s", "SLO"]  # fmt: skip
    table = _table(headers, rows, (0, 1, *range(4, 11)))
    said = sentence or _sustained(held, load_label, slos)
    tone = "warn" if interrupted else "ok" if held is not None else "bad"
    rate = held.get("runs_per_s") if held is not None else None
    if held is None:
        word, under = "NONE", "no level held the SLO"
    else:
        word = _runs_rate(float(rate)) if rate is not None else f"{float(held['level']):g}"
        under = f"sustained, at {float(held['level']):g} {load_label}"
    slo_text = ", ".join(t.text for t in slos)
    body = (
        f"<h1>{_e(title)}</h1>"
        f'<section id="verdict" class="banner {tone}" data-verdict="{_e(word)}">'
        f'<div class="word">{_e(word)}<small>{_e(under)}</small></div><div class="why">'
        f'<p class="headline" id="sustained">{_e(said[:1].upper() + said[1:])}</p>'
        f'<p class="knee" id="knee"><strong>{_e(_knee_sentence(held, broke, load_label))}</strong></p>'
        + (f'<p class="meta" id="slo">SLO: {_e(slo_text)}</p>' if slo_text else "")
        + ('<p class="meta">Interrupted: the search stopped before it ended.</p>' if interrupted else "")
        + "</div></section>"
        '<p class="meta">Each step runs one load level; the lines join the measurements that decide their levels '
        "(a level that broke is measured again, and the re-check decides). Point at a chart to read a step.</p>"
        f'<section id="charts"><div class="charts">{"".join(charts)}</div></section>'
        f'<section id="steps"><h2>Every measurement, in the order it ran</h2>{table}</section>'
    )
    return page(title, body)
