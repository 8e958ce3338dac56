"""Small inline-SVG plots (histogram, line, scatter) with axes and ticks; no scripts, no external files.

Drawn here rather than by a plotting library: matplotlib's SVG was tried and needed as much code again to fit
inline into the report (hover titles, ids unique per page, no doubled styles), made the 10,000-camera page 44%
larger and drew each chart about ten times slower. Vega-Lite (altair) loads its renderer from a CDN, which an
offline report cannot do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

WIDTH, HEIGHT = 540, 340
MAX_MARKERS = 60
MARGIN = (56, 20, 30, 54)  # left, right, top, bottom
AXIS = "#444"
GRID = "#e3e3e3"


def nice_ticks(lo: float, hi: float, count: int = 5, min_step: float = 0.0) -> list[float]:
    """About ``count`` round tick values covering ``lo..hi``, at least ``min_step`` apart."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = max((hi - lo) / max(count, 1), min_step)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_text(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.4g}"


def _span(values: np.ndarray, floor_zero: bool = False) -> tuple[float, float]:
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    lo = min(lo, 0.0) if floor_zero else lo
    if hi <= lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - (0 if floor_zero else pad), hi + pad
    return lo, hi


@dataclass(frozen=True)
class Frame:
    """A plot area mapping data ranges to pixels."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    y_step: float = 0.0  # smallest y tick step (1 for counts)

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        return MARGIN[0] + (value - lo) / (hi - lo) * (WIDTH - MARGIN[0] - MARGIN[1])

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        return HEIGHT - MARGIN[3] - (value - lo) / (hi - lo) * (HEIGHT - MARGIN[2] - MARGIN[3])

    def axes(self, x_label: str, y_label: str, x_ticks: Sequence[tuple[float, str]] | None = None) -> list[str]:
        """Grid lines, tick labels, axis lines and axis titles."""
        parts = []
        for value in nice_ticks(*self.y_range, min_step=self.y_step):
            y = self.y(value)
            parts.append(f'<line x1="{MARGIN[0]}" x2="{WIDTH - MARGIN[1]}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{GRID}"/>')
            parts.append(f'<text x="{MARGIN[0] - 6}" y="{y + 4:.1f}" text-anchor="end">{tick_text(value)}</text>')
        ticks = x_ticks if x_ticks is not None else [(v, tick_text(v)) for v in nice_ticks(*self.x_range)]
        base = HEIGHT - MARGIN[3]
        for value, label in ticks:
            x = self.x(value)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 5}" stroke="{AXIS}"/>')
            parts.append(f'<text x="{x:.1f}" y="{base + 18}" text-anchor="middle">{escape(label)}</text>')
        parts.append(f'<line x1="{MARGIN[0]}" x2="{WIDTH - MARGIN[1]}" y1="{base}" y2="{base}" stroke="{AXIS}"/>')
        parts.append(f'<line x1="{MARGIN[0]}" x2="{MARGIN[0]}" y1="{MARGIN[2]}" y2="{base}" stroke="{AXIS}"/>')
        parts.append(f'<text x="{(MARGIN[0] + WIDTH - MARGIN[1]) / 2:.0f}" y="{HEIGHT - 12}" '
                     f'text-anchor="middle">{escape(x_label)}</text>')
        parts.append(f'<text transform="translate(14 {(HEIGHT - MARGIN[3] + MARGIN[2]) / 2:.0f}) rotate(-90)" '
                     f'text-anchor="middle">{escape(y_label)}</text>')
        return parts


def svg(plot_id: str, title: str, parts: Sequence[str], css_class: str = "plot") -> str:
    """An ``<svg>`` element with a title line above the plot area."""
    head = (f'<svg id="{escape(plot_id)}" class="{escape(css_class)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" '
            f'font-size="11" role="img" aria-label="{escape(title)}">')
    label = f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-size="13" font-weight="bold">' \
            f'{escape(title)}</text>'
    return "\n".join([head, f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>', label, *parts, "</svg>"])


def empty_note(frame: Frame, text: str) -> str:
    return (f'<text x="{frame.x(sum(frame.x_range) / 2):.0f}" y="{frame.y(sum(frame.y_range) / 2):.0f}" '
            f'text-anchor="middle" fill="#888">{escape(text)}</text>')


def histogram(plot_id: str, title: str, values: Sequence[float], x_label: str, bins: int = 20,
              color: str = "#4e79a7") -> str:
    """Counts of ``values`` (non-finite ones left out) in ``bins`` equal bins."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    lo, hi = _span(data)
    counts, edges = np.histogram(data, bins=bins, range=(lo, hi)) if data.size else (np.zeros(bins), None)
    edges = edges if edges is not None else np.linspace(lo, hi, bins + 1)
    frame = Frame((lo, hi), (0.0, max(float(counts.max()), 1.0) * 1.08), y_step=1.0)
    parts = frame.axes(x_label, "cameras")
    for count, left, right in zip(counts, edges[:-1], edges[1:], strict=True):
        if count:
            x0, x1, y = frame.x(left), frame.x(right), frame.y(count)
            parts.append(f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                         f'height="{frame.y(0) - y:.1f}" fill="{color}"><title>{int(count)} cameras in '
                         f'{tick_text(left)}..{tick_text(right)}</title></rect>')
    if not data.size:
        parts.append(empty_note(frame, "no values"))
    return svg(plot_id, title, parts)


