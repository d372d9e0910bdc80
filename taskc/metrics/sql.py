"""SQL metrics: `execution_match` and `test_suite_match`.

`execution_match` runs the predicted and the gold query on the example's database in the
read-only sandbox (`taskc.metrics.sql_exec`) and compares the results: as multisets of rows,
or as sequences when the gold query has a top-level ORDER BY; integral floats equal ints,
other floats compare at 10 significant digits; column order, types and NULLs matter. Results
of any size are compared, by fingerprint, in bounded memory: no row count decides a score.

`test_suite_match` scores 1 only when the prediction also matches gold on `variants`
generated databases (`taskc.metrics.sql_variants`), which tells apart queries that agree on
the real data by accident. A variant on which the gold query itself fails is skipped.

A prediction that fails or is denied scores 0 with the reason in `detail`; one that runs past
`timeout_s` scores 0 with `{"reason": "timeout", "timeout_s": t}` (plus `"variant": i` on a
variant), and once `budget_s` is spent the remaining predictions score 0 with
`{"reason": "timeout", "budget_s": b}`. `aggregate` counts these apart as `timeouts`.

`score` runs in the calling process; `score_many` scores a batch across worker processes
(`taskc.metrics.sql_pool`), which also bounds a single long SQLite call by killing the worker.

Options: `timeout_s` (default 2.0: CPU seconds inside SQLite per query, its wall time capped at
4 times that), `budget_s` (default none: the wall-clock seconds this metric may spend scoring
in one run), `max_rows` (accepted for older specs, no effect); test_suite_match adds
`variants` (default 3) and `seed` (default 0).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any, Sequence

from taskc.metrics.base import (Metric, MetricInput, MetricScore, invalid_score, mean_aggregate,
                                option_message)
from taskc.metrics.batch import count_timeouts, is_timeout
from taskc.metrics.sql_exec import (DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, clean_sql, compare_on,
                                    run_gold)

__all__ = ["ExecutionMatch", "TestSuiteMatch", "budget_detail"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def budget_detail(budget_s: float) -> dict:
    """The detail of a prediction left unscored because the run's budget was spent."""
    return {"reason": "timeout", "budget_s": float(budget_s)}


