"""SVG charts for the HTML pages, drawn here as markup: lines, stacked areas and bars over an x axis, and rows of
bars, dots and intervals, one row per variant or scenario. Pure; every string escaped.

Every plotted value can be read by pointing at it: each bar, dot and interval carries an SVG ``<title>``, and a
chart over x has a column per x whose ``<title>`` lists every series there. What is drawn: docs/reports.md.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 14, 42
BAND_STRIP = 16  # room above the plot for the stage names
MARKERS_UP_TO = 40  # points per series below which each point gets a dot (a lone point is then visible)
OFF_SCALE = 5.0  # a bound more than this many times the highest value is noted above the plot, not scaled to
ROW_HEIGHT = 26
LABEL_WIDTH, NOTE_WIDTH = 128, 104
CHAR_WIDTH = 6.2  # of 11 px system-ui text, to fit labels (generous: a label cut short is better than overflowing)

LineKind = str  # "line" | "area" (stacked) | "bar" (stacked) | "dots" (hollow markers, no line)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def fit(text: str, width: float) -> str:
    """``text`` cut with an ellipsis to about ``width`` pixels of chart text."""
    most = max(int(width / CHAR_WIDTH), 1)
    return text if len(text) <= most else text[: max(most - 1, 0)] + "…"


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a chart; a None y breaks a line (an interval with no data) and adds nothing to a stack."""

    name: str
    color: str
    points: tuple[tuple[float, float | None], ...]
    dashed: bool = False
    width: float = 2.0
    kind: LineKind = "line"


@dataclass(frozen=True, slots=True)
class Axis:
    """How an axis maps values and prints its ticks."""

    label: str
    fmt: Callable[[float], str]
    log: bool = False  # log10 scale (the percentile spectrum's x)
    ticks: tuple[float, ...] | None = None  # fixed ticks; else "nice" ones from the data
    least: float = 0.0  # the axis reaches at least this high: a series all at 0 lies on a short axis, not 0..1
    whole: bool = False  # ticks at whole numbers only (counts of runs)
    point: Callable[[float], str] | None = None  # how a tooltip names an x ("at 12s"); default: label and tick


@dataclass(frozen=True, slots=True)
class Guide:
    """A mark on a chart beside its series: a vertical band or line (``x``: from, to) or a horizontal line at
    ``y`` (a bound, such as an SLO's or a threshold's)."""

    name: str  # the ``data-guide`` attribute, for tests and readers of the markup
    label: str
    color: str
    x: tuple[float, float] | None = None
    y: float | None = None
    tag: str = ""  # the text drawn on the chart, when shorter than ``label`` (the legend's and the tooltip's)


@dataclass(frozen=True, slots=True)
class Band:
    """A span of x shaded under the series and named above the plot: one of the plan's stages."""

    label: str
    start: float
    end: float
    detail: str = ""  # the tooltip's second line (the stage's target)


@dataclass(frozen=True, slots=True)
class Mark:
    """What a row of a rows chart draws: a bar from ``start`` to ``end``, an interval (``span``: a line with
    caps), or a dot at ``start``; ``key`` is its legend entry."""

    key: str
    color: str
    start: float
    end: float | None = None
    shape: str = "bar"  # "bar", "span" or "dot"
    title: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """One category of a rows chart: its label (``tone`` "bad", "ok" or "muted" colours it), its marks, and a
    note at the right (a total, a verdict)."""

    label: str
    marks: tuple[Mark, ...]
    note: str = ""
    tone: str = ""


@dataclass(frozen=True, slots=True)
class Key:
    """A legend entry: its name and a swatch drawn as the chart draws it (``line``, ``dashed``, ``area``,
    ``dot``, ``hollow``, ``band``, ``span``)."""

    name: str
    color: str
    kind: str = "line"


# ------------------------------------------------------------------------------------------------ scales


