"""A self-contained HTML page: the tables and inline SVG charts, no scripts, no network."""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

from taskc.report.collect import Group, models_of
from taskc.report.svg import PALETTE, accuracy_cost, latency_cdf
from taskc.report.tables import (batch_legend, contract_notes, detail, group_notes, overview,
                                 superseded_note)

CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.note { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def model_colors(groups: Sequence[Group]) -> dict[str, str]:
    """One color per model, the same in every chart."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models_of(groups))}


def charts_for(group: Group, colors: dict[str, str], standalone: bool) -> dict[str, Any]:
    """The SVG charts of a group that have something to show (`accuracy_cost`, `latency`), and
    for each one left out a line saying why (`notes`)."""
    metric = group.primary or "metric"
    points = [(r.model, r.cost_per_million, r.metric(metric)[0] if group.primary else None) for r in group.runs]
    series = [(r.model, r.latencies_ms) for r in group.runs]
    out: dict[str, Any] = {"notes": []}
    if any(cost and mean is not None for _, cost, mean in points):
        out["accuracy_cost"] = accuracy_cost(points, metric, f"{group.task}: {metric} against cost", standalone, colors)
    else:
        out["notes"].append(f"{group.task}: no {metric}-against-cost chart: no model here has a price "
                            "(local models are priced by gpu_hourly_usd in models.yaml)")
    if any(v > 0 for _, values in series for v in values):
        out["latency"] = latency_cdf(series, f"{group.task}: latency per request", standalone, colors)
    else:
        out["notes"].append(f"{group.task}: no latency chart: no request of these runs took measurable time "
                            "(answers from the cache, or from in-process backends that answer in one batch)")
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(groups: Sequence[Group], title: str = "taskc report") -> str:
    colors = model_colors(groups)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title)}</title><style>{CSS}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    if len(groups) > 1:
        parts.append("<p>First metric of each task and contract, mean ± std over repeats.</p>")
        parts.append(_table(*overview(groups)))
    for g in groups:
        parts.append(f"<h2>{escape(g.task)} · contract <code>{escape(g.contract_id[:12])}</code></h2>")
        parts.append(_table(*detail(g)))
        note = superseded_note(g)
        if note:
            parts.append(f'<p class="note">{escape(note)}.</p>')
        parts.extend(f'<p class="note">{escape(line)}</p>' for line in group_notes(g))
        charts = charts_for(g, colors, standalone=False)
        svgs = charts.get("accuracy_cost", "") + charts.get("latency", "")
        if svgs:
            parts.append(f'<div class="charts">{svgs}</div>')
        parts.extend(f'<p class="note">{escape(line)}.</p>' for line in charts["notes"])
    notes = contract_notes(groups)
    if notes:
        parts.append("<h2>Contracts that differ</h2><p>Runs of different contracts never share a column. What changed:</p><ul>")
        for task, lines in notes.items():
            parts.extend(f"<li>{escape(task)}: {escape(line)}</li>" for line in lines)
        parts.append("</ul>")
    parts.append('<p class="note">Metrics: mean ± std over repeats. invalid: outputs that broke the output contract. '
                 "$/1M requests: from token prices or gpu_hourly_usd (not priced: a local model without one). p50/p95 ms and req/s: the eval run's own; "
                 "load req/s and p95: <code>taskc bench</code> (bench.json in the run folder)." + escape(batch_legend(groups))
                 + " Runs: "
                 + escape(", ".join(str(r.path) for g in groups for r in g.runs)) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
