"""JSONL rows are read through orjson for speed, with exactly the values Python's json gives:
integers past 64 bits stay integers, NaN / 1e400 / lone surrogates are read as json reads them,
and an invalid line is still reported at its line and column."""

import json

import pytest

from taskc.compiler.data import DataError, _read_jsonl

LINES = [
    '{"text": "plain", "n": 3, "x": 0.1, "answer": "pos"}',
    '{"text": "big", "n": 123456789012345678901234567890, "answer": "neg"}',
    '{"text": "edge", "n": 18446744073709551615, "m": -9223372036854775808, "answer": "neg"}',
    '{"text": "nan", "x": NaN, "y": Infinity, "z": 1e400, "answer": "pos"}',
    '{"text": "\\ud800 lone", "answer": "pos"}',
    '{"text": "dup", "text": "last", "answer": "pos"}',
    '{"text": "unicode \\u00e9 \\u2603", "nested": {"b": [1, 2.5, null, true]}, "answer": "pos"}',
]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_every_row_is_the_value_pythons_json_reads():
    records, lines, fields = _read_jsonl("\n".join(LINES) + "\n\n", "t.jsonl")
    expected = [json.loads(line) for line in LINES]
    assert all(_same(r, e) for r, e in zip(records, expected)) and len(records) == len(expected)
    assert type(records[1]["n"]) is int and records[1]["n"] == 123456789012345678901234567890
    assert records[2]["n"] == 2 ** 64 - 1 and records[2]["m"] == -(2 ** 63)
    assert lines == list(range(1, len(LINES) + 1))
    assert fields == ["text", "n", "x", "answer", "m", "y", "z", "nested"]


def test_an_invalid_line_is_reported_at_its_line_and_column():
    with pytest.raises(DataError) as info:
        _read_jsonl('{"text": "ok", "answer": "pos"}\n{"text": "broken" "answer": "pos"}\n', "t.jsonl")
    assert str(info.value) == "t.jsonl:2:19: invalid JSON: Expecting ',' delimiter"
    with pytest.raises(DataError) as info:
        _read_jsonl('["not", "an", "object"]\n', "t.jsonl")
    assert str(info.value) == "t.jsonl:1:1: each line must be a JSON object"
