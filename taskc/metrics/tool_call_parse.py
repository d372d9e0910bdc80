"""Parse one tool call out of whatever shape a model emitted.

`parse_tool_call(raw)` returns `{"name": str, "parameters": dict}` or None. Accepted shapes
(JSON at any indentation, optionally inside a ```json fence, or surrounded by prose):

- `{"name", "parameters"}`; `{"name", "arguments"}` with arguments as an object or a JSON
  string (also `"input"` / `"args"` for the argument key); a missing argument key means `{}`;
- OpenAI: `{"type": "function", "function": {"name", "arguments": "<json>"}}`, a message or
  response holding `"tool_calls"` (or `"choices"`), and a bare list of such calls;
- Qwen/Hermes: `<tool_call>{...}</tool_call>` with text around it;
- Anthropic: `{"type": "tool_use", "name", "input"}`, or a `"content"` list holding one.

When several calls are present, the first one is returned.
"""

from __future__ import annotations

import json
import re
from typing import Any

_decoder = json.JSONDecoder()
_scan_once = _decoder.scan_once  # the C scanner: skips json.loads' Python-level wrappers
_loads = json.loads
_TOOL_CALL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.S)
_ARG_KEYS = ("parameters", "arguments", "input", "args")
_MAX_SCAN = 32


def parse_tool_call(raw: str) -> dict | None:
    """The first tool call found in `raw` as `{"name", "parameters"}`, or None."""
    if not isinstance(raw, str):
        return extract_tool_call(raw)
    decoded = False
    if raw[:1] == "{":  # fast path: one JSON object, nothing but whitespace after it
        try:
            value, end = _scan_once(raw, 0)
        except (StopIteration, ValueError):
            value, end = None, 0
        if end and (end == len(raw) or raw[end:].isspace()):
            found = extract_tool_call(value)
            if found is not None:
                return found
            decoded = True
    text = raw.strip()
    if not decoded and text[:1] in "{[" and text:
        try:
            found = extract_tool_call(_loads(text))
        except ValueError:
            found = None
        if found is not None:
            return found
    if "<tool_call>" in text:
        for m in _TOOL_CALL_TAG.finditer(text):
            found = _from_text(m.group(1))
            if found is not None:
                return found
    if "```" in text:
        for m in _FENCE.finditer(text):
            found = _from_text(m.group(1).strip())
            if found is not None:
                return found
    return _scan(text)


def _from_text(text: str) -> dict | None:
    try:
        return extract_tool_call(_loads(text))
    except ValueError:
        return _scan(text)


def _scan(text: str) -> dict | None:
    """Try each `{` / `[` in turn as the start of a JSON value (bounded)."""
    start = 0
    for _ in range(_MAX_SCAN):
        positions = [p for p in (text.find("{", start), text.find("[", start)) if p >= 0]
        if not positions:
            return None
        pos = min(positions)
        try:
            value, _end = _decoder.raw_decode(text, pos)
        except ValueError:
            start = pos + 1
            continue
        found = extract_tool_call(value)
        if found is not None:
            return found
        start = pos + 1
    return None


def extract_tool_call(value: Any) -> dict | None:
    """The first tool call in an already-decoded JSON value, as `{"name", "parameters"}`."""
    if type(value) is dict:  # fast path: {"name": str, "parameters": dict}
        name, params = value.get("name"), value.get("parameters")
        if type(name) is str and type(params) is dict and "function" not in value \
                and value.get("type") != "function":
            return {"name": name, "parameters": params}
    if isinstance(value, list):
        for item in value:
            found = extract_tool_call(item)
            if found is not None:
                return found
        return None
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    kind = value.get("type")
    if isinstance(name, str) and kind not in ("function",) and "function" not in value:
        return _call(name, value)
    for key in ("tool_calls", "function", "choices", "message", "content"):
        inner = value.get(key)
        if isinstance(inner, (dict, list)):
            found = extract_tool_call(inner)
            if found is not None:
                return found
        elif key == "content" and isinstance(inner, str) and inner.strip():
            found = parse_tool_call(inner)
            if found is not None:
                return found
    return None


def _call(name: str, value: dict) -> dict | None:
    for key in _ARG_KEYS:
        if key in value:
            args = value[key]
            break
    else:
        return {"name": name, "parameters": {}}
    if isinstance(args, str):
        if not args.strip():
            return {"name": name, "parameters": {}}
        try:
            args = _loads(args)
        except ValueError:
            return None
    if args is None:
        return {"name": name, "parameters": {}}
    if not isinstance(args, dict):
        return None
    return {"name": name, "parameters": args}
