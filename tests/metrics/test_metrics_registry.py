"""The metric registry and option checking, as the compiler uses them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from taskc.metrics import (METRIC_NAMES, Metric, MetricOptionError, UnknownMetricError,
                           get_metric, make_metric, option_errors)

ALL = ("exact_match", "f1", "rouge_l", "tool_call_equivalence", "binary_tool_call",
       "staged_tool_call", "json_match", "execution_match", "test_suite_match", "llm_judge")


def test_names_and_classes():
    assert set(METRIC_NAMES) == set(ALL)
    for name in ALL:
        cls = get_metric(name)
        assert issubclass(cls, Metric)
        assert cls.name == name


def test_unknown_metric_lists_known_names():
    with pytest.raises(UnknownMetricError) as err:
        get_metric("bleu")
    assert str(err.value) == ("unknown metric 'bleu' (expected one of: exact_match, f1, rouge_l, "
                              "tool_call_equivalence, binary_tool_call, staged_tool_call, "
                              "json_match, execution_match, test_suite_match, llm_judge)")
    with pytest.raises(UnknownMetricError):
        option_errors("bleu", {})


def test_unknown_option_message():
    assert option_errors("exact_match", {"foo": 1}) == [
        ("foo", "unknown option 'foo' for metric exact_match (expected one of: normalize)")]
    assert option_errors("tool_call_equivalence", {"normalize": "strip"}) == [
        ("normalize", "unknown option 'normalize' for metric tool_call_equivalence "
                      "(expected one of: no options)")]


def test_constructor_raises_first_error_with_key():
    with pytest.raises(MetricOptionError) as err:
        get_metric("exact_match")({"foo": 1})
    assert err.value.option_key == "foo"
    assert str(err.value) == ("unknown option 'foo' for metric exact_match "
                              "(expected one of: normalize)")


@pytest.mark.parametrize("name,options,expected", [
    ("exact_match", {"normalize": "lower"},
     [("normalize", "option 'normalize' of metric exact_match: unknown normalizer 'lower' "
                    "(expected one of: strip, casefold, squad)")]),
    ("f1", {"normalize": ["strip", "nfkc"]},
     [("normalize", "option 'normalize' of metric f1: unknown normalizer 'nfkc' "
                    "(expected one of: strip, casefold, squad)")]),
    ("rouge_l", {"normalize": 3},
     [("normalize", "option 'normalize' of metric rouge_l must be a name or a list of names "
                    "from: strip, casefold, squad")]),
    ("json_match", {"unordered": "entities"},
     [("unordered", "option 'unordered' of metric json_match must be a list of field names")]),
    ("execution_match", {"timeout_s": 0, "max_rows": 1.5},
     [("timeout_s", "option 'timeout_s' of metric execution_match must be a positive number"),
      ("max_rows", "option 'max_rows' of metric execution_match must be a positive integer")]),
    ("execution_match", {"timeout_s": True},
     [("timeout_s", "option 'timeout_s' of metric execution_match must be a positive number")]),
    ("test_suite_match", {"variants": 0, "seed": "x"},
     [("variants", "option 'variants' of metric test_suite_match must be a positive integer"),
      ("seed", "option 'seed' of metric test_suite_match must be an integer")]),
    ("llm_judge", {},
     [("judge", "missing option 'judge' for metric llm_judge"),
      ("rubric", "missing option 'rubric' for metric llm_judge")]),
    ("llm_judge", {"judge": {"backend": "openai", "temperature": 0}, "rubric": " "},
     [("judge", "option 'judge' of metric llm_judge needs 'model' (a non-empty string)"),
      ("judge", "option 'judge' of metric llm_judge has unknown key 'temperature' "
                "(expected one of: backend, model, base_url, api_key_env, price)"),
      ("rubric", "option 'rubric' of metric llm_judge must be a non-empty string")]),
    ("llm_judge", {"judge": "gpt-4o", "rubric": "same answer"},
     [("judge", "option 'judge' of metric llm_judge must be a mapping with backend, model and "
                "optional base_url, api_key_env, price")]),
])
def test_bad_option_values(name, options, expected):
    assert option_errors(name, options) == expected


@pytest.mark.parametrize("name,options", [
    ("exact_match", {}), ("exact_match", {"normalize": ["strip", "casefold"]}),
    ("f1", {"normalize": "squad"}), ("rouge_l", {"normalize": []}),
    ("tool_call_equivalence", {}), ("binary_tool_call", None), ("staged_tool_call", {}),
    ("json_match", {"unordered": ["entities"]}),
    ("execution_match", {"timeout_s": 0.5, "max_rows": 100}),
    ("test_suite_match", {"variants": 5, "seed": 7}),
    ("llm_judge", {"judge": {"backend": "openai", "model": "gpt-4o-mini",
                             "base_url": "http://localhost:8000/v1"}, "rubric": "Same meaning."}),
    ("llm_judge", {"judge": {"backend": "anthropic", "model": "claude-sonnet-4-6",
                             "api_key_env": "MY_KEY"},
                   "rubric": "The answer is correct if it refers to the same thing."}),
])
def test_good_options(name, options):
    assert option_errors(name, options) == []
    assert make_metric(name, options).name == name


def test_options_are_not_mutated():
    opts = {"normalize": ["squad"]}
    get_metric("exact_match")(opts)
    assert opts == {"normalize": ["squad"]}


def test_import_is_light():
    code = ("import sys, time; t = time.perf_counter(); import taskc.metrics; "
            "d = time.perf_counter() - t; "
            "heavy = [m for m in ('numpy', 'sklearn', 'jinja2', 'sqlite3', 'taskc.metrics.sql') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
