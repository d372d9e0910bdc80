"""`taskc verify` (CLI layer): every gold answer of every split through the compiled constraint, token by token,
in the real grammar engines with the real Qwen vocabulary. Also the users' dataset linter."""

from __future__ import annotations

import json
import sys
from typing import Any


def verify_items(contract) -> list:
    """One VerifyItem per gold answer of every split, in the serialization the decoder emits."""
    from taskc.constraints.verify import VerifyItem

    items = []
    for split in ("test", "train"):
        if split not in contract.splits:
            continue
        for index in range(len(contract.splits[split].rows)):
            constraint = contract.constraint_for(split, index)
            if constraint is None:
                continue
            items.append(VerifyItem(split=split, index=index, constraint=constraint, text=contract.gold_text(split, index)))
    return items


def verify_command(contracts, as_json: bool, engines: tuple[str, ...]) -> int:
    """Verify each contract; print counts, compile times and rejections; 1 on any rejection."""
    from taskc.constraints.engines import ENGINES
    from taskc.constraints.verify import verify
    from taskc.errors import TaskcError

    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise TaskcError(f"unknown grammar engine '{unknown[0] if unknown else ''}' in --engines "
                         f"(known: {', '.join(ENGINES)})")

    reports: dict[str, Any] = {}
    failed = False
    for contract in contracts:
        items = verify_items(contract)
        if not items:
            reports[contract.name] = {"accepted": 0, "total": 0, "engines": {}, "rejected": [],
                                      "note": f"{contract.output.kind} outputs have no constraint"}
            continue
        report = verify(items, engines=engines, on_engine=_progress(contract.name)).to_json()
        reports[contract.name] = report
        failed = failed or bool(report["rejected"]) or report["accepted"] != report["total"]
    if as_json:
        single = next(iter(reports.values())) if len(reports) == 1 else {"tasks": reports}
        print(json.dumps(single, ensure_ascii=False))
    else:
        for name, report in reports.items():
            _print(name, report)
    return 1 if failed else 0


def _progress(task: str):
    """One line on stderr as each engine starts (text2sql takes tens of seconds in all)."""
    import time

    started = [time.perf_counter()]

    def report(engine: str, n: int) -> None:
        print(f"verify {task}: {engine} ({n} gold answers; {time.perf_counter() - started[0]:.1f} s so far)",
              file=sys.stderr, flush=True)

    return report


def _print(name: str, report: dict[str, Any]) -> None:
    print(f"{name}: {report['accepted']}/{report['total']} gold answers accepted")
    if "note" in report:
        print(f"  {report['note']}")
    for engine, info in report["engines"].items():
        if info.get("skipped"):
            print(f"  {engine:14s} skipped: {info['skipped']}")
            continue
        times = info.get("compile_ms", {})
        worst = max(times.values()) if isinstance(times, dict) and times else times
        print(f"  {engine:14s} {info['accepted']}/{info['total']} accepted · compile {_ms(worst)} (slowest grammar)")
    for rej in report["rejected"][:50]:
        print(f"  REJECTED {rej['split']} row {rej['index']} by {rej['engine']} at {rej['position']}: {rej.get('context', '')}",
              file=sys.stdout)
    if len(report["rejected"]) > 50:
        print(f"  ... and {len(report['rejected']) - 50} more")


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, (int, float)) else "-"
