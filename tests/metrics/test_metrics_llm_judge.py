"""llm_judge: the judge prompt, the verdict parser and the metric."""

from __future__ import annotations

import json

import jinja2
import pytest

from taskc.metrics import MetricInput, get_metric
from taskc.metrics.llm_judge import (JUDGE_SCHEMA, JUDGE_SYSTEM, JUDGE_USER, judge_messages,
                                     parse_verdict)

OPTIONS = {"judge": {"backend": "openai", "model": "gpt-4o-mini"},
           "rubric": "The answer names the same entity as the reference."}


def test_schema():
    assert JUDGE_SCHEMA == {
        "type": "object",
        "properties": {"verdict": {"type": "string", "enum": ["correct", "incorrect"]},
                       "reason": {"type": "string"}},
        "required": ["verdict", "reason"], "additionalProperties": False}


def test_templates_are_jinja_with_the_documented_variables():
    env = jinja2.Environment()
    from jinja2 import meta
    found = meta.find_undeclared_variables(env.parse(JUDGE_USER)) | \
        meta.find_undeclared_variables(env.parse(JUDGE_SYSTEM))
    assert found == {"rubric", "inputs", "reference", "prediction"}


def test_messages_from_real_question(hotpot):
    row = hotpot[1]
    msgs = judge_messages(OPTIONS["rubric"], {"question": row["question"]}, row["answer"],
                          "Chief of Protocol of the United States")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == JUDGE_SYSTEM
    assert msgs[1]["content"] == (
        "## Rubric\nThe answer names the same entity as the reference.\n\n"
        "## Task input\n### question\nWhat government position was held by the woman who "
        "portrayed Corliss Archer in the film Kiss and Tell?\n\n"
        "## Reference answer\nChief of Protocol\n\n"
        "## Model answer\nChief of Protocol of the United States\n\n"
        "Is the model answer correct according to the rubric? Answer with the JSON object.")
    # rendering is the same as rendering the stored template with plain Jinja
    user = jinja2.Template(JUDGE_USER).render(
        rubric=OPTIONS["rubric"], inputs={"question": row["question"]},
        reference=row["answer"], prediction="Chief of Protocol of the United States")
    assert user == msgs[1]["content"]


def test_non_string_values_render_as_comparable_json():
    msgs = judge_messages("r", {"n": 3, "items": ["a"]}, {"b": 1, "a": [1.0]}, None)
    assert "### n\n3\n\n### items\n[\"a\"]\n\n" in msgs[1]["content"]
    assert "## Reference answer\n{\"a\":[1],\"b\":1}\n\n" in msgs[1]["content"]
    assert "## Model answer\nnull\n\n" in msgs[1]["content"]


def test_template_does_not_execute_input_text():
    msgs = judge_messages("r", {"q": "{{ 7 * 7 }}"}, "{% if true %}x{% endif %}", "p")
    assert "{{ 7 * 7 }}" in msgs[1]["content"]
    assert "{% if true %}x{% endif %}" in msgs[1]["content"]


@pytest.mark.parametrize("raw,expected", [
    ('{"verdict": "correct", "reason": "same person"}', (1.0, "same person")),
    ('{"reason": "wrong city", "verdict": "incorrect"}', (0.0, "wrong city")),
    ('```json\n{"verdict": "Correct", "reason": "ok"}\n```', (1.0, "ok")),
    ('Verdict below.\n{"verdict": "incorrect", "reason": "no"}\nThanks', (0.0, "no")),
    ('verdict: correct', (1.0, "")),
    ('{"verdict": "maybe", "reason": "unsure"}', (None, "unparseable judge verdict")),
    ('I think so', (None, "unparseable judge verdict")),
    (None, (None, "no judge verdict")),
])
def test_parse_verdict(raw, expected):
    assert parse_verdict(raw) == expected


def test_score(hotpot):
    m = get_metric("llm_judge")(OPTIONS)
    row = hotpot[0]
    base = dict(raw="yes", parsed="yes", reference=row["answer"],
                output={"kind": "text"}, inputs={"question": row["question"]})
    assert m.score(MetricInput(**base)).detail == {"reason": "no judge verdict"}
    assert m.score(MetricInput(**base)).value == 0.0
    good = m.score(MetricInput(**base, judge_raw=json.dumps(
        {"verdict": "correct", "reason": "both say yes"})))
    assert (good.value, good.detail) == (1.0, {"verdict": "correct",
                                               "judge_reason": "both say yes"})
    bad = m.score(MetricInput(**base, judge_raw='{"verdict": "incorrect", "reason": "no"}'))
    assert (bad.value, bad.detail) == (0.0, {"verdict": "incorrect", "judge_reason": "no",
                                             "reason": "judged incorrect"})
    junk = m.score(MetricInput(**base, judge_raw="hmm"))
    assert (junk.value, junk.detail) == (0.0, {"reason": "unparseable judge verdict"})
    invalid = m.score(MetricInput(**{**base, "parsed": None}, judge_raw='{"verdict":"correct"}'))
    assert invalid.detail == {"reason": "invalid output"}
    assert m.messages(MetricInput(**base)) == judge_messages(
        OPTIONS["rubric"], {"question": row["question"]}, row["answer"], "yes")
