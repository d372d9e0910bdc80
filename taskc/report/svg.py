"""Two charts as self-contained SVG text (no scripts, fonts or links): accuracy against cost per
million requests on a log x-axis (one point per model), and each model's latency CDF (log x-axis).

The output is deterministic: the same runs give the same bytes.
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22")
W, H = 640, 380
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 56
FONT = 'font-family="Helvetica,Arial,sans-serif"'


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _n(x: float) -> str:
    """A coordinate, compactly and deterministically."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if x == x else "0"


def _open(title: str, standalone: bool) -> list[str]:
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    return [f'<svg{ns} width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">',
            f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>',
            f'<text x="{W / 2:.0f}" y="22" text-anchor="middle" font-size="15" font-weight="bold" {FONT}>{escape(title)}</text>']


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _money(v: float) -> str:
    if v >= 1:
        return f"${v:,.0f}"
    return f"${v:g}"


def _ms(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g} s"
    return f"{v:g} ms"


def _y_range(values: Sequence[float]) -> tuple[float, float]:
    if values and all(0.0 <= v <= 1.0 for v in values):
        return 0.0, 1.0
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or 1.0
    return lo - pad, hi + pad


def _x_ticks_and_axes(ticks: Sequence[float], x_of: Callable[[float], float], label: Callable[[float], str],
                      box: tuple[float, float, float, float], y_axis_x: float, x_title: str, y_title: str) -> list[str]:
    """Vertical grid lines and labels at `ticks`, the two axes (the y axis at `y_axis_x`) and the
    axis titles, for a plot area `box` = (left, right, top, bottom)."""
    plot_l, plot_r, plot_t, plot_b = box
    out = []
    for t in ticks:
        x = x_of(t)
        out.append(f'<line x1="{_n(x)}" y1="{plot_t}" x2="{_n(x)}" y2="{plot_b}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{_n(x)}" y="{plot_b + 18}" text-anchor="middle" font-size="11" {FONT}>{escape(label(t))}</text>')
    out.append(f'<line x1="{plot_l}" y1="{plot_b}" x2="{plot_r}" y2="{plot_b}" stroke="#333"/>')
    out.append(f'<line x1="{y_axis_x}" y1="{plot_t}" x2="{y_axis_x}" y2="{plot_b}" stroke="#333"/>')
    out.append(f'<text x="{(plot_l + plot_r) / 2:.0f}" y="{H - 14}" text-anchor="middle" font-size="12" {FONT}>'
               f'{x_title}</text>')
    out.append(f'<text x="16" y="{(plot_t + plot_b) / 2:.0f}" text-anchor="middle" font-size="12" {FONT} '
               f'transform="rotate(-90 16 {(plot_t + plot_b) / 2:.0f})">{escape(y_title)}</text>')
    return out


