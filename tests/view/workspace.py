"""A workspace for the viewer tests: four small specs (label, tool_call, object, sql), their data,
and run folders made by `taskc eval` with the gold, baseline and replay backends."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from taskc.cli import app

SCRIPT_TEXT = "<script>window.__pwned = 1</script><b>bold</b> I was charged twice"
SCRIPT_OUTPUT = '<img src=x onerror="window.__pwned=2"><i>not a label</i>'

TICKETS = """taskc: 1
name: tickets
description: Route a support ticket.
inputs:
  text: string
output:
  kind: label
  labels: [billing, card, refund, other]
prompt:
  system: |
    You route support tickets.
    {{ format_instructions }}
  user: "Ticket: {{ text }}"
data:
  test: {file: tickets_test.jsonl}
  train: {file: tickets_train.jsonl}
metric: exact_match
generation: {temperature: 0, max_tokens: 16}
"""
TICKET_ROWS = [
    ("my invoice shows the wrong amount", "billing"), ("the card does not work at the shop", "card"),
    ("I want my money back for the order", "refund"), (SCRIPT_TEXT, "billing"),
    ("where is the office", "other"), ("my card was swallowed by the machine", "card"),
    ("please refund the second charge", "refund"), ("the bill came twice", "billing"),
    ("lost card, please block it", "card"), ("opening hours on sunday?", "other"),
    ("refund for a cancelled trip", "refund"), ("invoice address is wrong", "billing"),
]
TICKET_TRAIN = [("invoice amount wrong", "billing"), ("card blocked at shop", "card"),
                ("money back for my order", "refund"), ("office opening hours", "other")]
# replay predictions: 3 wrong labels, one invalid output holding HTML, row 11 missing (a failed request)
TICKET_REPLAY = {0: "billing", 1: "card", 2: "billing", 3: "billing", 4: "card", 5: SCRIPT_OUTPUT,
                 6: "refund", 7: "billing", 8: "refund", 9: "other", 10: "refund"}

TIMERS = """taskc: 1
name: timers
description: Call a home tool.
inputs:
  text: string
output:
  kind: tool_call
  tools:
    - name: set_timer
      description: Start a timer.
      parameters:
        minutes: {type: integer, minimum: 1}
        label: {type: string, default: timer}
      required: [minutes]
    - name: play_music
      description: Play music.
      parameters:
        artist: {type: string}
        volume: {type: integer, minimum: 0, maximum: 10}
      required: [artist]
prompt:
  system: "Answer with one tool call. {{ format_instructions }}"
  user: "{{ text }}"
data:
  test: {file: timers_test.jsonl}
metric: tool_call_equivalence
"""
TIMER_ROWS = [
    ("timer for 5 minutes", {"name": "set_timer", "parameters": {"minutes": 5}}),
    ("timer for 10 minutes called tea", {"name": "set_timer", "parameters": {"minutes": 10, "label": "tea"}}),
    ("play abba at volume 3", {"name": "play_music", "parameters": {"artist": "abba", "volume": 3}}),
    ("play queen", {"name": "play_music", "parameters": {"artist": "queen"}}),
    ("timer for 2 minutes", {"name": "set_timer", "parameters": {"minutes": 2}}),
    ("play muse at volume 7", {"name": "play_music", "parameters": {"artist": "muse", "volume": 7}}),
]
TIMER_REPLAY = {
    0: {"name": "set_timer", "parameters": {"minutes": 5, "label": "timer"}},  # the default: still right
    1: {"name": "set_timer", "parameters": {"minutes": 12, "label": "tea"}},  # wrong minutes
    2: {"name": "play_music", "parameters": {"artist": "abba"}},  # missing volume
    3: {"name": "set_timer", "parameters": {"minutes": 1}},  # wrong function
    4: {"name": "set_timer", "parameters": {"minutes": 2, "label": "eggs"}},  # extra label
    5: "play muse please",  # not a tool call
}

REVIEWS = """taskc: 1
name: reviews
description: Read a product review.
inputs:
  text: string
output:
  kind: object
  schema:
    sentiment: '"positive" | "negative"'
    keywords: list[string]
prompt:
  system: "{{ format_instructions }}"
  user: "{{ text }}"
data:
  test: {file: reviews_test.jsonl}
