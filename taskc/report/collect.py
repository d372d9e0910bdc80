"""Find run folders, read them, and group them by (task, contract id).

A run folder is `runs/<task>/<run-id>/` holding `summary.json` (see `taskc.evaluate.run.summarise`),
`samples.jsonl`, and `contract.json` (the contract body the run used); `bench.json` (the output
of `taskc bench --out`) is read when present. Runs of different contract ids never share a group,
so they never share a column. Within a group there is one row per model: its latest run (by start
time, then run id); older runs of the same model are kept as `superseded`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from taskc.errors import TaskcError


@dataclass
class Run:
    """One run folder."""

    path: Path
    summary: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.summary.get("task") or self.path.parent.name)

    @property
    def contract_id(self) -> str:
        return str(self.summary.get("contract_id") or "unknown")

    @property
    def model(self) -> str:
        return str(self.summary.get("model_name") or self.summary.get("model") or self.path.name)

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.path.name)

    @property
    def started(self) -> str:
        return str(self.summary.get("started") or "")

    @cached_property
    def contract(self) -> dict[str, Any] | None:
        """The contract body from `contract.json` in the run folder (None when absent)."""
        return _read_json(self.path / "contract.json")

    @cached_property
    def bench(self) -> dict[str, Any] | None:
        """`bench.json` in the run folder (the output of `taskc bench --out`), when present."""
        found = _read_json(self.path / "bench.json")
        return found if isinstance(found, dict) else None

    @cached_property
    def latencies_ms(self) -> list[float]:
        """Latency of every sent, successful request of samples.jsonl (cached answers excluded)."""
        out: list[float] = []
        path = self.path / "samples.jsonl"
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        s = json.loads(line)
                    except ValueError:
                        continue
                    if s.get("error") or s.get("cached") or not isinstance(s.get("latency_s"), (int, float)):
                        continue
                    out.append(float(s["latency_s"]) * 1000.0)
        except OSError:
            pass
        return out

    # --- figures used by every table ---------------------------------------------------------
    def metric(self, name: str) -> tuple[float | None, float | None]:
        m = (self.summary.get("metrics") or {}).get(name) or {}
        return m.get("mean"), m.get("std")

    @property
    def metric_names(self) -> list[str]:
        return list((self.summary.get("metrics") or {}).keys())

    @property
    def coverage(self) -> str | None:
        """Why this run's figures cover less than the whole test split ("100 of 3080 test rows
        (--limit 100)", "interrupted: 40 of 120 samples"), or None for a complete run."""
        s = self.summary
        total = ((self.contract or {}).get("data") or {}).get("test", {}).get("rows")
        limit = (s.get("settings") or {}).get("limit")
        if s.get("partial"):
            return f"interrupted: {s.get('n')} of {s.get('planned', '?')} samples"
        if limit and (total is None or limit < total):
            return f"{s.get('rows', limit)} of {total if total is not None else '?'} test rows (--limit {limit})"
        return None

    @property
    def cost_per_million(self) -> float | None:
        return (self.summary.get("cost") or {}).get("usd_per_million_requests")

    @property
    def cost_basis(self) -> str | None:
        return (self.summary.get("cost") or {}).get("basis")

    @property
    def pricing(self) -> str | None:
        """"batch" when every answer was billed at the provider's batch price, "partial" when
        some were, "list" otherwise (None for runs that predate batch pricing or are not
        priced per token)."""
        return (self.summary.get("cost") or {}).get("pricing")

    def metric_computed(self, name: str) -> bool:
        """False for a metric the run did not compute (llm_judge under --no-judge)."""
        return ((self.summary.get("metrics") or {}).get(name) or {}).get("computed", True) is not False

    @property
    def judge_override(self) -> str | None:
        """`"<judge used> instead of the spec's <judge>"` when another judge than the spec's
        scored this run (`--judge`), else None."""
        judge = self.summary.get("judge") or {}
        if judge.get("overridden"):
            return f"{judge.get('scored_by')} instead of the spec's {judge.get('spec_judge')}"
        return None

    def latency(self, q: str) -> float | None:
        return (self.summary.get("latency_ms") or {}).get(q)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class Group:
    """The runs of one (task, contract id): one per model, best first."""

    task: str
    contract_id: str
    runs: list[Run]
    superseded: list[Run] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.task, self.contract_id

    @property
    def short_id(self) -> str:
        return self.contract_id[:8]

    @property
    def label(self) -> str:
        return f"{self.task} · {self.short_id}"

    @property
    def metrics(self) -> list[str]:
        names: list[str] = []
        for run in self.runs:
            for name in run.metric_names:
                if name not in names:
                    names.append(name)
        return names

    @property
    def primary(self) -> str | None:
        """The first metric of the contract: what the overview and the chart show."""
        return self.metrics[0] if self.metrics else None

    @property
    def contract(self) -> dict[str, Any] | None:
        for run in self.runs + self.superseded:
            if run.contract is not None:
                return run.contract
        return None

    @property
    def started(self) -> str:
        return min((r.started for r in self.runs), default="")

    @property
    def has_bench(self) -> bool:
        return any(r.bench for r in self.runs)


def find_runs(paths: Iterable[Path]) -> list[Run]:
    """Every run folder at or under `paths` (a folder holding summary.json), each once."""
    found: dict[Path, Run] = {}
    missing = []
    for path in paths:
        path = Path(path)
        if path.is_file() and path.name == "summary.json":
            path = path.parent
        if not path.exists():
            missing.append(str(path))
            continue
        candidates = [path / "summary.json"] if (path / "summary.json").is_file() else sorted(path.rglob("summary.json"))
        for summary_path in candidates:
            if any(part.startswith(".") for part in summary_path.relative_to(path).parts[:-1]):
                continue
            folder = summary_path.parent.resolve()
            if folder in found:
                continue
            summary = _read_json(summary_path)
            if isinstance(summary, dict) and "metrics" in summary:
                found[folder] = Run(summary_path.parent, summary)
    if missing:
        raise TaskcError(f"no such run folder: {', '.join(missing)}")
    return list(found.values())


def _sort_key(run: Run, primary: str | None) -> tuple:
    mean = run.metric(primary)[0] if primary else None
    return (mean is None, -(mean or 0.0), run.model)


def group_runs(runs: Iterable[Run]) -> list[Group]:
    """Runs grouped by (task, contract id), groups ordered by task then first start time; in each,
    the latest run per model, best primary metric first."""
    by_key: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_key.setdefault((run.task, run.contract_id), []).append(run)
    groups = []
    for (task, cid), members in by_key.items():
        latest: dict[str, Run] = {}
        older: list[Run] = []
        for run in sorted(members, key=lambda r: (r.started, r.run_id)):
            if run.model in latest:
                older.append(latest[run.model])
            latest[run.model] = run
        group = Group(task, cid, list(latest.values()), older)
        primary = group.primary
        group.runs.sort(key=lambda r: _sort_key(r, primary))
        groups.append(group)
    groups.sort(key=lambda g: (g.task, g.started, g.contract_id))
    return groups


def models_of(groups: Iterable[Group]) -> list[str]:
    """Every model that appears, in order of first appearance."""
    out: list[str] = []
    for group in groups:
        for run in group.runs:
            if run.model not in out:
                out.append(run.model)
    return out
