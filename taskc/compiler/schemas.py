"""JSON Schema helpers: the strict provider form, key ordering and keyword normalization."""

from __future__ import annotations

from typing import Any

# Keywords every strict provider (OpenAI strict mode, Anthropic structured outputs) accepts.
_STRICT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf",
                    "description", "$ref", "$defs", "title"}


def to_strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The strict form of `schema`: every property required, optional ones nullable, objects
    closed, `const` as a one-value `enum`, and no keyword outside the strict subset."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "const":
            out["enum"] = [value]
        elif key == "oneOf":
            out["anyOf"] = [to_strict(v) for v in value]
        elif key in _STRICT_KEYWORDS:
            out[key] = value
    if "anyOf" in out:
        out["anyOf"] = [to_strict(v) for v in out["anyOf"]]
    if "items" in out and isinstance(out["items"], dict):
        out["items"] = to_strict(out["items"])
    if "$defs" in out:
        out["$defs"] = {k: to_strict(v) for k, v in out["$defs"].items()}
    if "properties" in out or out.get("type") == "object":
        props = out.get("properties", {})
        required = set(schema.get("required", []))
        out["properties"] = {
            name: (to_strict(sub) if name in required else _nullable(to_strict(sub))) for name, sub in props.items()
        }
        out["required"] = list(props)
        out["additionalProperties"] = False
        out["type"] = "object"
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and "properties" not in schema:
        result = dict(schema, type=[kind, "null"])
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
        return result
    if isinstance(kind, list):
        return schema if "null" in kind else dict(schema, type=[*kind, "null"])
    return {"anyOf": [schema, {"type": "null"}]}


def order_like(value: Any, schema: dict[str, Any] | None) -> Any:
    """`value` with object keys in the schema's `properties` order (unknown keys after, as given),
    recursively: the order a constrained decoder produces."""
    if schema is None:
        return value
    if isinstance(value, dict):
        branch = _object_branch(value, schema)
        props = branch.get("properties", {}) if branch else {}
        ordered = {k: order_like(value[k], props[k]) for k in props if k in value}
        ordered.update({k: v for k, v in value.items() if k not in props})
        return ordered
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else _array_branch(schema)
        return [order_like(v, items) for v in value]
    return value


def _object_branch(value: dict, schema: dict[str, Any]) -> dict[str, Any] | None:
    if "properties" in schema:
        return schema
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        props = branch.get("properties")
        if props is not None and set(value) <= set(props):
            return branch
    return None


def _array_branch(schema: dict[str, Any]) -> dict[str, Any] | None:
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        if isinstance(branch.get("items"), dict):
            return branch["items"]
    return None


def drop_strict_nulls(value: Any, schema: dict[str, Any]) -> Any:
    """Undo the strict form: drop `null` for properties the full schema does not require and
    that do not allow null, so strict-mode answers validate against the full schema."""
    if not isinstance(value, dict):
        if isinstance(value, list) and isinstance(schema.get("items"), dict):
            return [drop_strict_nulls(v, schema["items"]) for v in value]
        return value
    branch = _object_branch(value, schema) or {}
    props = branch.get("properties", {})
    required = set(branch.get("required", []))
    out = {}
    for key, item in value.items():
        sub = props.get(key)
        if item is None and sub is not None and key not in required and not _allows_null(sub):
            continue
        out[key] = drop_strict_nulls(item, sub) if isinstance(sub, dict) else item
    return out


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_allows_null(b) for b in schema.get("anyOf", []))


_KEYWORD_ORDER = ["$schema", "$id", "title", "description", "type", "const", "enum", "default", "properties",
                  "required", "additionalProperties", "items", "minItems", "maxItems", "uniqueItems", "minLength",
                  "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                  "multipleOf", "anyOf", "oneOf", "allOf", "$defs"]
_RANK = {k: i for i, k in enumerate(_KEYWORD_ORDER)}


def normalize_schema(schema: Any) -> Any:
    """JSON Schema keywords in one fixed order (so a spec's key order does not change what models
    see), keeping the order of `properties` (which fixes the order of the answer's keys)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key in sorted(schema, key=lambda k: (_RANK.get(k, len(_RANK)), k)):
        value = schema[key]
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            out[key] = {name: normalize_schema(sub) for name, sub in value.items()}
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            out[key] = [normalize_schema(sub) for sub in value]
        elif key in ("items", "additionalProperties", "not", "contains") and isinstance(value, dict):
            out[key] = normalize_schema(value)
        else:
            out[key] = value
    return out
