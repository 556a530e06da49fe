"""A predict-then-run review's charts: loss and accuracy per epoch as server-rendered SVG, in the
style of app/accounts/charts.py (no script, no inline styles, colours from stylesheet classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 28


def _x(epoch: int, epochs: int) -> float:
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    return PAD_LEFT + (plot_w * (epoch - 1) / (epochs - 1) if epochs > 1 else plot_w / 2)


def _y(value: float, top: float) -> float:
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    share = max(0.0, min(1.0, value / top)) if top > 0 else 0.0
    return PAD_TOP + plot_h * (1 - share)


def _chart(
    chart_id: str,
    title: str,
    series: Sequence[tuple[str, str, Sequence[tuple[int, float]]]],
    *,
    top: float,
    ticks: Sequence[tuple[float, str]],
    epochs: int,
) -> Markup:
    """Lines of (epoch, value) points on a 0..top scale, each series with a stylesheet class."""
    parts = [
        f'<svg class="chart run-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title"><title id="{chart_id}-title">{escape(title)}</title>'
    ]
    for value, label in ticks:
        y = _y(value, top)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/><text class="axis" x="{PAD_LEFT - 6}" '
            f'y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    for cls, name, points in series:
        if not points:
            continue
        coords = " ".join(f"{_x(e, epochs):.1f},{_y(v, top):.1f}" for e, v in points)
        parts.append(f'<polyline class="series {cls}" points="{coords}"><title>{escape(name)}')
        parts.append("</title></polyline>")
    base = HEIGHT - 8
    parts.append(f'<text class="axis" x="{PAD_LEFT}" y="{base}">epoch 1</text>')
    if epochs > 1:
        parts.append(
            f'<text class="axis" x="{WIDTH - PAD_RIGHT}" y="{base}" '
            f'text-anchor="end">epoch {epochs}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def loss_chart(chart_id: str, history: Sequence[dict[str, Any]]) -> Markup:
    """Training loss per epoch (epochs whose loss stopped being finite are left out)."""
    points = [(row["epoch"], float(row["loss"])) for row in history if row["loss"] is not None]
    top = max((v for _, v in points), default=1.0) or 1.0
    ticks = [(top * share, f"{top * share:.3g}") for share in (0, 0.5, 1)]
    return _chart(
        chart_id,
        f"Training loss over {len(history)} epoch(s), from {points[0][1]:.3g} to "
        f"{points[-1][1]:.3g}"
        if points
        else "Training loss: no finite value",
        [("loss", "training loss", points)],
        top=top,
        ticks=ticks,
        epochs=max(len(history), 1),
    )


def accuracy_chart(chart_id: str, history: Sequence[dict[str, Any]]) -> Markup:
    """Training and test accuracy per epoch, 0-100%."""
    train = [(row["epoch"], 100 * row["train_accuracy"]) for row in history]
    test = [(row["epoch"], 100 * row["test_accuracy"]) for row in history]
    last = history[-1] if history else None
    title = (
        f"Accuracy over {len(history)} epoch(s): training ends at "
        f"{100 * last['train_accuracy']:.1f}%, test at {100 * last['test_accuracy']:.1f}%"
        if last
        else "Accuracy: no epoch finished"
    )
    return _chart(
        chart_id,
        title,
        [("train", "training accuracy", train), ("test", "test accuracy", test)],
        top=100.0,
        ticks=[(0, "0%"), (50, "50%"), (100, "100%")],
        epochs=max(len(history), 1),
    )
