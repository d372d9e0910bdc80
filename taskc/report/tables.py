"""The report's tables as plain rows of strings, rendered to the terminal (rich), Markdown and CSV.

Overview: one row per model, one column per (task, contract id) holding its first metric's
mean ± std. Detail, per (task, contract id): one row per model with every metric (mean ± std over
repeats), rows, invalid rate, errors, cost per million requests, p50/p95 latency and requests/s of
the eval run, and, when a `bench.json` sits in the run folder, the load test's sustained
requests/s and p95.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from taskc.report.collect import Group, Run, models_of
from taskc.report.diff import describe


def fmt_metric(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3f} ± {std or 0.0:.3f}"


#: What the cost cell says after the figure when batch pricing applied.
PRICING_MARK = {"batch": " batch", "partial": " part batch"}
#: The mark on a metric scored by another judge than the spec's.
JUDGE_MARK = " †"


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def fmt_cost(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.3g}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if value < 1:
        return f"{value:.3g}"
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_rps(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def overview(groups: Sequence[Group]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): models x (task, contract) groups, the first metric of each."""
    header = ["model"] + [f"{g.label} {g.primary or ''}".rstrip() for g in groups]
    rows = []
    for model in models_of(groups):
        row = [model]
        for g in groups:
            run = next((r for r in g.runs if r.model == model), None)
            row.append(fmt_metric(*run.metric(g.primary)) if run is not None and g.primary else "")
        rows.append(row)
    return header, rows


def detail_header(group: Group) -> list[str]:
    header = ["model"] + list(group.metrics) + ["n", "invalid", "errors", "$/1M requests", "p50 ms", "p95 ms", "req/s"]
    if group.has_bench:
        header += ["load req/s", "load p95 ms"]
    return header


def metric_cell(run: Run, name: str) -> str:
    """mean ± std, "not computed" (--no-judge), with a mark when another judge scored it."""
    if not run.metric_computed(name):
        return "not computed"
    cell = fmt_metric(*run.metric(name))
    return cell + JUDGE_MARK if name == "llm_judge" and run.judge_override and cell != "-" else cell


def cost_cell(run: Run) -> str:
    """The price actually paid per million requests, marked when batch pricing applied; a local
    model without a GPU-hour price is "not priced", never $0."""
    if run.cost_basis == "local" and not run.cost_per_million:  # None, or 0 in summaries before 0.1.1
        return "not priced"
    cost = fmt_cost(run.cost_per_million)
    return cost + PRICING_MARK.get(run.pricing or "", "") if cost != "-" else cost


#: The mark on the n of a run that covers less than the whole test split.
COVERAGE_MARK = " ‡"


def coverage_notes(group: Group) -> list[str]:
    """One line per run that covers less than the test split (--limit, interrupted), when the
    table holds others: its figures are not comparable with theirs."""
    tail = ": not comparable with the full runs in this table" if len(group.runs) >= 2 else ""
    return [f"{COVERAGE_MARK.strip()} {r.model}: {r.coverage}{tail}" for r in group.runs if r.coverage]


def judge_notes(group: Group) -> list[str]:
    """One line per run judged by another judge than the spec's."""
    return [f"{JUDGE_MARK.strip()} {run.model}: llm_judge scored by {run.judge_override}"
            for run in group.runs if run.judge_override]


def group_notes(group: Group) -> list[str]:
    """The notes under a group's table: partial runs, then judges other than the spec's."""
    return coverage_notes(group) + judge_notes(group)


def detail_row(group: Group, run: Run) -> list[str]:
    s = run.summary
    row = [run.model] + [metric_cell(run, m) for m in group.metrics]
    row += [str(s.get("n", "-")) + (COVERAGE_MARK if run.coverage else ""), fmt_rate(s.get("invalid_rate")),
            str(s.get("errors", "-")),
            cost_cell(run), fmt_ms(run.latency("p50")), fmt_ms(run.latency("p95")),
            fmt_rps(s.get("requests_per_s"))]
    if group.has_bench:
        bench = run.bench or {}
        row += [fmt_rps(bench.get("requests_per_s")), fmt_ms((bench.get("latency_ms") or {}).get("p95"))]
    return row


def detail(group: Group) -> tuple[list[str], list[list[str]]]:
    return detail_header(group), [detail_row(group, r) for r in group.runs]


def contract_notes(groups: Sequence[Group]) -> dict[str, list[str]]:
    """Per task with several contract ids: one line per other contract saying why it differs from
    the first (oldest) one."""
    by_task: dict[str, list[Group]] = {}
    for g in groups:
        by_task.setdefault(g.task, []).append(g)
    notes = {}
    for task, gs in by_task.items():
        if len(gs) < 2:
            continue
        base = gs[0]
        notes[task] = [describe(base, other) for other in gs[1:]]
    return notes


def superseded_note(group: Group) -> str | None:
    if not group.superseded:
        return None
    names = sorted({r.model for r in group.superseded})
    return (f"{len(group.superseded)} older run(s) of {', '.join(names)} with this contract not shown "
            f"(the latest run of each model is)")