class ExecutionMatch(Metric):
    """1.0 when the predicted query returns the gold query's result on the real database."""

    name = "execution_match"
    batched = True
    OPTIONS: tuple[str, ...] = ("timeout_s", "budget_s", "max_rows")
    kinds = frozenset({"sql"})

    @classmethod
    def _check_values(cls, options: dict) -> list[tuple[str, str]]:
        errors = []
        for key in ("timeout_s", "budget_s"):
            t = options.get(key, DEFAULT_TIMEOUT_S)
            if not _is_number(t) or t <= 0:
                errors.append((key, option_message(cls.name, key, "must be a positive number")))
        m = options.get("max_rows", DEFAULT_MAX_ROWS)
        if not _is_int(m) or m < 1:
            errors.append(("max_rows", option_message(cls.name, "max_rows",
                                                      "must be a positive integer")))
        return errors

    def _configure(self, options: dict) -> None:
        self.timeout_s = float(options.get("timeout_s", DEFAULT_TIMEOUT_S))
        budget = options.get("budget_s")
        self.budget_s = None if budget is None else float(budget)
        self._spent_s = 0.0
        self._budget_lock = threading.Lock()

    # -- budget ------------------------------------------------------------------------------

    def budget_left(self) -> float | None:
        """Seconds of the run's budget left (None: no budget)."""
        if self.budget_s is None:
            return None
        with self._budget_lock:
            return max(0.0, self.budget_s - self._spent_s)

    def _spend(self, seconds: float) -> None:
        with self._budget_lock:
            self._spent_s += seconds

    # -- scoring -----------------------------------------------------------------------------

    def _prepare(self, inp: MetricInput) -> tuple[str, str, str] | MetricScore:
        if inp.parsed is None:
            return invalid_score()
        if not inp.database:
            return MetricScore(0.0, {"reason": "no database"})
        pred = clean_sql(str(inp.parsed))
        if not pred:
            return MetricScore(0.0, {"reason": "empty query"})
        return inp.database, pred, clean_sql(str(inp.reference))

    def score_prepared(self, database: str, prediction: str, gold: str) -> MetricScore:
        """The SQL part of `score`, on cleaned queries (what a pool worker runs)."""
        ok, detail = compare_on(database, prediction, gold, self.timeout_s)
        return MetricScore(float(ok), detail)

    def score(self, inp: MetricInput) -> MetricScore:
        """Score one sample in this process (the query limit holds between SQLite steps; a
        single long C call is bounded only under `score_many`)."""
        prep = self._prepare(inp)
        if isinstance(prep, MetricScore):
            return prep
        left = self.budget_left()
        if left is not None and left <= 0:
            return MetricScore(0.0, budget_detail(self.budget_s))
        t0 = time.monotonic()
        try:
            return self.score_prepared(*prep)
        finally:
            self._spend(time.monotonic() - t0)

    def score_many(self, inputs: Sequence[MetricInput],
                   jobs: int | None = None) -> list[MetricScore]:
        """Score a batch across `jobs` worker processes (default: one per available core).

        Each worker has its own sandboxed connections and gold cache; a query past
        `timeout_s` is interrupted, and a worker stuck inside one SQLite call is ended by its
        watchdog half a second past the limit and replaced. Scores are in input order
        and equal to `score`'s, one by one. The budget (`budget_s`) is wall-clock time of
        the batches, shared with `score`.
        """
        from taskc.metrics.sql_pool import default_jobs, run_pool

        jobs = default_jobs() if jobs is None else jobs
        if not _is_int(jobs) or jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
        out: list[MetricScore | None] = []
        tasks: list[tuple[str, str, str]] = []
        where: list[int] = []
        for inp in inputs:
            prep = self._prepare(inp)
            if isinstance(prep, MetricScore):
                out.append(prep)
            else:
                where.append(len(out))
                out.append(None)
                tasks.append(prep)
        if tasks:
            left = self.budget_left()
            options = {k: v for k, v in self.options.items() if k != "budget_s"}
            t0 = time.monotonic()
            try:
                done = run_pool(self.name, options, tasks, jobs,
                                budget_s=left, budget_reason=None if left is None
                                else budget_detail(self.budget_s))
            finally:
                self._spend(time.monotonic() - t0)
            for i, (value, detail) in zip(where, done):
                out[i] = MetricScore(value, detail)
        return out  # type: ignore[return-value]

    def aggregate(self, scores: Sequence[MetricScore]) -> dict:
        """`{"mean", "n", "timeouts"}`: timeouts counted apart from wrong answers."""
        out = mean_aggregate(scores)
        out["timeouts"] = count_timeouts(scores)
        return out


class TestSuiteMatch(ExecutionMatch):
    """1.0 when the prediction matches gold on the real database and on every variant."""

    __test__ = False  # not a pytest test class despite the name
    name = "test_suite_match"
    OPTIONS = ("timeout_s", "budget_s", "max_rows", "variants", "seed")

    @classmethod
    def _check_values(cls, options: dict) -> list[tuple[str, str]]:
        errors = super()._check_values(options)
        k = options.get("variants", 3)
        if not _is_int(k) or k < 1:
            errors.append(("variants", option_message(cls.name, "variants",
                                                      "must be a positive integer")))
        if not _is_int(options.get("seed", 0)):
            errors.append(("seed", option_message(cls.name, "seed", "must be an integer")))
        return errors

    def _configure(self, options: dict) -> None:
        super()._configure(options)
        self.variants = int(options.get("variants", 3))
        self.seed = int(options.get("seed", 0))

    def score_prepared(self, database: str, prediction: str, gold: str) -> MetricScore:
        """Execution match on the real database and on each generated variant."""
        ok, detail = compare_on(database, prediction, gold, self.timeout_s)
        if not ok:
            return MetricScore(0.0, detail)
        from taskc.metrics.sql_variants import variant_paths
        try:
            paths = variant_paths(database, self.variants, self.seed)
        except (OSError, sqlite3.Error) as exc:
            return MetricScore(0.0, {"reason": f"cannot build variants: {exc}"})
        skipped = []
        for i, path in enumerate(paths):
            killed = {"reason": f"variant {i}: gold failed: timeout after {self.timeout_s:g}s"}
            if run_gold(path, gold, self.timeout_s, killed).error is not None:
                skipped.append(i)
                continue
            ok, detail = compare_on(path, prediction, gold, self.timeout_s, variant=i)
            if not ok:
                if is_timeout(detail):
                    return MetricScore(0.0, detail)
                return MetricScore(0.0, {**detail, "reason": f"variant {i}: {detail['reason']}"})
        return MetricScore(1.0, {"skipped_variants": skipped} if skipped else {})
