"""Benchmark `taskc view` on a 100k-sample comparison against the same page built from the raw files.

Workspace (made in a temporary folder, or reused with --keep DIR): a label spec with 77 labels and
--rows test rows, and two runs of it made by `taskc eval` (the gold backend, and the replay backend
with 80% right, 18% wrong and 2% invalid answers): 2 x 100k lines of samples.jsonl (~48 MB each).

Measured, in one process, on one machine:
- ours: the viewer's JSON API over real HTTP (uvicorn in a thread): the index, the first page of
  the comparison, the same filtered to "only wrong", and a text search. Cold = a fresh server, no
  warm-up (the column index of each file, and the spec's compile for gold, are built by that first
  request); warm = the same requests again (median of 5).
- the one-off column index of each samples.jsonl (CPU time), and the start-up warm-up that
  `taskc view` runs in the background (columns of the latest runs and their gold) until done.
- in Chromium (when /usr/bin/chromium and playwright are there): from navigation to the index
  page, and to the comparison page, until its table is in the DOM (warm server).
- baseline: the same page built from the raw files per request: read the two summaries, parse
  every line of both samples.jsonl, join on (row, repeat), filter, take the first 50 rows; gold
  from the compiled spec (compiled once, outside the timing). Median of 3.

Usage: python bench/viewer.py [--rows 100000] [--keep DIR] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAGE = 50
LABELS = [f"intent_{i:02d}" for i in range(77)]
WORDS = ("card payment transfer refund account balance pin atm cash fee limit top up exchange rate country "
         "declined pending").split()


def make_workspace(root: Path, rows: int) -> Path:
    """The spec, its data, and two runs made by `taskc eval`; returns the runs folder."""
    runs = root / "runs"
    if runs.is_dir() and len(list(runs.glob("intents/*/summary.json"))) == 2:
        return runs
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "test.jsonl", "w") as f:
        for i in range(rows):
            gold = LABELS[i % len(LABELS)]
            text = " ".join(rng.choice(WORDS) for _ in range(14)) + f" ({gold.replace('_', ' ')} #{i})"
            f.write(json.dumps({"text": text, "answer": gold}) + "\n")
    with open(root / "train.jsonl", "w") as f:
        for gold in LABELS:
            f.write(json.dumps({"text": "about " + gold.replace("_", " "), "answer": gold}) + "\n")
    with open(root / "preds.jsonl", "w") as f:
        for i in range(rows):
            r = rng.random()
            gold = LABELS[i % len(LABELS)]
            out = gold if r < 0.8 else (rng.choice(LABELS) if r < 0.98 else "I am not sure")
            f.write(json.dumps({"index": i, "output": out}) + "\n")
    (root / "intents.yaml").write_text(
        "taskc: 1\nname: intents\ndescription: Route a banking message.\ninputs:\n  text: string\n"
        f"output:\n  kind: label\n  labels: [{', '.join(LABELS)}]\n"
        "prompt:\n  system: |\n    You route banking messages.\n    {{ format_instructions }}\n"
        "  user: \"Message: {{ text }}\"\n"
        "data:\n  test: {file: test.jsonl}\n  train: {file: train.jsonl}\nmetric: exact_match\n")
    for args in (["--backend", "gold"], ["--backend", "replay", "--model", str(root / "preds.jsonl")]):
        subprocess.run([sys.executable, "-m", "taskc.cli", "eval", str(root / "intents.yaml"), *args, "--out", str(runs),
                        "--no-progress", "--no-cache"], check=True, stdout=subprocess.DEVNULL, cwd=root)
    return runs


def raw_page(runs: Path, contract, only_wrong: bool) -> tuple[dict, dict]:
    """The index and the first comparison page, built from the raw files (the baseline)."""
    summaries = [json.loads(p.read_text()) for p in sorted(runs.glob("*/*/summary.json"))]
    index = {"groups": {(s["task"], s["contract_id"]): [] for s in summaries}}
    for s in summaries:
        index["groups"][(s["task"], s["contract_id"])].append({k: s.get(k) for k in ("model_name", "metrics", "n")})
    samples = []
    for path in sorted(runs.glob("*/*/samples.jsonl")):
        by_key = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    s = json.loads(line)
                    by_key[(s["index"], s["repeat"])] = s
        samples.append(by_key)
    keys = sorted(set().union(*samples))
    metric = contract.body["metrics"][0]["name"]
    rows = []
    for key in keys:
        cells = [run.get(key) for run in samples]
        if only_wrong and not any(c and c["scores"].get(metric, 0) < 1 for c in cells):
            continue
        rows.append({"key": key, "input": next(c for c in cells if c)["inputs"], "gold": contract.gold_text("test", key[0]),
                     "cells": [{"output": c["raw"], "score": c["scores"].get(metric)} if c else None for c in cells]})
        if len(rows) == PAGE:
            break
    return index, {"total": len(keys), "rows": rows}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as res:
        return json.loads(res.read())


def measure_api(runs: Path, spec_dir: Path):
    """Cold and warm times of the viewer's API over HTTP; (figures, facts, the running server)."""
    from taskc.view.cli import BackgroundServer
    from taskc.view.service import Viewer

    server = BackgroundServer(Viewer(runs, [spec_dir]))  # no warm-up: the first requests build everything
    port = server.port
    out: dict[str, float] = {}
    try:
        out["cold: index"] = _timed(lambda: _get(port, "/api/index"))
        gid = _get(port, "/api/index")["groups"][0]["id"]
        paths = {"index": "/api/index", "first page": f"/api/compare?group={gid}&size={PAGE}",
                 "only wrong": f"/api/compare?group={gid}&filter=wrong&size={PAGE}",
                 "only wrong, page 100": f"/api/compare?group={gid}&filter=wrong&size={PAGE}&page=99",
                 "search": f"/api/compare?group={gid}&q=atm+cash&size={PAGE}"}
        for name in ("first page", "only wrong", "search"):
            out[f"cold: {name}"] = _timed(lambda: _get(port, paths[name]))
        for name, path in paths.items():
            out[f"warm: {name}"] = statistics.median(_timed(lambda: _get(port, path)) for _ in range(5))
        page = _get(port, paths["only wrong"])
        facts = {"rows": page["total"], "wrong": page["matched"], "url": f"http://127.0.0.1:{port}/", "gid": gid}
    except BaseException:
        server.close()
        raise
    return out, facts, server


