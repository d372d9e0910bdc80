"""JSON Schema helpers for provider-side constraints: OpenAI strict mode and its inverse.

OpenAI's strict mode wants every object closed (`additionalProperties: false`) with every
property listed in `required`; an optional property is made nullable instead, and `default`
is not accepted. `make_strict` does that to a copy; `drop_optional_nulls` undoes it on a value
the model produced (a null for a property the original schema did not require means "omitted").
"""

from __future__ import annotations

import copy
from typing import Any

_UNSUPPORTED = ("default",)


def _is_object(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"] if kind != "null" else kind
    elif isinstance(kind, list):
        out["type"] = kind if "null" in kind else [*kind, "null"]
    elif "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    else:
        return {"anyOf": [out, {"type": "null"}]}
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def make_strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A strict-mode copy of `schema` (the input is not changed)."""
    return _strict(copy.deepcopy(schema))


def _strict(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    for key in _UNSUPPORTED:
        schema.pop(key, None)
    for key in ("items", "additionalItems", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = _strict(schema[key])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            schema[key] = [_strict(s) for s in schema[key]]
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            schema[key] = {k: _strict(v) for k, v in schema[key].items()}
    if _is_object(schema):
        props = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        new_props = {}
        for name, sub in props.items():
            sub = _strict(sub)
            new_props[name] = sub if name in required else _nullable(sub)
        schema["type"] = "object" if schema.get("type") in (None, "object") else schema["type"]
        schema["properties"] = new_props
        schema["required"] = list(new_props)
        schema["additionalProperties"] = False
    return schema


def drop_optional_nulls(value: Any, schema: dict[str, Any] | None) -> Any:
    """`value` without the nulls strict mode forced into properties `schema` did not require."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict) and _is_object(schema):
        props = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        out = {}
        for name, item in value.items():
            if item is None and name in props and name not in required:
                continue
            out[name] = drop_optional_nulls(item, props.get(name))
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [drop_optional_nulls(item, schema["items"]) for item in value]
    return value
