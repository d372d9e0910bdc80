"""SQL metrics: `execution_match` and `test_suite_match`.

`execution_match` runs the predicted and the gold query on the example's database in the
read-only sandbox (`taskc.metrics.sql_exec`) and compares the results: as multisets of rows,
or as sequences when the gold query has a top-level ORDER BY; integral floats equal ints.
Column order matters. A prediction that fails, is denied, times out or returns more than
`max_rows` rows scores 0 with the reason in `detail`.

`test_suite_match` scores 1 only when the prediction also matches gold on `variants`
generated databases (`taskc.metrics.sql_variants`), which tells apart queries that agree on
the real data by accident. A variant on which the gold query itself fails is skipped.

Options: `timeout_s` (default 2.0), `max_rows` (default 10000); test_suite_match adds
`variants` (default 3) and `seed` (default 0).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from taskc.metrics.base import Metric, MetricInput, MetricScore, invalid_score, option_message
from taskc.metrics.sql_exec import (DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, clean_sql, compare_on,
                                    run_gold)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class ExecutionMatch(Metric):
    """1.0 when the predicted query returns the gold query's result on the real database."""

    name = "execution_match"
    OPTIONS: tuple[str, ...] = ("timeout_s", "max_rows")
    kinds = frozenset({"sql"})

    @classmethod
    def _check_values(cls, options: dict) -> list[tuple[str, str]]:
        errors = []
        t = options.get("timeout_s", DEFAULT_TIMEOUT_S)
        if not _is_number(t) or t <= 0:
            errors.append(("timeout_s", option_message(cls.name, "timeout_s",
                                                       "must be a positive number")))
        m = options.get("max_rows", DEFAULT_MAX_ROWS)
        if not _is_int(m) or m < 1:
            errors.append(("max_rows", option_message(cls.name, "max_rows",
                                                      "must be a positive integer")))
        return errors

    def _configure(self, options: dict) -> None:
        self.timeout_s = float(options.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.max_rows = int(options.get("max_rows", DEFAULT_MAX_ROWS))

    def _prepare(self, inp: MetricInput) -> tuple[str, str] | MetricScore:
        if inp.parsed is None:
            return invalid_score()
        if not inp.database:
            return MetricScore(0.0, {"reason": "no database"})
        pred = clean_sql(str(inp.parsed))
        if not pred:
            return MetricScore(0.0, {"reason": "empty query"})
        return pred, clean_sql(str(inp.reference))

    def score(self, inp: MetricInput) -> MetricScore:
        """Execution accuracy on the example's database."""
        prep = self._prepare(inp)
        if isinstance(prep, MetricScore):
            return prep
        ok, detail = compare_on(inp.database, prep[0], prep[1], self.timeout_s, self.max_rows)
        return MetricScore(float(ok), detail)


class TestSuiteMatch(ExecutionMatch):
    """1.0 when the prediction matches gold on the real database and on every variant."""

    __test__ = False  # not a pytest test class despite the name
    name = "test_suite_match"
    OPTIONS = ("timeout_s", "max_rows", "variants", "seed")

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

    def score(self, inp: MetricInput) -> MetricScore:
        """Execution match on the real database and on each generated variant."""
        prep = self._prepare(inp)
        if isinstance(prep, MetricScore):
            return prep
        pred, gold = prep
        ok, detail = compare_on(inp.database, pred, gold, self.timeout_s, self.max_rows)
        if not ok:
            return MetricScore(0.0, detail)
        from taskc.metrics.sql_variants import variant_paths
        try:
            paths = variant_paths(inp.database, self.variants, self.seed)
        except (OSError, sqlite3.Error) as exc:
            return MetricScore(0.0, {"reason": f"cannot build variants: {exc}"})
        skipped = []
        for i, path in enumerate(paths):
            if run_gold(path, gold, self.timeout_s, self.max_rows).error is not None:
                skipped.append(i)
                continue
            ok, detail = compare_on(path, pred, gold, self.timeout_s, self.max_rows)
            if not ok:
                return MetricScore(0.0, {**detail, "reason": f"variant {i}: {detail['reason']}"})
        return MetricScore(1.0, {"skipped_variants": skipped} if skipped else {})
