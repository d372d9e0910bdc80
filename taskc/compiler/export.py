"""Fine-tuning data from a contract: `taskc export SPEC --format openai|chatml|sharegpt`.

One JSON record per row of the split (default: train), one per line, in row order. Every
record is the conversation the model sees at evaluation time — the contract's exact system
prompt, its few-shot turns, the row's own turns (a `messages` input's history included; a tool
result is the user turn "Tool result: ...", as every backend sends it) — followed by the gold
answer as the last assistant turn, serialized exactly as the constrained decoder emits it
(`contract.gold_text`: compact JSON in schema order for tool calls and objects).

Formats:
  openai    `{"messages": [{"role", "content"}, ...]}` and nothing else: OpenAI's chat
            fine-tuning format (roles system, user, assistant).
  chatml    the same `messages`, plus `"text"`: the conversation rendered in ChatML,
            `<|im_start|>{role}\\n{content}<|im_end|>\\n` per turn (Qwen's template, no default
            system prompt added). TRL's SFTTrainer, Axolotl (`type: chat_template`) and Unsloth
            read `messages` and apply the model's own chat template; a trainer set to a plain
            text field (`dataset_text_field="text"`, Axolotl `type: completion`) reads `text`.
  sharegpt  `{"conversations": [{"from": "system"|"human"|"gpt", "value"}, ...]}`.

Turns are never merged: a history with a tool result gives two user turns in a row, exactly
as sent at evaluation time. Output is deterministic (same contract, same bytes).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from taskc.compiler.contract import Contract
from taskc.compiler.prefix import chatml
from taskc.errors import TaskcError

FORMATS = ("openai", "chatml", "sharegpt")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def conversation(contract: Contract, split: str, index: int) -> list[dict[str, str]]:
    """Row `index`'s messages with the gold answer as the last assistant turn."""
    messages = [{"role": m["role"], "content": m["content"]} for m in contract.messages(split, index)]
    messages.append({"role": "assistant", "content": contract.gold_text(split, index)})
    return messages


def _openai(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"messages": messages}


def _chatml(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"messages": messages, "text": chatml(messages)}


def _sharegpt(messages: list[dict[str, str]]) -> dict[str, Any]:
    turns = []
    for m in messages:
        if m["role"] not in SHAREGPT_ROLES:
            raise TaskcError(f"no ShareGPT role for a '{m['role']}' turn")
        turns.append({"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]})
    return {"conversations": turns}


RECORD: dict[str, Callable[[list[dict[str, str]]], dict[str, Any]]] = {
    "openai": _openai, "chatml": _chatml, "sharegpt": _sharegpt,
}


def records(contract: Contract, fmt: str, split: str = "train") -> list[dict[str, Any]]:
    """One record per row of `split` in format `fmt`; TaskcError on an unknown format or split."""
    if fmt not in RECORD:
        raise TaskcError(f"unknown export format '{fmt}' (expected one of: {', '.join(FORMATS)})")
    if split not in contract.splits:
        have = ", ".join(sorted(contract.splits))
        raise TaskcError(f"task '{contract.name}' has no {split} split (it has: {have})")
    make = RECORD[fmt]
    return [make(conversation(contract, split, i)) for i in range(len(contract.splits[split].rows))]


def export(contract: Contract, fmt: str, split: str = "train") -> str:
    """The split as JSONL text in format `fmt` (one compact record per line)."""
    lines = [_dumps(record) for record in records(contract, fmt, split)]
    return "".join(line + "\n" for line in lines)
