"""Inputs of type `messages`: a chat history spliced into the prompt as turns.

A history is a list of `{"role": "user"|"assistant"|"tool"|"system", "content": str}` turns (or a
JSON string holding one). An assistant turn may carry `tool_calls` (OpenAI shape or
`{"name", "parameters"}`) instead of content: it is rendered as the compact JSON tool call, the
same form the model is asked to answer in, so every backend sees the same text. A `tool` turn
(a tool's result) is sent as a user turn that starts with "Tool result: ".
"""

from __future__ import annotations

import json
from typing import Any

from taskc.common.encoding import compact_json

ROLES = ("system", "user", "assistant", "tool")


def history_turns(value: Any) -> list[dict[str, str]]:
    """Normalize a messages value to chat turns; raise ValueError saying what is wrong."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"a messages input must be a JSON list of turns: {exc.msg}") from None
    if not isinstance(value, list):
        raise ValueError("a messages input must be a list of {role, content} turns")
    turns = []
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            raise ValueError(f"turn {i} needs a role (one of: {', '.join(ROLES)})")
        role = turn["role"]
        if role == "assistant" and turn.get("tool_calls"):
            content = "\n".join(compact_json(_call(c)) for c in turn["tool_calls"])
        elif isinstance(turn.get("content"), str):
            content = turn["content"]
        else:
            raise ValueError(f"turn {i} ({role}) needs a string content")
        if role == "tool":
            role, content = "user", f"Tool result: {content}"
        turns.append({"role": role, "content": content})
    return turns


def _call(call: Any) -> dict[str, Any]:
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        call = call["function"]
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ValueError("a tool call needs a name")
    args = call.get("parameters", call.get("arguments", {}))
    if isinstance(args, str):
        args = json.loads(args)
    return {"name": call["name"], "parameters": args}