# --- Markdown ------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---"] + ["---:" for _ in header[1:]]
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(groups: Sequence[Group], charts: dict[tuple[str, str], dict[str, str]] | None = None,
             title: str = "taskc report") -> str:
    """The whole report as Markdown; `charts` maps a group key to {"accuracy_cost": path,
    "latency": path} (relative to the Markdown file) for image links."""
    blocks = [f"# {title}"]
    if len(groups) > 1:
        blocks.append("First metric of each task and contract, mean ± std over repeats:")
        blocks.append(md_table(*overview(groups)))
    notes = contract_notes(groups)
    for g in groups:
        blocks.append(f"## {g.task} · contract {g.contract_id[:12]}")
        blocks.append(md_table(*detail(g)))
        note = superseded_note(g)
        if note:
            blocks.append(f"{note}.")
        lines = group_notes(g)
        if lines:
            blocks.append("\n".join(f"{line}  " for line in lines))
        paths = (charts or {}).get(g.key)
        if paths:
            images = []
            if paths.get("accuracy_cost"):
                images.append(f"![{g.primary} against cost per million requests]({paths['accuracy_cost']})")
            if paths.get("latency"):
                images.append(f"![latency distribution per model]({paths['latency']})")
            blocks.append("\n".join(images + [f"{line}  " for line in paths.get("notes", ())]))
    if notes:
        blocks.append("## Contracts that differ")
        lines = ["Runs of different contracts never share a column. What changed:", ""]
        lines += [f"- {task}: {line}" for task, lines_ in notes.items() for line in lines_]
        blocks.append("\n".join(lines))
    blocks.append(_legend(groups))
    return "\n\n".join(b.strip("\n") for b in blocks) + "\n"


def batch_legend(groups: Sequence[Group]) -> str:
    """The legend's sentence on batch pricing, when a run shown used it ("" otherwise)."""
    if not any(r.pricing in PRICING_MARK for g in groups for r in g.runs):
        return ""
    return (" batch: the price paid through the provider's batch API (the list price less its batch discount); "
            "part batch: some answers at that price, the rest at the list price.")


def _legend(groups: Sequence[Group] = ()) -> str:
    return ("<sub>Metrics: mean ± std over repeats. invalid: outputs that broke the output contract. "
            "$/1M requests: from token prices or gpu_hourly_usd (not priced: a local model without one). p50/p95 ms and req/s: the eval "
            "run's own (load req/s and p95: `taskc bench`, when bench.json is in the run folder)."
            + batch_legend(groups) + "</sub>\n")


# --- CSV -----------------------------------------------------------------------------------------
def csv_text(groups: Sequence[Group]) -> str:
    """One row per run shown, every figure unformatted; metrics as `<name>_mean` / `<name>_std`."""
    metrics: list[str] = []
    for g in groups:
        for m in g.metrics:
            if m not in metrics:
                metrics.append(m)
    header = ["task", "contract_id", "model", "backend", "run_id", "n"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std"]
    header += ["invalid_rate", "errors", "usd_per_million_requests", "cost_basis", "latency_p50_ms",
               "latency_p95_ms", "requests_per_s", "load_requests_per_s", "load_latency_p95_ms", "pricing",
               "judge", "judge_overridden"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for g in groups:
        for r in g.runs:
            s = r.summary
            row: list[Any] = [g.task, g.contract_id, r.model, s.get("backend", ""), r.run_id, s.get("n", "")]
            for m in metrics:
                mean, std = r.metric(m) if m in r.metric_names else (None, None)
                row += [_raw(mean), _raw(std)]
            bench = r.bench or {}
            row += [_raw(s.get("invalid_rate")), _raw(s.get("errors")), _raw(r.cost_per_million), r.cost_basis or "",
                    _raw(r.latency("p50")), _raw(r.latency("p95")), _raw(s.get("requests_per_s")),
                    _raw(bench.get("requests_per_s")), _raw((bench.get("latency_ms") or {}).get("p95")),
                    r.pricing or "", (s.get("judge") or {}).get("scored_by") or "",
                    _raw((s.get("judge") or {}).get("overridden"))]
            writer.writerow(row)
    return buf.getvalue()


def _raw(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 9))
    return str(value)


# --- terminal ------------------------------------------------------------------------------------
def print_terminal(groups: Sequence[Group], console=None) -> None:
    """The tables with rich (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: do not squeeze the tables into 80 columns
            console = Console(width=200)

    def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
        t = Table(title=title, title_justify="left", show_lines=False)
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for row in rows:
            t.add_row(*row)
        return t

    if len(groups) > 1:
        console.print(table("first metric per task and contract (mean ± std)", *overview(groups)))
    for g in groups:
        console.print(table(f"{g.task} · contract {g.contract_id[:12]}", *detail(g)))
        note = superseded_note(g)
        if note:
            console.print(f"  {note}", style="dim")
        for line in group_notes(g):
            console.print(f"  {line}", markup=False)
    for task, lines in contract_notes(groups).items():
        for line in lines:
            console.print(f"{task}: contracts differ: {line}", markup=False)