metric: json_match
"""
REVIEW_ROWS = [
    ("I love the screen", {"sentiment": "positive", "keywords": ["screen"]}),
    ("battery died fast", {"sentiment": "negative", "keywords": ["battery"]}),
    ("great sound and screen", {"sentiment": "positive", "keywords": ["sound", "screen"]}),
    ("the case broke", {"sentiment": "negative", "keywords": ["case"]}),
]
REVIEW_REPLAY = {0: {"sentiment": "positive", "keywords": ["screen"]},
                 1: {"sentiment": "positive", "keywords": ["battery"]},
                 2: {"sentiment": "positive", "keywords": ["sound"]},
                 3: {"sentiment": "positive", "keywords": ["box"]}}

SHOP = """taskc: 1
name: shop
description: Answer a question about the shop database with one query.
inputs:
  text: string
  db: string
output:
  kind: sql
  dialect: sqlite
  database: "{{ db }}"
prompt:
  system: "You write SQLite queries. {{ format_instructions }}"
  user: "Schema:\\n{{ schema }}\\n\\nQuestion: {{ text }}"
data:
  test: {file: shop_test.jsonl}
metric: execution_match
"""
SHOP_ROWS = [
    ("How many items are there?", "SELECT count(*) FROM item"),
    ("Which item costs most?", "SELECT name FROM item ORDER BY price DESC LIMIT 1"),
    ("Items under 5?", "SELECT name FROM item WHERE price < 5"),
]
SHOP_REPLAY = {0: "SELECT COUNT(id) FROM item", 1: "SELECT name FROM item ORDER BY price LIMIT 1",
               2: "DROP TABLE item"}


def _jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _replay(path: Path, outputs: dict) -> Path:
    _jsonl(path, [{"index": i, "output": o} for i, o in outputs.items()])
    return path


def eval_run(spec: Path, runs: Path, backend: str, model: str | None = None) -> Path:
    """Run `taskc eval` in-process; the run folder it wrote."""
    before = set(runs.glob("*/*")) if runs.exists() else set()
    args = ["eval", str(spec), "--backend", backend, "--out", str(runs), "--no-progress", "--no-cache"]
    if model:
        args += ["--model", model]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    (new,) = set(runs.glob("*/*")) - before
    return new


def build(root: Path) -> dict[str, dict[str, Path]]:
    """specs/ and runs/ under `root`; returns {task: {model: run folder}}."""
    specs = root / "specs"
    specs.mkdir(parents=True)
    runs = root / "runs"
    (specs / "tickets.yaml").write_text(TICKETS, encoding="utf-8")
    _jsonl(specs / "tickets_test.jsonl", [{"text": t, "answer": a} for t, a in TICKET_ROWS])
    _jsonl(specs / "tickets_train.jsonl", [{"text": t, "answer": a} for t, a in TICKET_TRAIN])
    (specs / "timers.yaml").write_text(TIMERS, encoding="utf-8")
    _jsonl(specs / "timers_test.jsonl", [{"text": t, "answer": a} for t, a in TIMER_ROWS])
    (specs / "reviews.yaml").write_text(REVIEWS, encoding="utf-8")
    _jsonl(specs / "reviews_test.jsonl", [{"text": t, "answer": a} for t, a in REVIEW_ROWS])
    (specs / "shop.yaml").write_text(SHOP, encoding="utf-8")
    con = sqlite3.connect(specs / "shop.sqlite")
    con.executescript("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
                      "INSERT INTO item VALUES (1, 'pen', 1.5), (2, 'book', 12.0), (3, 'mug', 4.0);")
    con.commit()
    con.close()
    _jsonl(specs / "shop_test.jsonl", [{"text": t, "db": "shop.sqlite", "answer": a} for t, a in SHOP_ROWS])
    out: dict[str, dict[str, Path]] = {}
    for task, replay in (("tickets", TICKET_REPLAY), ("timers", TIMER_REPLAY), ("reviews", REVIEW_REPLAY),
                         ("shop", SHOP_REPLAY)):
        spec = specs / f"{task}.yaml"
        preds = _replay(root / f"{task}_preds.jsonl", replay)
        out[task] = {"gold": eval_run(spec, runs, "gold"), "replay": eval_run(spec, runs, "replay", str(preds))}
    out["tickets"]["baseline"] = eval_run(specs / "tickets.yaml", runs, "baseline")
    return out
