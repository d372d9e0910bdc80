"""Small tasks written into a temporary folder for the training tests: a spec and one data file
that is both its test and its train split (memorizing the rows is the point: it shows that the
training sequences and the inference prompts are the same thing)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ("amber", "basin", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper", "kestrel",
         "lagoon", "meadow", "nectar", "onyx", "prairie", "quartz", "raven", "sierra", "tundra", "umber", "violet",
         "willow", "yarrow", "zephyr")
LABELS = ("billing", "shipping", "returns", "account", "other")


def _phrases(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"case {i + 1}: {' '.join(rng.sample(WORDS, 3))}" for i in range(n)]


def write_label_task(folder: Path, n: int = 30, seed: int = 1) -> Path:
    """A 5-label task whose labels are arbitrary (chance is 0.2); returns the spec path."""
    rng = random.Random(seed)
    labels = [LABELS[i % len(LABELS)] for i in range(n)]
    rng.shuffle(labels)
    rows = [{"text": t, "answer": a} for t, a in zip(_phrases(n, seed), labels)]
    return _write(folder, "tiny_labels", rows, f"""\
taskc: 1
name: tiny_labels
description: Route a support case to a queue.
inputs:
  text: string
output:
  kind: label
  labels: [{", ".join(LABELS)}]
prompt:
  system: "Route the case. {{{{ format_instructions }}}}"
  user: "{{{{ text }}}}"
data:
  test: {{file: rows.jsonl}}
  train: {{file: rows.jsonl}}
metric: exact_match
generation: {{temperature: 0, max_tokens: 8}}
""")


TOOLS = """\
    - name: set_timer
      description: Start a timer.
      parameters:
        minutes: {type: integer, minimum: 1, maximum: 60}
      required: [minutes]
    - name: play
      description: Play music.
      parameters:
        genre: {type: string, enum: [jazz, rock, folk, pop]}
      required: [genre]
    - name: note
      description: Leave a note for someone.
      parameters:
        to: {type: string, enum: [ana, ben, caro]}
        urgent: {type: boolean}
        text: {type: string}
      required: [to, urgent]
"""


def write_tool_task(folder: Path, n: int = 30, seed: int = 2) -> Path:
    """A 3-tool task with arbitrary calls (an integer, an enum, an enum and a boolean)."""
    rng = random.Random(seed)
    rows = []
    for i, text in enumerate(_phrases(n, seed)):
        kind = i % 3
        if kind == 0:
            call = {"name": "set_timer", "parameters": {"minutes": rng.randint(1, 60)}}
        elif kind == 1:
            call = {"name": "play", "parameters": {"genre": rng.choice(["jazz", "rock", "folk", "pop"])}}
        else:
            call = {"name": "note", "parameters": {"to": rng.choice(["ana", "ben", "caro"]), "urgent": rng.random() < 0.5}}
        rows.append({"request": text, "answer": call})
    rng.shuffle(rows)
    return _write(folder, "tiny_tools", rows, f"""\
taskc: 1
name: tiny_tools
description: Turn a request into one tool call.
inputs:
  request: string
output:
  kind: tool_call
  tools:
{TOOLS}prompt:
  system: "Call one tool: set_timer(minutes), play(genre) or note(to, urgent)."
  user: "{{{{ request }}}}"
data:
  test: {{file: rows.jsonl}}
  train: {{file: rows.jsonl}}
metric: tool_call_equivalence
generation: {{temperature: 0, max_tokens: 48}}
""")


def _write(folder: Path, name: str, rows: list[dict], spec: str) -> Path:
    task = folder / name
    task.mkdir(parents=True, exist_ok=True)
    (task / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = task / f"{name}.yaml"
    path.write_text(spec, encoding="utf-8")
    return path
