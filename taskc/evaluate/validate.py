"""Parse and validate a raw model output against the contract, the same way for every backend."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from taskc.compiler.schemas import drop_strict_nulls

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```\s*$", re.S)


@dataclass(frozen=True)
class Parsed:
    """The outcome of validation: `value` when valid, else `error` says why."""

    value: Any
    valid: bool
    error: str | None = None


def strip_fence(text: str) -> str:
    """The body of a Markdown code fence, or the text itself."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


@lru_cache(maxsize=64)
def _validator(schema_json: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_json))


def _schema_error(value: Any, schema: dict[str, Any]) -> str | None:
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"schema violation at /{where}: {error.message[:200]}"


def parse_output(output: dict[str, Any], validate_schema: dict[str, Any] | None, raw: str | None) -> Parsed:
    """Validate `raw` for an output declaration (contract.json's `output`)."""
    if raw is None:
        return Parsed(None, False, "no output")
    kind = output["kind"]
    text = raw.strip()
    if kind == "label":
        labels = output["labels"]
        if text in labels:
            return Parsed(text, True)
        try:
            value = json.loads(strip_fence(text))
        except ValueError:
            value = None
        if isinstance(value, dict) and len(value) == 1:
            value = next(iter(value.values()))
        if isinstance(value, str) and value in labels:
            return Parsed(value, True)
        return Parsed(None, False, f"not one of the {len(labels)} labels: {text[:80]!r}")
    if kind == "tool_call":
        from taskc.metrics.tool_call_parse import parse_tool_call

        body = strip_fence(text)
        try:
            wrapped = json.loads(body)
        except ValueError:
            wrapped = None
        if isinstance(wrapped, dict) and set(wrapped) == {"tool_call"}:
            body = json.dumps(wrapped["tool_call"])
        call = parse_tool_call(body)
        if call is None:
            return Parsed(None, False, "no tool call found in the output")
        call = drop_strict_nulls(call, validate_schema or {})
        problem = _schema_error(call, validate_schema) if validate_schema else None
        return Parsed(call, True) if problem is None else Parsed(None, False, problem)
    if kind == "object":
        try:
            value = json.loads(strip_fence(text))
        except ValueError as exc:
            return Parsed(None, False, f"not valid JSON: {exc}")
        value = drop_strict_nulls(value, validate_schema or {})
        problem = _schema_error(value, validate_schema) if validate_schema else None
        return Parsed(value, True) if problem is None else Parsed(None, False, problem)
    if kind == "sql":
        query = strip_fence(text).strip().rstrip(";").strip()
        if not query:
            return Parsed(None, False, "empty query")
        return Parsed(query, True)
    return Parsed(raw, True)
