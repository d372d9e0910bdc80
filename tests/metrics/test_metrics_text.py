"""exact_match, f1 and rouge_l on real labels, answers and docstrings."""

from __future__ import annotations

import pytest

from taskc.metrics import MetricInput, get_metric
from taskc.metrics.text import lcs_length

LABEL = {"kind": "label", "labels": []}
TEXT = {"kind": "text"}


def score(name, options, parsed, reference, output=TEXT):
    return get_metric(name)(options).score(MetricInput(raw=None if parsed is None else str(parsed),
                                                       parsed=parsed, reference=reference,
                                                       output=output))


def test_exact_match_labels_default_strip(banking_test, banking_labels):
    em = get_metric("exact_match")({})
    out = {"kind": "label", "labels": banking_labels}
    rows = banking_test[:200]
    for row in rows:
        gold = row["category"]
        assert em.score(MetricInput(gold, gold, gold, out)).value == 1.0
        assert em.score(MetricInput(gold, f"  {gold}\n", gold, out)).value == 1.0
        assert em.score(MetricInput(gold, gold.upper(), gold, out)).value == 0.0
    wrong = em.score(MetricInput("card_arrival", "card_linking", "card_arrival", out))
    assert wrong.value == 0.0 and wrong.detail == {"reason": "mismatch"}


def test_exact_match_normalizers(hotpot):
    answers = {r["answer"] for r in hotpot}
    assert "Chief of Protocol" in answers
    assert score("exact_match", {}, "chief of protocol", "Chief of Protocol").value == 0.0
    assert score("exact_match", {"normalize": "casefold"}, "chief of protocol",
                 "Chief of Protocol").value == 1.0
    # casefold alone keeps surrounding whitespace; the list applies both in order
    assert score("exact_match", {"normalize": "casefold"}, " chief of protocol",
                 "Chief of Protocol").value == 0.0
    assert score("exact_match", {"normalize": ["strip", "casefold"]}, " chief of protocol",
                 "Chief of Protocol").value == 1.0
    assert score("exact_match", {"normalize": "squad"}, "The Chief, of  Protocol.",
                 "Chief of Protocol").value == 1.0
    assert score("exact_match", {"normalize": "squad"}, "Greenwich Village",
                 "Greenwich Village, New York City").value == 0.0
    assert score("exact_match", {"normalize": []}, " yes", "yes").value == 0.0


def test_exact_match_dict_outputs_compare_comparable_json():
    ref = {"name": "git_pull", "parameters": {"rebase": False, "remote": "origin"}}
    same = {"parameters": {"remote": "origin", "rebase": False}, "name": "git_pull"}
    assert score("exact_match", {}, same, ref, {"kind": "tool_call"}).value == 1.0
    assert score("exact_match", {}, {"n": 1.0}, {"n": 1}, {"kind": "object"}).value == 1.0
    assert score("exact_match", {}, {"n": True}, {"n": 1}, {"kind": "object"}).value == 0.0
    assert score("exact_match", {}, {"n": "1"}, {"n": 1}, {"kind": "object"}).value == 0.0


def test_invalid_output_scores_zero():
    for name in ("exact_match", "f1", "rouge_l"):
        s = score(name, {}, None, "yes")
        assert s.value == 0.0 and s.detail == {"reason": "invalid output"}


def test_text_reference_alternatives():
    assert score("exact_match", {"normalize": "squad"}, "NYC",
                 ["New York City", "NYC"]).value == 1.0
    assert score("f1", {"normalize": "squad"}, "New York", ["New York City", "NYC"]).value == \
        pytest.approx(0.8)
    # only text outputs take alternatives: for labels a list is one value
    assert score("exact_match", {}, "a", ["a", "b"], LABEL).value == 0.0


def test_f1_squad_numbers(hotpot):
    gold = next(r["answer"] for r in hotpot if r["answer"].startswith("Greenwich"))
    assert gold == "Greenwich Village, New York City"
    # 2 shared tokens of 2 predicted and 5 gold: P = 1, R = 0.4
    assert score("f1", {"normalize": "squad"}, "Greenwich Village", gold).value == \
        pytest.approx(4 / 7)
    assert score("f1", {"normalize": "squad"}, "the Greenwich Village, New York City!",
                 gold).value == 1.0
    assert score("f1", {"normalize": "squad"}, "Brooklyn", gold).value == 0.0
    # multiset overlap: "the" counts once; P = 2/4, R = 1
    assert score("f1", {}, "the the the cat", "the cat").value == pytest.approx(2 / 3)
    # default is strip only: case matters
    assert score("f1", {}, "greenwich village", "Greenwich Village").value == 0.0
    # squad drops everything from "the": both empty -> 1, one empty -> 0
    assert score("f1", {"normalize": "squad"}, "The", "a").value == 1.0
    assert score("f1", {"normalize": "squad"}, "The", "yes").value == 0.0


def test_rouge_l_numbers(docstrings):
    doc = docstrings[0]["docstring"]
    first = doc.splitlines()[0]
    assert first == ("Check if in given list of numbers, are any two numbers closer to each "
                     "other than")
    pred = "Check if any two numbers in the given list are closer than threshold"
    # LCS "check if in given list are closer than" = 8 tokens of 13 predicted, 16 reference
    assert lcs_length(pred.casefold().split(), first.casefold().split()) == 8
    assert score("rouge_l", {"normalize": "casefold"}, pred, first).value == pytest.approx(16 / 29)
    assert score("rouge_l", {}, "a b c d", "a c d e f").value == pytest.approx(2 / 3)
    assert score("rouge_l", {}, "x y", "a b").value == 0.0
    for row in docstrings[:50]:
        assert score("rouge_l", {}, row["docstring"], row["docstring"]).value == 1.0
        assert score("rouge_l", {}, "", row["docstring"]).value == 0.0


def test_aggregate_mean_and_n():
    em = get_metric("exact_match")({})
    scores = [em.score(MetricInput(p, p, "a", LABEL)) for p in ("a", "b", "a", None)]
    assert em.aggregate(scores) == {"mean": 0.5, "n": 4}
    assert em.aggregate([]) == {"mean": 0.0, "n": 0}