def line_plot(plot_id: str, title: str, ys: Sequence[float], x_labels: Sequence[str], x_label: str, y_label: str,
              color: str = "#e15759", css_class: str = "plot") -> str:
    """``ys`` over evenly spaced points labelled ``x_labels`` (at most about eight labels shown)."""
    data = np.asarray([np.nan if v is None else v for v in ys], dtype=np.float64)
    finite = data[np.isfinite(data)]
    lo, hi = _span(finite, floor_zero=True)
    frame = Frame((-0.5, max(len(data) - 0.5, 0.5)), (lo, hi * 1.08))
    longest = max((len(label) for label in x_labels), default=1)
    every = max(1, math.ceil(len(x_labels) / max(2, (WIDTH - MARGIN[0] - MARGIN[1]) // (7 * longest + 12))))
    parts = frame.axes(x_label, y_label, [(i, x_labels[i]) for i in range(0, len(x_labels), every)])
    shown = [i for i, v in enumerate(data) if math.isfinite(v)]
    points = [(frame.x(i), frame.y(data[i])) for i in shown]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    radius = 3.5 if len(points) <= MAX_MARKERS else 1.2
    for i, (x, y) in zip(shown, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{color}">'
                     f'<title>{escape(x_labels[i])}: {tick_text(float(data[i]))}</title></circle>')
    if not points:
        parts.append(empty_note(frame, "no values"))
    return svg(plot_id, title, parts, css_class)


def scatter(plot_id: str, title: str, xs: Sequence[float], ys: Sequence[float], colors: Sequence[str],
            labels: Sequence[str], x_label: str, y_label: str, legend: Sequence[tuple[str, str]] = ()) -> str:
    """Points ``(xs[i], ys[i])`` in ``colors[i]`` with hover text ``labels[i]`` (non-finite points left out).

    Points are drawn in ``legend`` order, so the later (rarer) kinds stay visible on top.
    """
    layers = {color: n for n, (_, color) in enumerate(legend)}
    keep = [i for i, (x, y) in enumerate(zip(xs, ys, strict=True))
            if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    x_data = np.asarray([xs[i] for i in keep], dtype=np.float64)
    y_data = np.asarray([ys[i] for i in keep], dtype=np.float64)
    (x_lo, x_hi), (y_lo, y_hi) = _span(x_data, floor_zero=True), _span(y_data, floor_zero=True)
    frame = Frame((x_lo, x_hi * 1.05), (y_lo, y_hi * 1.08))
    parts = frame.axes(x_label, y_label)
    radius = 4.0 if len(keep) <= 200 else 2.0
    for i, x, y in sorted(zip(keep, x_data, y_data, strict=True), key=lambda p: layers.get(colors[p[0]], 0)):
        parts.append(f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="{radius}" fill="{colors[i]}" '
                     f'fill-opacity="0.75"><title>{escape(labels[i])}</title></circle>')
    if legend:
        parts.append(f'<rect x="{WIDTH - MARGIN[1] - 90}" y="{MARGIN[2]}" width="88" height="{16 * len(legend) + 4}" '
                     'fill="white" fill-opacity="0.85" stroke="#ccc"/>')
    for n, (name, color) in enumerate(legend):
        x, y = WIDTH - MARGIN[1] - 80, MARGIN[2] + 10 + 16 * n
        parts.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{color}"/>')
        parts.append(f'<text x="{x + 10}" y="{y + 4}">{escape(name)}</text>')
    if not keep:
        parts.append(empty_note(frame, "no cameras with both figures"))
    return svg(plot_id, title, parts)


def series_plot(plot_id: str, title: str, xs: Sequence[float], ys: Sequence[float], x_label: str, y_label: str,
                marks: Sequence[float] = (), mark_label: str = "", step: bool = False, color: str = "#4e79a7",
                y_range: tuple[float, float] | None = None, max_points: int = 600) -> str:
    """``ys`` over numeric ``xs`` as a line (``step``: held until the next x), with ``marks`` as thin
    vertical lines (e.g. keyframes); long series are thinned to about ``max_points`` points."""
    x_data = np.asarray(xs, dtype=np.float64)
    y_data = np.asarray([np.nan if v is None else v for v in ys], dtype=np.float64)
    keep = np.isfinite(x_data) & np.isfinite(y_data)
    x_data, y_data = x_data[keep], y_data[keep]
    if x_data.size > max_points:
        every = math.ceil(x_data.size / max_points)
        x_data, y_data = x_data[::every], y_data[::every]
    x_lo, x_hi = _span(np.concatenate([x_data, np.asarray(marks, dtype=np.float64)]))
    frame = Frame((x_lo, x_hi), y_range or (_span(y_data, floor_zero=True)[0], _span(y_data)[1] * 1.08))
    parts = frame.axes(x_label, y_label)
    mark_xs = sorted(set(marks))
    if len(mark_xs) > max_points:
        mark_xs = mark_xs[:: math.ceil(len(mark_xs) / max_points)]
    for x in mark_xs:
        parts.append(f'<line x1="{frame.x(x):.1f}" x2="{frame.x(x):.1f}" y1="{MARGIN[2]}" '
                     f'y2="{frame.y(frame.y_range[0]):.1f}" stroke="#f28e2b" stroke-opacity="0.55">'
                     f'<title>{escape(mark_label)} {tick_text(x)}</title></line>')
    points: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(zip(x_data, y_data, strict=True)):
        if step and i:
            points.append((frame.x(x), points[-1][1]))
        points.append((frame.x(x), frame.y(y)))
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    elif points:
        parts.append(f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="3" fill="{color}"/>')
    else:
        parts.append(empty_note(frame, "no values"))
    if mark_xs and mark_label:
        parts.append(f'<line x1="{WIDTH - MARGIN[1] - 96}" x2="{WIDTH - MARGIN[1] - 84}" y1="{MARGIN[2] + 6}" '
                     f'y2="{MARGIN[2] + 6}" stroke="#f28e2b" stroke-width="2"/>')
        parts.append(f'<text x="{WIDTH - MARGIN[1] - 80}" y="{MARGIN[2] + 10}">{escape(mark_label)}</text>')
    return svg(plot_id, title, parts)
