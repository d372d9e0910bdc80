"""`taskc.compiler.export`: fine-tuning records in OpenAI, ChatML and ShareGPT form, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskc.compiler.build import compile_spec
from taskc.errors import TaskcError
from taskc.compiler.cli import export_command as export_cmd
from taskc.compiler.export import FORMATS, export, records

LABEL_SPEC = """\
taskc: 1
name: tiny_label
inputs:
  text: string
output:
  kind: label
  labels: [pos, neg]
prompt:
  system: Say pos or neg.
  user: "Text: {{ text }}"
  few_shot: {count: 1, from: train}
data:
  test: {file: test.jsonl}
  train: {file: train.jsonl}
"""

TOOL_SPEC = """\
taskc: 1
name: tiny_tools
inputs:
  history: messages
output:
  kind: tool_call
  tools:
    - name: set_light
      description: Dim a light.
      parameters:
        room: {type: string, enum: [kitchen, hall]}
        level: {type: integer, minimum: 0, maximum: 100}
      required: [room]
prompt:
  system: Control the lights.
data:
  test: {file: train.jsonl}
  train: {file: train.jsonl}
"""

HISTORY = [
    {"role": "user", "content": "dim the hall to 50"},
    {"role": "assistant", "tool_calls": [{"name": "set_light", "parameters": {"room": "hall", "level": 50}}]},
    {"role": "tool", "content": "ok"},
    {"role": "user", "content": "and the kitchen to 30"},
]


def _write(folder: Path, spec: str, files: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


@pytest.fixture
def label_contract(tmp_path: Path):
    train = [{"text": "great film", "answer": "pos"}, {"text": "dull ünd long", "answer": "neg"}]
    return compile_spec(_write(tmp_path / "label", LABEL_SPEC, {"train.jsonl": train, "test.jsonl": train}))


@pytest.fixture
def tool_contract(tmp_path: Path):
    rows = [{"history": HISTORY, "answer": {"name": "set_light", "parameters": {"level": 30, "room": "kitchen"}}}]
    return compile_spec(_write(tmp_path / "tools", TOOL_SPEC, {"train.jsonl": rows}))


LABEL_MESSAGES = [
    [
        {"role": "system", "content": "Say pos or neg."},
        {"role": "user", "content": "Text: great film"},
        {"role": "assistant", "content": "pos"},
        {"role": "user", "content": "Text: great film"},
        {"role": "assistant", "content": "pos"},
    ],
    [
        {"role": "system", "content": "Say pos or neg."},
        {"role": "user", "content": "Text: great film"},
        {"role": "assistant", "content": "pos"},
        {"role": "user", "content": "Text: dull ünd long"},
        {"role": "assistant", "content": "neg"},
    ],
]

TOOL_MESSAGES = [
    {"role": "system", "content": "Control the lights."},
    {"role": "user", "content": "dim the hall to 50"},
    {"role": "assistant", "content": '{"name":"set_light","parameters":{"room":"hall","level":50}}'},
    {"role": "user", "content": "Tool result: ok"},
    {"role": "user", "content": "and the kitchen to 30"},
    {"role": "assistant", "content": '{"name":"set_light","parameters":{"room":"kitchen","level":30}}'},
]


def test_openai_records_are_messages_only(label_contract):
    assert records(label_contract, "openai") == [{"messages": m} for m in LABEL_MESSAGES]
    text = export(label_contract, "openai")
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 2
    assert [json.loads(line) for line in lines] == [{"messages": m} for m in LABEL_MESSAGES]
    assert all(list(json.loads(line)) == ["messages"] for line in lines)
    assert lines[1] == (
        '{"messages":[{"role":"system","content":"Say pos or neg."},{"role":"user","content":"Text: great film"},'
        '{"role":"assistant","content":"pos"},{"role":"user","content":"Text: dull ünd long"},'
        '{"role":"assistant","content":"neg"}]}'
    )


def test_chatml_records_add_the_rendered_text(label_contract):
    got = records(label_contract, "chatml")
    assert [r["messages"] for r in got] == LABEL_MESSAGES
    assert got[1]["text"] == (
        "<|im_start|>system\nSay pos or neg.<|im_end|>\n"
        "<|im_start|>user\nText: great film<|im_end|>\n"
        "<|im_start|>assistant\npos<|im_end|>\n"
        "<|im_start|>user\nText: dull ünd long<|im_end|>\n"
        "<|im_start|>assistant\nneg<|im_end|>\n"
    )
    assert all(list(r) == ["messages", "text"] for r in got)


def test_sharegpt_records(label_contract):
    assert records(label_contract, "sharegpt")[1] == {"conversations": [
        {"from": "system", "value": "Say pos or neg."},
        {"from": "human", "value": "Text: great film"},
        {"from": "gpt", "value": "pos"},
        {"from": "human", "value": "Text: dull ünd long"},
        {"from": "gpt", "value": "neg"},
    ]}


def test_tool_call_history_and_canonical_gold(tool_contract):
    assert records(tool_contract, "openai") == [{"messages": TOOL_MESSAGES}]
    assert records(tool_contract, "sharegpt") == [{"conversations": [
        {"from": "system", "value": "Control the lights."},
        {"from": "human", "value": "dim the hall to 50"},
        {"from": "gpt", "value": '{"name":"set_light","parameters":{"room":"hall","level":50}}'},
        {"from": "human", "value": "Tool result: ok"},
        {"from": "human", "value": "and the kitchen to 30"},
        {"from": "gpt", "value": '{"name":"set_light","parameters":{"room":"kitchen","level":30}}'},
    ]}]
    assert records(tool_contract, "chatml")[0]["text"] == (
        "<|im_start|>system\nControl the lights.<|im_end|>\n"
        "<|im_start|>user\ndim the hall to 50<|im_end|>\n"
        '<|im_start|>assistant\n{"name":"set_light","parameters":{"room":"hall","level":50}}<|im_end|>\n'
        "<|im_start|>user\nTool result: ok<|im_end|>\n"
        "<|im_start|>user\nand the kitchen to 30<|im_end|>\n"
        '<|im_start|>assistant\n{"name":"set_light","parameters":{"room":"kitchen","level":30}}<|im_end|>\n'
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_deterministic_and_test_split(label_contract, fmt):
    assert export(label_contract, fmt) == export(label_contract, fmt)
    assert export(label_contract, fmt, split="test") == export(label_contract, fmt, split="train")


def test_errors(label_contract, tool_contract, tmp_path, capsys):
    with pytest.raises(TaskcError, match="unknown export format 'alpaca'"):
        export(label_contract, "alpaca")
    assert export_cmd(label_contract, "alpaca", "train", None) == 2
    assert "unknown export format" in capsys.readouterr().err
    spec = _write(tmp_path / "nosplit", LABEL_SPEC.replace("  few_shot: {count: 1, from: train}\n", "")
                  .replace("  train: {file: train.jsonl}\n", ""), {"test.jsonl": [{"text": "x", "answer": "pos"}]})
    assert export_cmd(compile_spec(spec), "openai", "train", None) == 2
    assert "has no train split" in capsys.readouterr().err


def test_export_cmd_writes_a_file_or_stdout(label_contract, tmp_path, capsys):
    out = tmp_path / "out" / "train.jsonl"
    assert export_cmd(label_contract, "sharegpt", "train", out) == 0
    assert out.read_text(encoding="utf-8") == export(label_contract, "sharegpt")
    assert "2 train records (sharegpt)" in capsys.readouterr().err
    assert export_cmd(label_contract, "openai", "train", None) == 0
    assert capsys.readouterr().out == export(label_contract, "openai")
