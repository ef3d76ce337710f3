"""Line charts drawn on the server as inline SVG: no script, nothing fetched, readable without
the picture (a ``<title>`` and a ``<desc>`` that says what it shows; the page puts the same
values in a data table beside it)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Final

__all__ = ["line_chart"]

_WIDTH: Final = 640
_HEIGHT: Final = 240
_LEFT: Final = 64
_RIGHT: Final = 16
_TOP: Final = 16
_BOTTOM: Final = 40
#: One colour per series, each with a contrast above 4.5:1 on white (WCAG 1.4.11 asks 3:1).
_COLOURS: Final = ("#1d4e89", "#8a2c0d")
_DASHES: Final = ("", ' stroke-dasharray="6 4"')


def _number(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    series: Sequence[tuple[str, Sequence[tuple[datetime, float]]]],
    *,
    unit: str,
    day: str = "%d/%m/%Y",
) -> str:
    """An SVG line chart of one or two series sharing the time axis.

    :param chart_id: a prefix for the ids of the ``<title>`` and ``<desc>`` (unique on the page).
    :param series: (name, points) pairs; points are (time, value), in any order.
    :param unit: the unit shown beside the values of the vertical axis.
    :return: the ``<svg>`` element, every text escaped.
    """
    e = html.escape
    points = [p for _, values in series for p in values]
    if not points:
        return ""
    times = [p[0].timestamp() for p in points]
    values = [p[1] for p in points]
    t0, t1 = min(times), max(times)
    v0, v1 = min(values), max(values)
    if v1 == v0:
        v0, v1 = v0 - 1, v1 + 1
    if t1 == t0:
        t0, t1 = t0 - 43_200, t1 + 43_200
    inner_w = _WIDTH - _LEFT - _RIGHT
    inner_h = _HEIGHT - _TOP - _BOTTOM

    def x(moment: datetime) -> float:
        return _LEFT + (moment.timestamp() - t0) / (t1 - t0) * inner_w

    def y(value: float) -> float:
        return _TOP + (v1 - value) / (v1 - v0) * inner_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-labelledby="{e(chart_id)}-title {e(chart_id)}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{e(chart_id)}-title">{e(title)}</title>',
        f'<desc id="{e(chart_id)}-desc">{e(description)}</desc>',
        f'<rect x="0" y="0" width="{_WIDTH}" height="{_HEIGHT}" fill="#ffffff"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + inner_h}" stroke="#444"/>',
        f'<line x1="{_LEFT}" y1="{_TOP + inner_h}" x2="{_WIDTH - _RIGHT}" '
        f'y2="{_TOP + inner_h}" stroke="#444"/>',
    ]
    for value in (v0, (v0 + v1) / 2, v1):
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#222">{e(_number(value))}</text>'
        )
        parts.append(
            f'<line x1="{_LEFT}" y1="{y(value):.1f}" x2="{_WIDTH - _RIGHT}" y2="{y(value):.1f}" '
            'stroke="#ddd"/>'
        )
    first = min(points)[0]
    last = max(points)[0]
    parts.append(
        f'<text x="{_LEFT}" y="{_HEIGHT - 12}" font-size="12" fill="#222">'
        f"{e(first.strftime(day))}</text>"
    )
    parts.append(
        f'<text x="{_WIDTH - _RIGHT}" y="{_HEIGHT - 12}" text-anchor="end" font-size="12" '
        f'fill="#222">{e(last.strftime(day))}</text>'
    )
    parts.append(f'<text x="6" y="{_TOP + 4}" font-size="12" fill="#222">{e(unit)}</text>')
    for number, (_name, values_) in enumerate(series):
        ordered = sorted(values_)
        if not ordered:
            continue
        colour = _COLOURS[number % len(_COLOURS)]
        dash = _DASHES[number % len(_DASHES)]
        coordinates = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in ordered)
        parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dash}/>'
        )
        parts.extend(
            f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>' for t, v in ordered
        )
    parts.append("</svg>")
    return "".join(parts)
