"""Charts drawn as SVG by the server: no chart library, no request to anyone, no script.

Each chart is an accessible image (`role="img"`, a <title> and a <desc> that sums it up) and
carries the table of the numbers it draws, which the page shows beside it (docs/admin.md): a
screen reader, a keyboard user and a printout all get the data. Colours come from classes
(`series-0`, ...) styled in admin.css, so the page's Content-Security-Policy needs no inline
style; every series is also named in a legend, never told by colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
FONT = 13


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG and the table behind it."""

    id: str
    title: str
    description: str
    svg: Markup
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def axis(value: float, ticks: int = 4) -> tuple[float, float]:
    """The top of an axis at least `value`, and its step: 1, 2 or 5 times a power of ten, whole
    numbers only (counts), about `ticks` steps."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / ticks
    power = float(10 ** math.floor(math.log10(raw)))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0)
    return step * math.ceil(value / step), step


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value * 100:.0f} %"
    return f"{value:,.0f}".replace(",", "\u202f") if value == int(value) else f"{value:.2f}"


def _open(chart_id: str, title: str, description: str, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}"'
        f' role="img" aria-labelledby="{chart_id}-t {chart_id}-d" class="chart"'
        f' font-size="{FONT}">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(description)}</desc>',
    ]


def _legend(series: Sequence[Series], y: int) -> list[str]:
    parts, x = [], 8
    for i, s in enumerate(series):
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" class="series-{i}"/>')
        parts.append(f'<text x="{x + 18}" y="{y}">{escape(s.name)}</text>')
        x += 30 + 8 * len(s.name)
    return parts


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    percent: bool = False,
) -> Chart:
    """One line per series over `labels` (days); a missing value (None) breaks its line."""
    height, left, right, top, bottom = 250, 56, 12, 30, 44
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    known = [v for s in series for v in s.values if v is not None]
    top_value, step = (1.0, 0.25) if percent else axis(max(known, default=0.0))
    n = len(labels)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / top_value

    parts = _open(chart_id, title, _line_description(title, labels, series, percent), height)
    parts += _legend(series, 16)
    for k in range(round(top_value / step) + 1):
        value = step * k
        yy = y(value)
        parts.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(value, percent))}</text>"
        )
    for i in sorted({0, n // 2, n - 1}) if n else ():
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="{anchor}">'
            f"{escape(labels[i])}</text>"
        )
    for s_index, s in enumerate(series):
        run: list[str] = []
        runs: list[list[str]] = [run]
        for i, v in enumerate(s.values):
            if v is None:
                run = []
                runs.append(run)
            else:
                run.append(f"{x(i):.1f},{y(v):.1f}")
        for points in runs:
            if len(points) == 1:
                cx, cy = points[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" class="series-{s_index}"/>')
            elif points:
                parts.append(
                    f'<polyline points="{" ".join(points)}" class="line series-{s_index}"/>'
                )
    parts.append("</svg>")
    rows = tuple(
        (label, *(_fmt(s.values[i], percent) for s in series)) for i, label in enumerate(labels)
    )
    return Chart(
        chart_id,
        title,
        _line_description(title, labels, series, percent),
        Markup("".join(parts)),
        ("Day", *(s.name for s in series)),
        rows,
    )


def _line_description(
    title: str, labels: Sequence[str], series: Sequence[Series], percent: bool
) -> str:
    if not labels:
        return f"{title}: no data."
    sums = []
    for s in series:
        known = [v for v in s.values if v is not None]
        if not known:
            sums.append(f"{s.name}: no data")
        elif percent:
            sums.append(f"{s.name}: from {_fmt(known[0], True)} to {_fmt(known[-1], True)}")
        else:
            sums.append(
                f"{s.name}: {_fmt(sum(known), False)} in all,"
                f" at most {_fmt(max(known), False)} a day"
            )
    return f"{title}, {labels[0]} to {labels[-1]}. " + "; ".join(sums) + "."


def bar_chart(
    chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series]
) -> Chart:
    """Horizontal bars, one group per category (purpose), one bar per series (action)."""
    left, right, top, bar, gap = 176, 56, 30, 12, 14
    group = bar * len(series) + gap
    height = top + group * max(len(categories), 1) + 8
    plot_w = WIDTH - left - right
    top_value, _ = axis(max((v or 0.0 for s in series for v in s.values), default=0.0))
    totals = [sum((s.values[i] or 0.0) for s in series) for i in range(len(categories))]
    description = (
        f"{title}. "
        + "; ".join(
            f"{c}: " + ", ".join(f"{_fmt(s.values[i], False)} {s.name.lower()}" for s in series)
            for i, c in enumerate(categories)
        )
        if categories
        else f"{title}: no data."
    )
    parts = _open(chart_id, title, description, height)
    parts += _legend(series, 16)
    for i, category in enumerate(categories):
        y0 = top + i * group
        label = category if len(category) <= 22 else category[:21] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y0 + group / 2:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for s_index, s in enumerate(series):
            value = s.values[i] or 0.0
            w = plot_w * value / top_value
            yy = y0 + s_index * bar
            parts.append(
                f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar - 2}"'
                f' class="series-{s_index}"/>'
            )
            parts.append(
                f'<text x="{left + w + 4:.1f}" y="{yy + bar - 3}" font-size="{FONT - 2}">'
                f"{escape(_fmt(value, False))}</text>"
            )
    parts.append("</svg>")
    rows = tuple(
        (c, *(_fmt(s.values[i], False) for s in series), _fmt(totals[i], False))
        for i, c in enumerate(categories)
    )
    return Chart(
        chart_id,
        title,
        description,
        Markup("".join(parts)),
        ("Purpose", *(s.name for s in series), "Total"),
        rows,
    )