def measure_browser(base: str, gid: str) -> dict[str, float] | None:
    """Navigation to the index and to the comparison until their tables are in the DOM."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name, url, selector in (("index", base, "section.group table"),
                                    ("first page", f"{base}#/compare?group={gid}", "#samples tr.row"),
                                    ("only wrong", f"{base}#/compare?group={gid}&filter=wrong", "#samples tr.row")):
            times = []
            for _ in range(3):
                page.goto("about:blank")
                t0 = time.perf_counter()
                page.goto(url)
                page.wait_for_selector(selector)
                times.append(time.perf_counter() - t0)
            out[f"browser: {name}"] = statistics.median(times)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Make (or reuse) the workspace here instead of a temporary folder.")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.keep or Path(tmp)).resolve()
        t0 = time.perf_counter()
        runs = make_workspace(root, args.rows)
        print(f"# workspace: {runs} ({args.rows} rows x 2 runs, made in {time.perf_counter() - t0:.0f} s)")
        from taskc.compiler.build import compile_spec

        contract = compile_spec(root / "intents.yaml")
        baseline = {"index + first page": statistics.median(_timed(lambda: raw_page(runs, contract, False)) for _ in range(3)),
                    "index + only wrong": statistics.median(_timed(lambda: raw_page(runs, contract, True)) for _ in range(3))}
        from taskc.view.columns import read_columns
        from taskc.view.service import Viewer

        cpu = []
        for path in sorted(runs.glob("*/*/samples.jsonl")):
            t1 = time.process_time()
            read_columns(path)
            cpu.append(time.process_time() - t1)
        t1 = time.perf_counter()
        Viewer(runs, [root]).warm().join()
        warm_up = time.perf_counter() - t1
        ours, facts, server = measure_api(runs, root)
        try:
            shown = measure_browser(facts["url"], facts["gid"]) if not args.no_browser else None
        finally:
            server.close()
        rows, wrong = facts["rows"], facts["wrong"]
        print(f"# comparison: {rows} rows, {wrong} of them wrong in a run")
        for name, value in ours.items():
            print(f"ours {name:<26} {value * 1000:9.1f} ms")
        for name, value in (shown or {}).items():
            print(f"ours {name:<26} {value * 1000:9.1f} ms")
        print(f"ours column index, one-off per file  {statistics.mean(cpu) * 1000:9.1f} ms CPU (mean of {len(cpu)} files)")
        print(f"ours start-up warm-up (both runs + gold) {warm_up * 1000:6.1f} ms")
        for name, value in baseline.items():
            print(f"raw files {name:<21} {value * 1000:9.1f} ms")
        warm = ours["warm: index"] + ours["warm: first page"]
        cold = ours["cold: index"] + ours["cold: first page"]
        print(f"ratio raw / ours, index + first page: warm {baseline['index + first page'] / warm:.0f}x, "
              f"cold {baseline['index + first page'] / cold:.1f}x")
        print(f"ratio raw / ours, index + only wrong: warm "
              f"{baseline['index + only wrong'] / (ours['warm: index'] + ours['warm: only wrong']):.0f}x")
        if shown:
            total = shown["browser: index"] + shown["browser: first page"]
            print(f"in Chromium, index + first page: {total * 1000:.0f} ms ({'under' if total < 1 else 'OVER'} 1 s)")


if __name__ == "__main__":
    main()
