"""Ready-made `Request` values, one per output kind, for backend and runner tests."""

from __future__ import annotations

from typing import Any

from taskc.constraints.ir import Constraint
from taskc.runner.types import Request

SYSTEM = "You classify."
LABELS = ("card_lost", "refund_request", "top_up_failed")
OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"redacted": {"type": "string"}, "entities": {"type": "array", "items": {"type": "string"}}},
    "required": ["redacted", "entities"],
    "additionalProperties": False,
}
TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "toggle_lights",
        "description": "Turn lights on or off in a room.",
        "parameters": {
            "type": "object",
            "properties": {
                "room": {"type": "string", "enum": ["kitchen", "bedroom"]},
                "state": {"type": "string", "enum": ["on", "off"]},
            },
            "required": ["state"],
            "additionalProperties": False,
        },
    },
    {
        "name": "set_thermostat",
        "description": "Set the target temperature.",
        "parameters": {
            "type": "object",
            "properties": {
                "temperature": {"type": "integer", "minimum": 60, "maximum": 80},
                "mode": {"type": "string", "enum": ["heat", "cool", "auto"], "default": "auto"},
            },
            "required": ["temperature"],
            "additionalProperties": False,
        },
    },
)
TOOL_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "object", "properties": {"name": {"const": t["name"]}, "parameters": t["parameters"]},
         "required": ["name", "parameters"], "additionalProperties": False}
        for t in TOOLS
    ]
}
SQL_GRAMMAR = 'start: "SELECT " COLS " FROM " TABLE\nCOLS: "*" | "name"\nTABLE: "singer" | "concert"\n'


def make_request(kind: str, text: str = "hello", index: int = 0, repeat: int = 0, **generation: Any) -> Request:
    """A request of output kind `kind` (label, object, tool_call, sql, text, regex) for `text`."""
    gen = {"temperature": 0, "max_tokens": 64, **generation}
    messages = ({"role": "system", "content": SYSTEM}, {"role": "user", "content": text})
    common = dict(index=index, repeat=repeat, messages=messages, generation=gen, messages_hash=f"h{index}")
    if kind == "label":
        return Request(output_kind="label", constraint=Constraint("choice", choices=LABELS), name="intent", **common)
    if kind == "object":
        return Request(output_kind="object", constraint=Constraint.json(OBJECT_SCHEMA), strict_schema=OBJECT_SCHEMA, **common)
    if kind == "tool_call":
        return Request(output_kind="tool_call", constraint=Constraint.json(TOOL_SCHEMA), tools=TOOLS, **common)
    if kind == "sql":
        return Request(output_kind="sql", constraint=Constraint("grammar", grammar=SQL_GRAMMAR), **common)
    if kind == "regex":
        return Request(output_kind="text", constraint=Constraint("regex", pattern="[0-9]{3}"), **common)
    return Request(output_kind="text", constraint=None, **common)