def accuracy_cost(points: Sequence[tuple[str, float | None, float | None]], metric: str, title: str,
                  standalone: bool = True, colors: dict[str, str] | None = None) -> str:
    """`points`: (model, cost per million requests, metric mean), on a log cost axis; models not
    priced (no cost, or 0 from a local model) or without the metric are listed under the chart."""
    plot_l, plot_r = LEFT + 20, W - RIGHT
    plot_t, plot_b = TOP + 8, H - BOTTOM
    out = _open(title, standalone)
    paid = [c for _, c, m in points if c is not None and c > 0 and m is not None]
    metrics = [m for _, c, m in points if m is not None and c is not None]
    y0, y1 = _y_range(metrics)
    if paid:
        lo, hi = min(paid), max(paid)
        if lo == hi:
            lo, hi = lo / 10, hi * 10
        ticks = _log_ticks(lo, hi)
        lx0, lx1 = math.log10(ticks[0]), math.log10(ticks[-1])
    else:
        ticks, lx0, lx1 = [], 0.0, 1.0

    def x_of(cost: float) -> float:
        if cost <= 0:
            return LEFT + 26
        return plot_l + (math.log10(cost) - lx0) / ((lx1 - lx0) or 1.0) * (plot_r - plot_l)

    def y_of(v: float) -> float:
        return plot_b - (v - y0) / ((y1 - y0) or 1.0) * (plot_b - plot_t)

    # axes and grid
    for i in range(6):
        v = y0 + (y1 - y0) * i / 5
        y = y_of(v)
        out.append(f'<line x1="{LEFT}" y1="{_n(y)}" x2="{plot_r}" y2="{_n(y)}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end" font-size="11" {FONT}>{v:.2f}</text>')
    out += _x_ticks_and_axes(ticks, x_of, _money, (plot_l, plot_r, plot_t, plot_b), LEFT,
                             "cost per million requests (USD, log scale)", metric)
    missing, unpriced = [], []
    for i, (model, cost, mean) in enumerate(points):
        if mean is None:
            missing.append(model)
            continue
        if not cost:  # a local model without gpu_hourly_usd is not priced, not free
            unpriced.append(model)
            continue
        x, y = x_of(cost), y_of(mean)
        out.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="5" fill="{(colors or {}).get(model, color(i))}" stroke="#222" stroke-width="0.5">'
                   f'<title>{escape(model)}: {mean:.3f} at {escape(_money(cost))}</title></circle>')
        anchor = "end" if x > plot_r - 120 else "start"
        dx = -8 if anchor == "end" else 8
        out.append(f'<text x="{_n(x + dx)}" y="{_n(y - 7)}" text-anchor="{anchor}" font-size="11" {FONT}>{escape(model)}</text>')
    lines = ([f"not priced (give gpu_hourly_usd to place them): {', '.join(unpriced)}"] if unpriced else []) + (
        [f"no {metric}: {', '.join(missing)}"] if missing else [])
    for k, line in enumerate(lines):
        out.append(f'<text x="{LEFT}" y="{H - 30 + 12 * k}" font-size="10" fill="#666" {FONT}>{escape(line)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _cdf_points(values: Sequence[float], max_steps: int = 200) -> list[tuple[float, float]]:
    """The empirical CDF as a step line: at each value it rises from i/n to (i+1)/n (every value
    when there are at most `max_steps`, else evenly spaced ranks)."""
    ordered = sorted(v for v in values if v > 0)
    n = len(ordered)
    if not n:
        return []
    idx = list(range(n)) if n <= max_steps else sorted({round(k * (n - 1) / (max_steps - 1)) for k in range(max_steps)})
    out: list[tuple[float, float]] = []
    prev = 0
    for i in idx:
        out.append((ordered[i], prev / n))
        out.append((ordered[i], (i + 1) / n))
        prev = i + 1
    return out


def latency_cdf(series: Sequence[tuple[str, Sequence[float]]], title: str, standalone: bool = True,
                colors: dict[str, str] | None = None) -> str:
    """`series`: (model, latencies in ms). One step-free CDF line per model on a log x-axis."""
    plot_l, plot_r = LEFT, W - RIGHT - 150
    plot_t, plot_b = TOP + 8, H - BOTTOM
    out = _open(title, standalone)
    allv = [v for _, vs in series for v in vs if v > 0]
    if not allv:
        out.append(f'<text x="{W / 2:.0f}" y="{H / 2:.0f}" text-anchor="middle" font-size="12" {FONT}>no latencies recorded</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"
    ticks = _log_ticks(min(allv), max(allv))
    if len(ticks) < 2:
        ticks = [ticks[0], ticks[0] * 10]
    lx0, lx1 = math.log10(ticks[0]), math.log10(ticks[-1])

    def x_of(v: float) -> float:
        return plot_l + (math.log10(v) - lx0) / ((lx1 - lx0) or 1.0) * (plot_r - plot_l)

    def y_of(p: float) -> float:
        return plot_b - p * (plot_b - plot_t)

    for i in range(5):
        p = i / 4
        y = y_of(p)
        out.append(f'<line x1="{plot_l}" y1="{_n(y)}" x2="{plot_r}" y2="{_n(y)}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{plot_l - 6}" y="{_n(y + 4)}" text-anchor="end" font-size="11" {FONT}>{p:.2f}</text>')
    out += _x_ticks_and_axes(ticks, x_of, _ms, (plot_l, plot_r, plot_t, plot_b), plot_l,
                             "latency per request (log scale)", "fraction of requests")
    legend_y = plot_t + 4
    for i, (model, values) in enumerate(series):
        pts = _cdf_points(values)
        c = (colors or {}).get(model, color(i))
        if not pts:
            out.append(f'<text x="{plot_r + 12}" y="{legend_y + 4}" font-size="11" fill="#555" {FONT}>{escape(model[:18])}:</text>')
            out.append(f'<text x="{plot_r + 12}" y="{legend_y + 17}" font-size="10" fill="#555" {FONT}>no latency above 0</text>')
            legend_y += 34
            continue
        path = " ".join(f"{_n(x_of(v))},{_n(y_of(p))}" for v, p in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2">'
                   f'<title>{escape(model)}</title></polyline>')
        ordered = sorted(values)
        p50 = ordered[len(ordered) // 2]
        out.append(f'<line x1="{plot_r + 12}" y1="{legend_y}" x2="{plot_r + 30}" y2="{legend_y}" stroke="{c}" stroke-width="3"/>')
        out.append(f'<text x="{plot_r + 34}" y="{legend_y + 4}" font-size="11" {FONT}>{escape(model[:18])}</text>')
        out.append(f'<text x="{plot_r + 34}" y="{legend_y + 17}" font-size="10" fill="#555" {FONT}>'
                   f'p50 {escape(_fmt_ms(p50))}, n={len(ordered)}</text>')
        legend_y += 34
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _fmt_ms(v: float) -> str:
    if v < 1:
        return f"{v:.3f} ms"
    if v < 100:
        return f"{v:.1f} ms"
    return f"{v:,.0f} ms"
