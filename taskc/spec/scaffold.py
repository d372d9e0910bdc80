"""`taskc new`: a commented starter spec per output kind, with a tiny data file that validates."""

from __future__ import annotations

import json
from pathlib import Path

from taskc.errors import TaskcError

_OUTPUTS = {
    "label": (
        "output:\n  kind: label\n  labels: [positive, negative]        # or {file: labels.json}\n",
        [{"text": "I love it", "answer": "positive"}, {"text": "It broke after a day", "answer": "negative"}],
        "exact_match",
    ),
    "tool_call": (
        "output:\n  kind: tool_call\n  tools:                               # or {file: tools.json, pointer: /tools}\n"
        "    - name: set_timer\n      description: Start a timer.\n      parameters:\n"
        "        minutes: {type: integer, minimum: 1}\n        label: {type: string, default: timer}\n"
        "      required: [minutes]\n",
        [{"text": "timer for 5 minutes", "answer": {"name": "set_timer", "parameters": {"minutes": 5}}}],
        "tool_call_equivalence",
    ),
    "object": (
        "output:\n  kind: object\n  schema:                              # short types: string, integer, number, boolean, T?, list[T], \"a\" | \"b\"\n"
        "    sentiment: '\"positive\" | \"negative\"'\n    keywords: list[string]\n",
        [{"text": "I love the screen", "answer": {"sentiment": "positive", "keywords": ["screen"]}}],
        "json_match",
    ),
    "sql": (
        "output:\n  kind: sql\n  dialect: sqlite\n  database: \"{{ db }}\"                # a path template over the inputs\n",
        None,
        "execution_match",
    ),
    "text": (
        "output:\n  kind: text\n",
        [{"text": "The cat sat on the mat.", "answer": "A cat sat."}],
        "f1",
    ),
}

_TEMPLATE = """# {name}: a taskc spec (format version 1). Paths are relative to this file.
# Check it with `taskc validate {spec}`, see one example with `taskc show {spec}`.
taskc: 1
name: {name}
description: Describe the task in one sentence.

inputs:
  text: string                          # or {{type: string, description: ...}}
{extra_inputs}
{output}
prompt:
  system: |
    You are a careful assistant.
    {{{{ format_instructions }}}}
  user: "{user}"

data:
  test: {{file: {data}}}                # csv, jsonl or json; `columns` maps names when they differ

metric: {metric}
generation: {{temperature: 0, max_tokens: 256}}
"""


def write_scaffold(name: str, kind: str, spec_path: Path, force: bool = False) -> list[Path]:
    """Write `spec_path` and its data file; refuse to overwrite unless `force`."""
    if kind not in _OUTPUTS:
        raise TaskcError(f"unknown kind '{kind}' (expected one of: {', '.join(_OUTPUTS)})")
    data_path = spec_path.with_name(f"{spec_path.stem}.jsonl")
    for path in (spec_path, data_path):
        if path.exists() and not force:
            raise TaskcError(f"{path} exists; pass --force to overwrite")
    output, rows, metric = _OUTPUTS[kind]
    extra_inputs = ""
    user = "{{ text }}"
    written = []
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "sql":
        import sqlite3

        db_path = spec_path.with_name(f"{spec_path.stem}.sqlite")
        if db_path.exists():
            db_path.unlink()
        con = sqlite3.connect(db_path)
        con.executescript("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
                          "INSERT INTO item VALUES (1, 'pen', 1.5), (2, 'book', 12.0);")
        con.commit()
        con.close()
        written.append(db_path)
        extra_inputs = "  db: string                            # which database this question is about\n"
        user = "Schema:\\n{{ schema }}\\n\\nQuestion: {{ text }}"
        rows = [{"text": "How many items are there?", "db": db_path.name, "answer": "SELECT count(*) FROM item"}]
    spec_path.write_text(
        _TEMPLATE.format(name=name, spec=spec_path, extra_inputs=extra_inputs, output=output, user=user,
                         data=data_path.name, metric=metric),
        encoding="utf-8",
    )
    data_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return [spec_path, data_path, *written]