def nice_ticks(high: float, count: int = 5, whole: bool = False) -> list[float]:
    """0 .. a round number above ``high``, in 1 / 2 / 2.5 / 5 x 10^k steps (``whole``: 1 at least, never 2.5)."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    step = _step(high / count)
    if whole:
        step = max(math.ceil(step), 1)
    steps = math.ceil(high / step - 1e-9)
    return [i * step for i in range(steps + 1)]


def _step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-12))


def nice_range(low: float, high: float, count: int = 5) -> list[float]:
    """Round ticks from at most ``low`` to at least ``high``, 0 among them (a difference's axis)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0 or not math.isfinite(high - low):
        return [0.0, 1.0]
    step = _step((high - low) / count)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive points with a value: gaps are not bridged, so no line crosses missing data."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def _stacked(series: Sequence[Series]) -> dict[str, dict[float, tuple[float, float]]]:
    """Each stacked series' (bottom, top) at each x: areas on areas, bars on bars, in the order given."""
    tops: dict[tuple[str, float], float] = {}
    spans: dict[str, dict[float, tuple[float, float]]] = {}
    for s in series:
        if s.kind not in ("area", "bar"):
            continue
        spans[s.name] = {}
        for x, y in s.points:
            bottom = tops.get((s.kind, x), 0.0)
            top = bottom + max(y or 0.0, 0.0)
            tops[s.kind, x] = top
            spans[s.name][x] = (bottom, top)
    return spans


# ------------------------------------------------------------------------------------------------ the chart


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where the plot lies in the chart and how values map into it."""

    left: float
    top: float
    width: float
    height: float
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    log: bool

    def tx(self, x: float) -> float:
        return math.log10(x) if self.log else x

    def px(self, x: float) -> float:
        return (
            self.left + (min(max(self.tx(x), self.x_lo), self.x_hi) - self.x_lo) / (self.x_hi - self.x_lo) * self.width
        )

    def py(self, y: float) -> float:
        span = self.y_hi - self.y_lo
        return self.top + self.height - (min(max(y, self.y_lo), self.y_hi) - self.y_lo) / span * self.height


def _svg_open(chart_id: str, title: str, height: float) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{_e(chart_id)}" viewBox="0 0 {WIDTH} {height:g}" width="{WIDTH}" '
        f'height="{height:g}" role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]


def _empty(parts: list[str], height: float) -> None:
    parts.append(
        f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" class="empty">no data for this chart</text>'
    )


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    x_axis: Axis,
    y_axis: Axis,
    guides: Sequence[Guide] = (),
    *,
    bands: Sequence[Band] = (),
    describe_x: Callable[[float], str] | None = None,
) -> str:
    """A chart over x (time, or a load level) with axes, grid, ticks, stage bands, guides, the series (lines,
    stacked areas, stacked bars or markers), a tooltip column per x and a legend, in a ``<figure>``."""
    top = TOP + (BAND_STRIP if bands else 0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - top - BOTTOM
    stacks = _stacked(series)
    values = [(x, y) for s in series if s.kind not in ("area", "bar") for x, y in s.points if y is not None]
    values += [(x, span[1]) for spans in stacks.values() for x, span in spans.items()]
    parts = _svg_open(chart_id, title, HEIGHT)
    keys = _series_keys(series, guides, bands)
    if not values:
        _empty(parts, HEIGHT)
        parts.append("</svg>")
        return figure(chart_id, title, "".join(parts), keys)

    def tx(x: float) -> float:
        return math.log10(x) if x_axis.log else x

    xs = [tx(x) for x, _ in values] + [tx(x) for g in guides if g.x for x in g.x] + [tx(b.end) for b in bands]
    x_ticks = list(x_axis.ticks) if x_axis.ticks else nice_ticks(max(xs))
    x_lo = tx(x_ticks[0]) if x_axis.ticks else 0.0
    x_hi = max(tx(x_ticks[-1]) if x_axis.ticks else x_ticks[-1], x_lo + 1e-9)
    data_top = max(y for _, y in values)
    # Guides widen the axis so a bound above every point still shows how far off it is; one far above the data
    # would squash it flat, so it is named above the plot instead.
    scaled = [g for g in guides if g.y is not None and not (data_top > 0 and g.y > OFF_SCALE * data_top)]
    off_scale = [g for g in guides if g.y is not None and g not in scaled]
    y_top = max([data_top, y_axis.least] + [g.y for g in scaled if g.y is not None])
    y_ticks = list(y_axis.ticks) if y_axis.ticks else nice_ticks(y_top, whole=y_axis.whole)
    frame = _Frame(LEFT, top, plot_w, plot_h, x_lo, x_hi, 0.0, y_ticks[-1] or 1.0, x_axis.log)

    parts.extend(_bands(bands, frame))
    parts.append('<g class="grid">')
    for tick in y_ticks:
        y = frame.py(tick)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_e(y_axis.fmt(tick))}</text>'
        )
    for tick in x_ticks:
        x = frame.px(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">{_e(x_axis.fmt(tick))}</text>'
        )
    parts.append("</g>")
    parts.append(
        f'<rect class="frame" x="{LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none"/>'
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">{_e(x_axis.label)}</text>'
        f'<text transform="translate(14 {top + plot_h / 2}) rotate(-90)" text-anchor="middle" class="axis">'
        f"{_e(y_axis.label)}</text>"
    )
    parts.extend(_guide(g, frame) for g in guides if g.x is not None)
    for s in series:
        parts.append(_draw_series(s, frame, stacks.get(s.name)))
    parts.extend(_guide(g, frame) for g in scaled if g.x is None)
    parts.extend(_off_scale(g, frame, i, y_axis) for i, g in enumerate(off_scale))
    parts.append(_columns(series, frame, x_axis, y_axis, bands, describe_x))
    parts.append("</svg>")
    return figure(chart_id, title, "".join(parts), keys)


def _bands(bands: Sequence[Band], frame: _Frame) -> list[str]:
    """Stages as alternately shaded spans, each named in the strip above the plot (cut to fit its width)."""
    parts = []
    for index, band in enumerate(bands):
        left, right = frame.px(band.start), frame.px(band.end)
        if right - left < 0.5:
            continue
        shade = "#edf2f7" if index % 2 == 0 else "#f7fafc"
        label = fit(band.label, right - left - 6)
        tip = "\n".join(filter(None, (f"stage {band.label}", band.detail)))
        parts.append(
            f'<g class="band" data-band="{_e(band.label)}"><title>{_e(tip)}</title>'
            f'<rect x="{left:.1f}" y="{frame.top}" width="{right - left:.1f}" height="{frame.height}" fill="{shade}"/>'
            f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{frame.top - BAND_STRIP + 2}" y2="{frame.top + frame.height}" '
            'stroke="#a0aec0" stroke-width="1"/>'
            f'<text x="{left + 4:.1f}" y="{frame.top - 4}" class="band-label">{_e(label)}</text></g>'
        )
    return parts


def _draw_series(s: Series, frame: _Frame, stack: dict[float, tuple[float, float]] | None) -> str:
    group = [f'<g class="series" data-series="{_e(s.name)}">']
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    if s.kind == "bar" and stack is not None:
        xs = sorted(stack)
        for index, x in enumerate(xs):
            bottom, top = stack[x]
            if top <= bottom:
                continue
            previous = xs[index - 1] if index else max(x - (xs[1] - x if len(xs) > 1 else x), 0.0)
            left, right = frame.px(previous), frame.px(x)
            gap = min(1.0, (right - left) * 0.15)
            y_top, y_bottom = frame.py(top), frame.py(bottom)
            group.append(
                f'<rect x="{left + gap:.1f}" y="{y_top:.1f}" width="{max(right - left - 2 * gap, 0.6):.1f}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{s.color}"/>'
            )
    elif s.kind == "area" and stack is not None:
        for segment in segments(s.points):
            upper = [(x, stack[x][1]) for x, _ in segment]
            lower = [(x, stack[x][0]) for x, _ in reversed(segment)]
            outline = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in upper + lower)
            edge = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in upper)
            group.append(f'<polygon points="{outline}" fill="{s.color}" fill-opacity="0.55" stroke="none"/>')
            group.append(
                f'<polyline points="{edge}" fill="none" stroke="{s.color}" stroke-width="1.5" stroke-linejoin="round"/>'
            )
    elif s.kind == "dots":
        group.extend(
            f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="4" fill="#fff" stroke="{s.color}" '
            'stroke-width="2"/>'
            for x, y in s.points
            if y is not None
        )
    else:
        runs = segments(s.points)
        for segment in runs:
            points = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in segment)
            group.append(
                f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="{s.width:g}"{dash} '
                'stroke-linejoin="round" stroke-linecap="round"/>'
            )
        if sum(len(segment) for segment in runs) <= MARKERS_UP_TO and not s.dashed:
            group.extend(
                f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="2.5" fill="{s.color}"/>'
                for segment in runs
                for x, y in segment
            )
    group.append("</g>")
    return "".join(group)


def _guide(guide: Guide, frame: _Frame) -> str:
    """A guide's markup: a shaded band or a dashed line, labelled."""
    parts = [f'<g class="guide" data-guide="{_e(guide.name)}"><title>{_e(guide.label)}</title>']
    bottom = frame.top + frame.height
    if guide.x is not None:
        left, right = sorted((frame.px(guide.x[0]), frame.px(guide.x[1])))
        if right - left >= 1:
            parts.append(
                f'<rect x="{left:.1f}" y="{frame.top}" width="{right - left:.1f}" height="{frame.height}" '
                f'fill="{guide.color}" fill-opacity="0.14"/>'
            )
        for x in sorted({left, right}):
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{bottom}" stroke="{guide.color}" '
                'stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
        # Centred over the band: the knee is often the last step, at the plot's right edge, where a label
        # placed beside it would be cut off.
        centre = min(max((left + right) / 2, frame.left + 90), frame.left + frame.width - 90)
        parts.append(
            f'<text x="{centre:.1f}" y="{frame.top + 12}" text-anchor="middle" class="guide-label">'
            f"{_e(guide.tag or guide.label)}</text>"
        )
    if guide.y is not None:
        y = frame.py(guide.y)
        # Above its line, unless that is the top of the plot, where the label would cover the stage names.
        text_y = y - 4 if y - 14 >= frame.top else y + 13
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.left + frame.width}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{guide.color}" stroke-width="1.5" stroke-dasharray="8 4"/>'
            f'<text x="{frame.left + 4}" y="{text_y:.1f}" class="guide-label" style="fill:{guide.color}">'
            f"{_e(fit(guide.tag or guide.label, frame.width - 8))}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _off_scale(guide: Guide, frame: _Frame, index: int, y_axis: Axis) -> str:
    """A bound far above the data, named at the top of the plot with its value (the scale fits the data)."""
    assert guide.y is not None
    text = fit(f"↑ {guide.tag or guide.label} (at {y_axis.fmt(guide.y)}, above the scale)", frame.width - 8)
    return (
        f'<g class="guide off-scale" data-guide="{_e(guide.name)}"><title>{_e(guide.label)}</title>'
        f'<text x="{frame.left + frame.width - 4}" y="{frame.top + 12 + 13 * index}" text-anchor="end" '
        f'class="guide-label" style="fill:{guide.color}">{_e(text)}</text></g>'
    )


