"""Small inline SVG charts drawn on the server: a queue's rate and lag over the last hour, no JavaScript.

Pure: numbers in, markup out. Each series is scaled to its own largest value
(the figures beside the chart say what that is); a line breaks where samples
are missing, so a stopped worker shows as a gap, not as a slope.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: (when, value); a value of None is a sample without that figure.
Point = tuple[datetime, float | None]


@dataclass(frozen=True)
class Series:
    """One line of a chart: its points, oldest first, and the CSS class that colours it."""

    points: Sequence[Point]
    css_class: str
    #: Fill the area under the line (the rate), or draw the line alone (the lag).
    area: bool = False
    #: The top of the scale is at least this: noise on an idle queue (a lag of 0.3 s, then 0) stays flat.
    floor: float = 0.0

    @property
    def peak(self) -> float:
        return max((value for _, value in self.points if value is not None), default=0.0)


def _path(series: Series, start: datetime, end: datetime, max_gap: timedelta, width: float, height: float,
          top: float) -> str:
    span = (end - start).total_seconds() or 1.0
    peak = max(series.peak, series.floor) or 1.0
    runs: list[list[tuple[float, float]]] = []
    previous: datetime | None = None
    for when, value in series.points:
        if value is None or when < start:
            previous = None
            continue
        x = round((when - start).total_seconds() / span * width, 1)
        y = round(height - (value / peak) * (height - top), 1)
        if previous is None or when - previous > max_gap:
            runs.append([])
        runs[-1].append((x, y))
        previous = when
    parts = []
    for run in runs:
        line = "M{},{} ".format(*run[0]) + " ".join("L{},{}".format(*point) for point in run[1:])
        if len(run) == 1:
            line += " l0.1,0"  # one sample alone: a dot (the line's round cap), not nothing
        if series.area and len(run) > 1:
            line += f" L{run[-1][0]},{height} L{run[0][0]},{height} Z"
        parts.append(line)
    return " ".join(parts)


def line_chart(series: Sequence[Series], start: datetime, end: datetime, max_gap: timedelta, label: str,
               width: int = 180, height: int = 36) -> SafeString:
    """An inline ``<svg>`` of ``series`` between ``start`` and ``end``, described by ``label`` (its title).

    >>> t = datetime(2026, 1, 1)
    >>> svg = line_chart([Series([(t, 1.0), (t + timedelta(minutes=1), 3.0)], "rate", area=True)],
    ...                  t, t + timedelta(minutes=2), timedelta(minutes=3), "rate <up to 3/s>", width=100, height=20)
    >>> svg.count("<path"), 'd="M0.0,14.0 L50.0,2.0 L50.0,20 L0.0,20 Z"' in svg, "&lt;up to 3/s&gt;" in svg
    (1, True, True)
    """
    label = escape(label)
    shapes = [f'<line class="axis" x1="0" y1="{height}" x2="{width}" y2="{height}"/>']
    for one in series:
        d = _path(one, start, end, max_gap, width, height, top=2)
        if d:
            kind = "area" if one.area else "line"
            shapes.append(f'<path class="{escape(one.css_class)} {kind}" d="{d}"/>')
    # Numbers and escaped text only: safe to mark so.
    return mark_safe(f'<svg class="relay-chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
                     f'role="img" aria-label="{label}"><title>{label}</title>' + "".join(shapes) + "</svg>")
