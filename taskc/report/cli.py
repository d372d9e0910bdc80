"""The terminal side of `taskc report`: find runs, print the tables, write the files asked for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from taskc.errors import TaskcError


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-") or "task"


def write_charts(groups, folder: Path) -> dict[tuple[str, str], dict[str, Path]]:
    """Both SVG charts of every group into `folder`: `<task>-<contract8>-accuracy-cost.svg` and
    `<task>-<contract8>-latency.svg`."""
    from taskc.report.html import charts_for, model_colors

    folder.mkdir(parents=True, exist_ok=True)
    colors = model_colors(groups)
    out = {}
    for g in groups:
        charts = charts_for(g, colors, standalone=True)
        paths: dict = {"notes": charts["notes"]}
        for kind, name in (("accuracy_cost", "accuracy-cost"), ("latency", "latency")):
            if kind in charts:
                path = folder / f"{_slug(g.task)}-{g.short_id}-{name}.svg"
                path.write_text(charts[kind], encoding="utf-8")
                paths[kind] = path
        out[g.key] = paths
    return out


def report_command(runs: Sequence[Path], *, html: Path | None = None, markdown: Path | None = None,
               csv: Path | None = None, charts: Path | None = None, title: str = "taskc report",
               quiet: bool = False) -> int:
    """Run `taskc report`; returns the exit code (0; a TaskcError when no run is found)."""
    from taskc.report.collect import find_runs, group_runs
    from taskc.report.html import html_page
    from taskc.report.tables import csv_text, markdown as markdown_text, print_terminal

    found = find_runs(runs or [Path("runs")])
    if not found:
        raise TaskcError(f"no run folders (with summary.json) under {', '.join(str(r) for r in runs) or 'runs'}")
    groups = group_runs(found)
    if not quiet:
        print_terminal(groups)
    chart_paths = write_charts(groups, charts) if charts is not None else {}
    if markdown is not None:
        base = markdown.parent.resolve()
        links = {key: {k: (p if k == "notes" else Path(os.path.relpath(p.resolve(), base)).as_posix())
                       for k, p in paths.items()}
                 for key, paths in chart_paths.items()}
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(markdown_text(groups, links, title=title), encoding="utf-8")
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_text(csv_text(groups), encoding="utf-8")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(html_page(groups, title=title), encoding="utf-8")
    written = [str(p) for p in (markdown, csv, html) if p is not None] + [str(p) for ps in chart_paths.values() for p in ps.values()]
    if written and not quiet:
        print("wrote " + ", ".join(written))
    return 0
