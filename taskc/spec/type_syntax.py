"""The short type syntax of specs, parsed with lark and lowered to JSON Schema.

    string | integer | number | boolean        scalar types
    T?                                         T or null
    list[T]                                    an array of T
    "a" | "b"                                  one of the literals
    {name: T, other: U}                        an object (every field required)
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

_GRAMMAR = r"""
?start: union
?union: optional ("|" optional)*        -> union
optional: primary QMARK?
?primary: NAME                            -> named
        | "list" "[" union "]"            -> list_of
        | "{" [field ("," field)*] ","? "}" -> object
        | literal
        | "(" union ")"
field: NAME ":" union
literal: ESCAPED_STRING                   -> dq_string
       | SQ_STRING                        -> sq_string
       | SIGNED_NUMBER                    -> number
QMARK: "?"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
SQ_STRING: /'[^']*'/
%import common.ESCAPED_STRING
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""

SCALARS = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "str": "string",
           "int": "integer", "float": "number", "bool": "boolean"}


class TypeSyntaxError(ValueError):
    """A short type string that does not parse; `column` is 1-based inside the string."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.column = column


@lru_cache(maxsize=1)
def _parser():
    from lark import Lark

    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_type(text: str) -> dict[str, Any]:
    """Lower a short type string to JSON Schema; raise TypeSyntaxError pointing at the column."""
    stripped = text.strip()
    if stripped in SCALARS:  # fast path: most inputs are plain `string`
        return {"type": SCALARS[stripped]}
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    try:
        tree = _parser().parse(text)
    except UnexpectedEOF:
        raise TypeSyntaxError("unexpected end of type", len(text) + 1) from None
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise TypeSyntaxError("unexpected end of type", len(text) + 1) from None
        raise TypeSyntaxError(f"unexpected '{exc.token}' in type", exc.column) from None
    except UnexpectedCharacters as exc:
        raise TypeSyntaxError(f"unexpected character '{text[exc.pos_in_stream]}' in type", exc.column) from None
    except UnexpectedInput as exc:  # pragma: no cover - the three above cover lark's errors
        raise TypeSyntaxError("invalid type", getattr(exc, "column", 1)) from None
    return _lower(tree)


def _lower(tree) -> dict[str, Any]:
    from lark import Token

    kind = tree.data
    if kind == "union":
        parts = [_lower(child) for child in tree.children]
        return parts[0] if len(parts) == 1 else _union(parts, tree)
    if kind == "optional":
        inner = _lower(tree.children[0])
        if len(tree.children) == 2:
            return nullable(inner)
        return inner
    if kind == "named":
        name = str(tree.children[0])
        if name not in SCALARS:
            raise TypeSyntaxError(
                f"unknown type '{name}' (expected string, integer, number, boolean, list[T], "
                "a literal or {field: T})",
                tree.meta.column,
            )
        return {"type": SCALARS[name]}
    if kind == "list_of":
        return {"type": "array", "items": _lower(tree.children[0])}
    if kind == "object":
        props: dict[str, Any] = {}
        for field in tree.children:
            if not hasattr(field, "data"):
                continue
            name_tok: Token = field.children[0]
            if str(name_tok) in props:
                raise TypeSyntaxError(f"duplicate field '{name_tok}' in type", name_tok.column)
            props[str(name_tok)] = _lower(field.children[1])
        return object_schema(props)
    if kind in ("dq_string", "sq_string", "number"):
        return {"const": _literal(tree)}
    raise TypeSyntaxError(f"unsupported type construct '{kind}'", getattr(tree.meta, "column", 1))


def _literal(tree) -> Any:
    token = str(tree.children[0])
    if tree.data == "dq_string":
        return json.loads(token)
    if tree.data == "sq_string":
        return token[1:-1]
    value = float(token)
    return int(value) if value.is_integer() and "." not in token and "e" not in token.lower() else value


def _union(parts: list[dict[str, Any]], tree) -> dict[str, Any]:
    if all("const" in p for p in parts):
        values = [p["const"] for p in parts]
        if len(set(map(json.dumps, values))) != len(values):
            raise TypeSyntaxError("duplicate literal in union", tree.meta.column)
        types = {_json_type(v) for v in values}
        schema: dict[str, Any] = {"type": types.pop()} if len(types) == 1 else {}
        schema["enum"] = values
        return schema
    return {"anyOf": parts}


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "integer" if isinstance(value, int) else "number"


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null, in the form grammar engines and strict providers both take."""
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    if "enum" in schema and isinstance(schema.get("type"), str):
        return {"type": [schema["type"], "null"], "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def object_schema(props: dict[str, Any]) -> dict[str, Any]:
    """A closed object whose every field is required (optional ones are nullable instead)."""
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