def _columns(
    series: Sequence[Series],
    frame: _Frame,
    x_axis: Axis,
    y_axis: Axis,
    bands: Sequence[Band],
    describe_x: Callable[[float], str] | None,
) -> str:
    """A transparent column per x, over everything, whose tooltip lists each series' value there: pointing
    anywhere above a time reads every line at it."""
    at: dict[float, list[str]] = {}
    for s in series:
        for x, y in s.points:
            shown = "no data" if y is None else y_axis.fmt(y)
            at.setdefault(x, []).append(f"{s.name}: {shown}")
    xs = sorted(at)
    if not xs:
        return ""
    pixels = [frame.px(x) for x in xs]
    parts = ['<g class="hover" fill="transparent" pointer-events="all">']
    right_edge = frame.left + frame.width
    for index, x in enumerate(xs):
        left = frame.left if index == 0 else (pixels[index - 1] + pixels[index]) / 2
        right = right_edge if index == len(xs) - 1 else (pixels[index] + pixels[index + 1]) / 2
        if right - left <= 0:
            continue
        head = x_axis.point(x) if x_axis.point else f"{x_axis.label} {x_axis.fmt(x)}"
        extra = describe_x(x) if describe_x else _band_at(bands, x)
        lines = [head + (f" · {extra}" if extra else ""), *at[x]]
        parts.append(
            f'<rect x="{left:.1f}" y="{frame.top}" width="{right - left:.1f}" height="{frame.height}">'
            f"<title>{_e(chr(10).join(lines))}</title></rect>"
        )
    parts.append("</g>")
    return "".join(parts)


