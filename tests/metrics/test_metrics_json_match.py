"""json_match on objects built from the presidio PII records."""

from __future__ import annotations

import random

import pytest

from taskc.metrics import MetricInput, get_metric

SCHEMA = {
    "type": "object",
    "properties": {
        "redacted": {"type": "string"},
        "entities": {"type": "array", "items": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "value": {"type": "string"},
                           "start": {"type": "integer"}},
            "required": ["type", "value", "start"]}},
        "language": {"type": ["string", "null"]},
    },
    "required": ["redacted", "entities"],
}
OUTPUT = {"kind": "object", "schema": SCHEMA}


def gold_object(record: dict) -> dict:
    return {"redacted": record["masked"],
            "entities": [{"type": s["entity_type"], "value": s["entity_value"],
                          "start": s["start_position"]} for s in record["spans"]]}


def score(metric, parsed, reference):
    return metric.score(MetricInput(raw=None, parsed=parsed, reference=reference, output=OUTPUT))


@pytest.fixture(scope="module")
def multi(pii_records):
    """Records with at least two distinct entities (so that order can differ)."""
    out = [r for r in pii_records
           if len({(s["entity_type"], s["entity_value"]) for s in r["spans"]}) >= 2]
    assert len(out) > 100
    return out


def test_self_and_reordered(pii_records, multi):
    ordered = get_metric("json_match")({})
    unordered = get_metric("json_match")({"unordered": ["entities"]})
    for rec in pii_records:
        gold = gold_object(rec)
        assert score(ordered, gold, gold).value == 1.0
    rng = random.Random(1)
    for rec in multi[:200]:
        gold = gold_object(rec)
        ents = [dict(reversed(list(e.items()))) for e in gold["entities"]]
        while ents == gold["entities"]:
            rng.shuffle(ents)
        pred = {"entities": ents, "redacted": gold["redacted"]}
        s = score(unordered, pred, gold)
        assert s.value == 1.0 and s.detail == {
            "fields": {"redacted": True, "entities": True, "language": True}}
        s = score(ordered, pred, gold)
        assert s.value == 0.0
        assert s.detail == {"fields": {"redacted": True, "entities": False, "language": True},
                            "reason": "fields differ: entities"}


def test_multiset_counts_and_structural_elements(multi):
    m = get_metric("json_match")({"unordered": ["entities"]})
    gold = gold_object(multi[0])
    a, b = gold["entities"][0], gold["entities"][1]
    ref = {**gold, "entities": [a, a, b]}
    assert score(m, {**gold, "entities": [a, b, b]}, ref).value == 0.0
    assert score(m, {**gold, "entities": [b, a, a]}, ref).value == 1.0
    as_float = {**a, "start": float(a["start"])}
    assert score(m, {**gold, "entities": [b, as_float, a]}, ref).value == 1.0
    as_text = {**a, "start": str(a["start"])}
    assert score(m, {**gold, "entities": [b, as_text, a]}, ref).value == 0.0


def test_missing_optional_field_equals_null(pii_records):
    m = get_metric("json_match")({})
    gold = gold_object(pii_records[0])
    assert score(m, gold, {**gold, "language": None}).value == 1.0
    assert score(m, {**gold, "language": None}, gold).value == 1.0
    s = score(m, {**gold, "language": "en"}, gold)
    assert s.value == 0.0 and s.detail["fields"]["language"] is False
    # a key outside the schema counts as a field too
    s = score(m, {**gold, "note": "x"}, gold)
    assert s.value == 0.0 and s.detail["fields"]["note"] is False


def test_bool_and_number_types(pii_records):
    m = get_metric("json_match")({})
    ref = {"redacted": pii_records[0]["masked"], "entities": [], "language": None, "n": 1}
    assert score(m, {**ref, "n": 1.0}, ref).value == 1.0
    assert score(m, {**ref, "n": True}, ref).value == 0.0
    assert score(m, {**ref, "n": "1"}, ref).value == 0.0


def test_invalid_output_and_per_field_aggregate(pii_records):
    m = get_metric("json_match")({"unordered": ["entities"]})
    golds = [gold_object(r) for r in pii_records[:4]]
    scores = [
        score(m, golds[0], golds[0]),                                   # all right
        score(m, {**golds[1], "redacted": "x"}, golds[1]),              # redacted wrong
        score(m, {**golds[2], "entities": []}, golds[2]),               # entities wrong
        score(m, None, golds[3]),                                       # invalid output
    ]
    assert scores[3].detail == {"reason": "invalid output"}
    assert [s.value for s in scores] == [1.0, 0.0, 0.0, 0.0]
    assert m.aggregate(scores) == {
        "mean": 0.25, "n": 4,
        "per_field": {"redacted": 0.5, "entities": 0.5, "language": 0.75}}


def test_inputs_not_mutated(multi):
    m = get_metric("json_match")({"unordered": ["entities"]})
    gold = gold_object(multi[0])
    pred = {**gold, "entities": list(reversed(gold["entities"]))}
    snapshot = (repr(gold), repr(pred))
    score(m, pred, gold)
    assert snapshot == (repr(gold), repr(pred))
