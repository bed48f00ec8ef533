"""The failure chart: dead letters per hour over 24 h as inline SVG, with axes and labels.

Server-rendered (the page's CSP allows no scripts and no external files) and scaled by its
viewBox, so the same markup fits 1280 px and a 390 px phone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

# Narrow on purpose: on a 390 px phone the viewBox shrinks by 0.75, so 14-unit text stays legible.
WIDTH, HEIGHT = 480, 250
LEFT, RIGHT, TOP, BOTTOM = 50, 14, 38, 52  # margins: y labels, title, x labels
TITLE = "Dead letters per hour, last 24 h (UTC)"
LABEL_EVERY = 6  # hours between x-axis labels: they do not collide at phone width


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def nice_ticks(top: int) -> list[int]:
    """Whole-number y ticks from 0 up to at least `top`, at most 5 of them, on 1-2-5 steps."""
    top = max(top, 1)
    step = 1
    while -(-top // step) > 4:  # ceil(top / step) intervals, at most 4
        for factor in (2, 2.5, 2):  # 1 -> 2 -> 5 -> 10 -> 20 -> 50 ...
            step = int(step * factor)
            if -(-top // step) <= 4:
                break
    return [step * i for i in range(-(-top // step) + 1)]


def _clock(hour: str) -> str:
    """ "2026-12-02T10:00Z" -> "10:00"."""
    return hour[11:16] if len(hour) >= 16 else hour


def chart_svg(hourly: Sequence[Mapping[str, Any]]) -> str:
    """Bars per hour (oldest left), y axis with ticks, x axis labelled every 4 h, a title."""
    counts = [int(h["count"]) for h in hourly]
    ticks = nice_ticks(max(counts, default=0))
    scale_top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot = plot_w / max(len(hourly), 1)
    parts = [
        f"<title>{_e(TITLE)}</title>",
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">'
        f"{_e(TITLE)}</text>",
    ]
    for tick in ticks:
        y = base - plot_h * tick / scale_top
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 5:.1f}" text-anchor="end" font-size="14">{tick}</text>'
        )
    for i, (hour, count) in enumerate(zip(hourly, counts, strict=True)):
        h = plot_h * count / scale_top
        x = LEFT + i * slot
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{base - h:.1f}" width="{slot - 2:.1f}" height="{h:.1f}" '
            f'fill="#c62828"><title>{_e(_clock(str(hour["hour"])))} UTC: {count}</title></rect>'
        )
        if i % LABEL_EVERY == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base + 20}" text-anchor="middle" '
                f'font-size="14">{_e(_clock(str(hour["hour"])))}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#333"/>'
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#333"/>'
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="14">'
        "hour starting (UTC)</text>"
        f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        'font-size="14">dead letters</text>'
    )
    return (
        f'<svg class="chart" role="img" aria-label="{_e(_spoken(hourly, counts))}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="xMidYMid meet" '
        f'font-family="system-ui,sans-serif">{"".join(parts)}</svg>'
    )


def _spoken(hourly: Sequence[Mapping[str, Any]], counts: Sequence[int]) -> str:
    """The chart in one sentence, for screen readers."""
    if not counts:
        return f"{TITLE}: no data"
    peak = max(range(len(counts)), key=lambda i: counts[i])
    return (
        f"{TITLE}: {sum(counts)} in total, at most {counts[peak]} "
        f"(hour starting {_clock(str(hourly[peak]['hour']))})"
    )