def _band_at(bands: Sequence[Band], x: float) -> str:
    """The stage an interval ending at ``x`` belongs to (its end inside the stage, or on the stage's end)."""
    for band in bands:
        if band.start < x <= band.end + 1e-9:
            return f"stage {band.label}"
    return ""


def _series_keys(series: Sequence[Series], guides: Sequence[Guide], bands: Sequence[Band]) -> list[Key]:
    kinds = {"area": "area", "bar": "area", "dots": "hollow"}
    keys = [Key(s.name, s.color, "dashed" if s.dashed else kinds.get(s.kind, "line")) for s in series]
    keys += [Key(g.label, g.color, "band" if g.x is not None and g.x[0] != g.x[1] else "dashed") for g in guides]
    if bands:
        keys.append(Key("stages of the plan (named above)", "#cbd5e0", "band"))
    return keys


# --------------------------------------------------------------------------------------------- rows chart


def rows_chart(
    chart_id: str,
    title: str,
    rows: Sequence[Row],
    axis: Axis,
    keys: Sequence[Key],
    guides: Sequence[Guide] = (),
) -> str:
    """One row per category (a variant, a scenario): stacked bars, dots joined by a thin line, or intervals,
    on a shared x axis; guides are vertical lines (a bound, the zero of a difference)."""
    has_notes = any(row.note for row in rows)
    left, right = LABEL_WIDTH, NOTE_WIDTH if has_notes else RIGHT
    top, plot_w = TOP, WIDTH - LABEL_WIDTH - right
    plot_h = max(len(rows), 1) * ROW_HEIGHT
    height = top + plot_h + BOTTOM
    parts = _svg_open(chart_id, title, height)
    values = [v for row in rows for m in row.marks for v in (m.start, m.end) if v is not None]
    if not values:
        _empty(parts, height)
        parts.append("</svg>")
        return figure(chart_id, title, "".join(parts), keys)
    stops = values + [v for g in guides if g.x for v in g.x]
    low, high = min(stops), max(*stops, axis.least)
    ticks = (
        list(axis.ticks) if axis.ticks else (nice_range(low, high) if low < 0 else nice_ticks(high, whole=axis.whole))
    )
    frame = _Frame(left, top, plot_w, plot_h, ticks[0], max(ticks[-1], ticks[0] + 1e-9), 0.0, 1.0, False)
    parts.append('<g class="grid">')
    for tick in ticks:
        x = frame.px(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">{_e(axis.fmt(tick))}</text>'
        )
    parts.append("</g>")
    parts.append(
        f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="axis">{_e(axis.label)}</text>'
    )
    for guide in guides:
        if guide.x is None:
            continue
        x = frame.px(guide.x[0])
        parts.append(
            f'<g class="guide" data-guide="{_e(guide.name)}"><title>{_e(guide.label)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="{guide.color}" '
            'stroke-width="1.5" stroke-dasharray="6 3"/></g>'
        )
    for index, row in enumerate(rows):
        parts.append(_row(row, index, frame, has_notes))
    parts.append("</svg>")
    return figure(chart_id, title, "".join(parts), keys)


