"""Server-rendered SVG charts: no script, no inline styles, colours from stylesheet classes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 12, 12, 28


def score_chart(points: Sequence[tuple[datetime, float, str]], *, pass_percent: int) -> Markup:
    """Percent per attempt in time order, with the pass mark as a dashed line."""
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def y(percent: float) -> float:
        return PAD_TOP + plot_h * (1 - max(0.0, min(100.0, percent)) / 100)

    def x(i: int) -> float:
        return PAD_LEFT + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="score-chart-title"><title id="score-chart-title">Scores of your '
        f"{len(points)} attempt(s) over time, in percent</title>"
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick}%</text>'
        )
    parts.append(
        f'<line class="pass-line" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
        f'y1="{y(pass_percent):.1f}" y2="{y(pass_percent):.1f}"/>'
    )
    if points:
        coords = " ".join(f"{x(i):.1f},{y(p):.1f}" for i, (_, p, _) in enumerate(points))
        parts.append(f'<polyline class="series" points="{coords}"/>')
        for i, (when, percent, lesson) in enumerate(points):
            cls = "dot pass" if percent >= pass_percent else "dot"
            label = escape(f"{when:%Y-%m-%d %H:%M} · {lesson} · {percent:.0f}%")
            parts.append(
                f'<circle class="{cls}" cx="{x(i):.1f}" cy="{y(percent):.1f}" r="4">'
                f"<title>{label}</title></circle>"
            )
        first, last = points[0][0], points[-1][0]
        base = HEIGHT - 8
        parts.append(f'<text class="axis" x="{PAD_LEFT}" y="{base}">{first:%Y-%m-%d}</text>')
        if len(points) > 1:
            parts.append(
                f'<text class="axis" x="{WIDTH - PAD_RIGHT}" y="{base}" '
                f'text-anchor="end">{last:%Y-%m-%d}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar(value: float, maximum: float, *, cls: str = "") -> Markup:
    """A single horizontal bar, `value` of `maximum`, that stretches to its container."""
    width = 100.0 * value / maximum if maximum > 0 else 0.0
    return Markup(
        '<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
        '<rect class="bar-track" width="100" height="10"/>'
        f'<rect class="bar-fill {escape(cls)}" width="{width:.2f}" height="10"/></svg>'
    )
