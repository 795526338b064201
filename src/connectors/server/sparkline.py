"""Inline SVG sparklines for the dashboard (no JavaScript, no external assets).

:func:`sparkline` draws a series of numbers as a polyline scaled into a small box; missing
points (``None``: a time slice with no calls) break the line into segments. The output is a
complete ``<svg>`` element with a ``<title>`` for screen readers and hover; every number is
formatted by this module, and the label is escaped, so the markup is safe to embed as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

__all__ = ["points", "sparkline"]


def points(
    values: Sequence[float | None], *, width: float, height: float, floor: float | None = 0.0
) -> list[list[tuple[float, float]]]:
    """Segments of ``(x, y)`` points in SVG coordinates (y grows downwards), one per run of
    present values. ``floor``: the bottom of the scale (``None``: the series minimum)."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not values or not present:
        return []
    low = min(present) if floor is None else min(floor, min(present))
    high = max(present)
    span = high - low or 1.0
    step = width / (len(values) - 1) if len(values) > 1 else 0.0
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for index, value in enumerate(values):
        if value is None or not math.isfinite(value):
            if current:
                segments.append(current)
                current = []
            continue
        x = index * step if len(values) > 1 else width / 2
        y = height - (value - low) / span * height
        current.append((round(x, 2), round(y, 2)))
    if current:
        segments.append(current)
    return segments


def sparkline(
    values: Sequence[float | None],
    *,
    label: str,
    width: int = 120,
    height: int = 28,
    css_class: str = "spark",
) -> Markup:
    """An ``<svg>`` sparkline of ``values`` titled ``label`` (empty frame when no data)."""
    pad = 2.0
    segments = points(values, width=width - 2 * pad, height=height - 2 * pad)
    parts = [
        f'<svg class="{escape(css_class)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
    ]
    for segment in segments:
        if len(segment) == 1:
            x, y = segment[0]
            parts.append(f'<circle cx="{x + pad}" cy="{y + pad}" r="1.5"/>')
            continue
        coords = " ".join(f"{x + pad},{y + pad}" for x, y in segment)
        parts.append(f'<polyline fill="none" points="{coords}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is escaped or numeric