_TONES = {"bad": "#9b2c2c", "ok": "#276749", "muted": "#718096"}


def _row(row: Row, index: int, frame: _Frame, has_notes: bool) -> str:
    middle = frame.top + (index + 0.5) * ROW_HEIGHT
    tone = f' style="fill:{_TONES[row.tone]}"' if row.tone in _TONES else ""
    label = fit(row.label, LABEL_WIDTH - 14)
    parts = [
        f'<g class="row" data-row="{_e(row.label)}">',
        f'<text x="{LABEL_WIDTH - 8}" y="{middle + 4:.1f}" text-anchor="end" class="row-label"{tone}>'
        f"{_e(label)}<title>{_e(row.label)}</title></text>",
    ]
    if index % 2 == 1:
        parts.append(
            f'<rect x="{frame.left}" y="{middle - ROW_HEIGHT / 2:.1f}" width="{frame.width}" height="{ROW_HEIGHT}" '
            'fill="#f7fafc"/>'
        )
    dots = [frame.px(m.start) for m in row.marks if m.shape == "dot"]
    if len(dots) > 1:
        parts.append(
            f'<line x1="{min(dots):.1f}" x2="{max(dots):.1f}" y1="{middle:.1f}" y2="{middle:.1f}" stroke="#cbd5e0" '
            'stroke-width="3"/>'
        )
    for mark in row.marks:
        parts.append(_mark(mark, frame, middle))
    if has_notes and row.note:
        parts.append(
            f'<text x="{frame.left + frame.width + 8}" y="{middle + 4:.1f}" class="row-note"{tone}>'
            f"{_e(fit(row.note, NOTE_WIDTH - 10))}<title>{_e(row.note)}</title></text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _mark(mark: Mark, frame: _Frame, middle: float) -> str:
    tip = f"<title>{_e(mark.title)}</title>" if mark.title else ""
    key = f' data-key="{_e(mark.key)}"'
    if mark.shape == "dot":
        return (
            f'<circle{key} cx="{frame.px(mark.start):.1f}" cy="{middle:.1f}" r="5" fill="{mark.color}" '
            f'stroke="#fff" stroke-width="1">{tip}</circle>'
        )
    end = mark.start if mark.end is None else mark.end
    left, right = sorted((frame.px(mark.start), frame.px(end)))
    if mark.shape == "span":
        cap = 5
        return (
            f'<g{key}>{tip}<line x1="{left:.1f}" x2="{right:.1f}" y1="{middle:.1f}" y2="{middle:.1f}" '
            f'stroke="{mark.color}" stroke-width="2.5"/>'
            + "".join(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{middle - cap:.1f}" y2="{middle + cap:.1f}" '
                f'stroke="{mark.color}" stroke-width="2"/>'
                for x in (left, right)
            )
            + f'<rect x="{left - 2:.1f}" y="{middle - cap - 2:.1f}" width="{right - left + 4:.1f}" '
            f'height="{2 * cap + 4}" fill="transparent"/></g>'
        )
    bar = ROW_HEIGHT - 10
    return (
        f'<rect{key} x="{left:.1f}" y="{middle - bar / 2:.1f}" width="{max(right - left, 0.8):.1f}" '
        f'height="{bar}" fill="{mark.color}">{tip}</rect>'
    )


# ------------------------------------------------------------------------------------------------- figure


def swatch(key: Key) -> str:
    """The legend's picture of an entry, drawn as the chart draws it (so it prints, and never goes missing)."""
    c = key.color
    inner = {
        "line": f'<line x1="1" x2="21" y1="6" y2="6" stroke="{c}" stroke-width="3"/>',
        "dashed": f'<line x1="1" x2="21" y1="6" y2="6" stroke="{c}" stroke-width="2.5" stroke-dasharray="5 3"/>',
        "area": f'<rect x="2" y="1" width="18" height="10" fill="{c}" fill-opacity="0.75" stroke="{c}"/>',
        "band": f'<rect x="2" y="1" width="18" height="10" fill="{c}" fill-opacity="0.35" stroke="{c}" '
        'stroke-dasharray="3 2"/>',
        "dot": f'<circle cx="11" cy="6" r="4.5" fill="{c}"/>',
        "hollow": f'<circle cx="11" cy="6" r="4" fill="#fff" stroke="{c}" stroke-width="2"/>',
        "span": f'<line x1="3" x2="19" y1="6" y2="6" stroke="{c}" stroke-width="2.5"/>'
        f'<line x1="3" x2="3" y1="2" y2="10" stroke="{c}" stroke-width="2"/>'
        f'<line x1="19" x2="19" y1="2" y2="10" stroke="{c}" stroke-width="2"/>',
    }[key.kind]
    return f'<svg class="swatch" data-swatch="{_e(key.kind)}" width="22" height="12" viewBox="0 0 22 12">{inner}</svg>'


def figure(chart_id: str, title: str, svg: str, keys: Sequence[Key], note: str = "") -> str:
    """A chart in its ``<figure>``: the caption, the SVG, an optional note, and the legend (each entry with its
    swatch)."""
    legend = "".join(f"<li>{swatch(k)}{_e(k.name)}</li>" for k in keys)
    said = f'<p class="chart-note">{_e(note)}</p>' if note else ""
    return (
        f'<figure class="chart-box" id="chart-{_e(chart_id)}"><figcaption>{_e(title)}</figcaption>{svg}{said}'
        f'<ul class="legend">{legend}</ul></figure>'
    )
