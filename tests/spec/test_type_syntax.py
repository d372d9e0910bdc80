"""The short type syntax lowers to JSON Schema and points parse errors at a column."""

import pytest

from taskc.spec.type_syntax import TypeSyntaxError, parse_type


@pytest.mark.parametrize(
    "text, schema",
    [
        ("string", {"type": "string"}),
        ("integer", {"type": "integer"}),
        ("number?", {"type": ["number", "null"]}),
        ("list[boolean]", {"type": "array", "items": {"type": "boolean"}}),
        ('"a" | "b"', {"type": "string", "enum": ["a", "b"]}),
        ("'x' | 'y'", {"type": "string", "enum": ["x", "y"]}),
        ('("a" | "b")?', {"type": ["string", "null"], "enum": ["a", "b", None]}),
        ("1 | 2", {"type": "integer", "enum": [1, 2]}),
        ("string | integer", {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        (
            "{a: string, b: list[integer?]}",
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": ["integer", "null"]}}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
        ),
        (
            "list[{v: string}]?",
            {"anyOf": [{"type": "array", "items": {"type": "object", "properties": {"v": {"type": "string"}},
                                                    "required": ["v"], "additionalProperties": False}},
                       {"type": "null"}]},
        ),
    ],
)
def test_lowering(text, schema):
    assert parse_type(text) == schema


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("strin", "unknown type 'strin' (expected string, integer, number, boolean, list[T], a literal or {field: T})", 1),
        ("list[strng]", "unknown type 'strng' (expected string, integer, number, boolean, list[T], a literal or {field: T})", 6),
        ("list[string", "unexpected end of type", 12),
        ("{a: string,, b: integer}", "unexpected ',' in type", 12),
        ('"a" | "a"', "duplicate literal in union", 1),
        ("{a: string, a: integer}", "duplicate field 'a' in type", 13),
        ("string $", "unexpected character '$' in type", 8),
    ],
)
def test_errors_point_at_the_column(text, message, column):
    with pytest.raises(TypeSyntaxError) as info:
        parse_type(text)
    assert str(info.value) == message
    assert info.value.column == column
