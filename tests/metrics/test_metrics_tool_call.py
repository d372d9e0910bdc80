"""tool_call_equivalence, binary_tool_call and staged_tool_call on git_assistant."""

from __future__ import annotations

import json
import random

import pytest

from taskc.metrics import MetricInput, get_metric


def defaults_of(tools: list[dict], name: str) -> dict:
    tool = next(t for t in tools if t["name"] == name)
    return {k: p["default"] for k, p in tool["parameters"]["properties"].items()
            if "default" in p}


def without_defaults(call: dict, tools: list[dict]) -> dict:
    d = defaults_of(tools, call["name"])
    return {"name": call["name"], "parameters": {
        k: v for k, v in call["parameters"].items() if not (k in d and d[k] == v)}}


def with_all_defaults(call: dict, tools: list[dict]) -> dict:
    return {"name": call["name"],
            "parameters": {**defaults_of(tools, call["name"]), **call["parameters"]}}


def shuffled(call: dict, rng: random.Random) -> dict:
    items = list(call["parameters"].items())
    rng.shuffle(items)
    return {"parameters": dict(items), "name": call["name"]}


def changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + ["x"]
    raise AssertionError(value)


def raw_variants(call: dict, tools: list[dict], rng: random.Random) -> list[str]:
    a, b = without_defaults(call, tools), with_all_defaults(call, tools)
    out = []
    for c in (call, a, b, shuffled(b, rng), shuffled(a, rng)):
        out.append(json.dumps(c))
        out.append(json.dumps({"name": c["name"], "arguments": json.dumps(c["parameters"])}))
        out.append("<tool_call>\n" + json.dumps({"name": c["name"],
                                                  "arguments": c["parameters"]}) + "\n</tool_call>")
        out.append("```json\n" + json.dumps(c, indent=2) + "\n```")
    return out


def score(metric, raw, ref, output, parsed=None):
    return metric.score(MetricInput(raw=raw, parsed=parsed, reference=ref, output=output))


def test_equivalent_forms_score_one(git_rows, git_tools, git_output):
    m = get_metric("tool_call_equivalence")({})
    staged = get_metric("staged_tool_call")({})
    rng = random.Random(0)
    n = 0
    for row in git_rows:
        for raw in raw_variants(row["answer"], git_tools, rng):
            assert score(m, raw, row["answer"], git_output).value == 1.0, raw
            assert score(staged, raw, row["answer"], git_output).value == 1.0, raw
            n += 1
        # the reference side is normalized too, and may be given as JSON text
        ref_variant = with_all_defaults(row["answer"], git_tools)
        assert score(m, row["answer_text"], ref_variant, git_output).value == 1.0
        assert score(m, row["answer_text"], json.dumps(ref_variant), git_output).value == 1.0
    assert n == len(git_rows) * 20


def test_parsed_value_is_used_when_present(git_rows, git_output):
    m = get_metric("tool_call_equivalence")({})
    row = git_rows[0]
    assert score(m, "garbage", row["answer"], git_output, parsed=row["answer"]).value == 1.0


def test_any_changed_value_scores_zero(git_rows, git_tools, git_output):
    m = get_metric("tool_call_equivalence")({})
    staged = get_metric("staged_tool_call")({})
    checked = 0
    for row in git_rows:
        full = with_all_defaults(row["answer"], git_tools)
        defaults = defaults_of(git_tools, full["name"])
        for key, value in full["parameters"].items():
            new = changed(value)
            bad = {"name": full["name"], "parameters": {**full["parameters"], key: new}}
            s = score(m, json.dumps(bad), row["answer"], git_output)
            st = score(staged, json.dumps(bad), row["answer"], git_output)
            assert s.value == 0.0, bad
            # a side equal to the default drops the key: then the parameter names differ
            if defaults.get(key, object()) in (value, new):
                assert st.value == 0.5
                assert s.detail["reason"] == "different parameter names"
            else:
                assert st.value == 0.75
                assert s.detail["reason"] == "different parameter values"
                assert s.detail["different"] == [key]
            checked += 1
    assert checked > len(git_rows)


def test_staged_levels(git_rows, git_output):
    staged = get_metric("staged_tool_call")({})
    rows = [r for r in git_rows if r["answer"]["name"] == "git_commit"
            and "message" in r["answer"]["parameters"]]
    ref = rows[0]["answer"]
    params = ref["parameters"]
    assert score(staged, "no tool call here", ref, git_output).value == 0.0
    assert score(staged, "no tool call here", ref, git_output).detail == {
        "reason": "unparseable tool call"}
    assert score(staged, None, ref, git_output).detail == {"reason": "invalid output"}
    wrong_fn = json.dumps({"name": "git_add", "parameters": {"files": ["."]}})
    s = score(staged, wrong_fn, ref, git_output)
    assert (s.value, s.detail) == (0.25, {"reason": "wrong function", "predicted": "git_add",
                                          "expected": "git_commit"})
    extra = json.dumps({"name": "git_commit", "parameters": {**params, "amend": True}})
    s = score(staged, extra, ref, git_output)
    assert s.value == 0.5
    assert s.detail["extra"] == ["amend"] and s.detail["missing"] == []
    missing = json.dumps({"name": "git_commit", "parameters": {}})
    assert score(staged, missing, ref, git_output).detail["missing"] == ["message"]
    # a default-valued extra parameter is not a different parameter set
    dflt = json.dumps({"name": "git_commit", "parameters": {**params, "amend": False}})
    assert score(staged, dflt, ref, git_output).value == 1.0
    values = json.dumps({"name": "git_commit", "parameters": {"message": "other"}})
    assert score(staged, values, ref, git_output).value == 0.75
    agg = staged.aggregate([score(staged, r, ref, git_output) for r in
                            ("x", wrong_fn, extra, values, dflt)])
    assert agg == {"mean": 0.5, "n": 5,
                   "stages": {"0": 1, "0.25": 1, "0.5": 1, "0.75": 1, "1": 1}}


def test_binary_has_no_default_normalization(git_rows, git_tools, git_output):
    binary = get_metric("binary_tool_call")({})
    equiv = get_metric("tool_call_equivalence")({})
    differs = 0
    for row in git_rows:
        assert score(binary, row["answer_text"], row["answer"], git_output).value == 1.0
        full = json.dumps(with_all_defaults(row["answer"], git_tools))
        b = score(binary, full, row["answer"], git_output).value
        assert score(equiv, full, row["answer"], git_output).value == 1.0
        added = with_all_defaults(row["answer"], git_tools)["parameters"].keys() - \
            row["answer"]["parameters"].keys()
        assert b == (0.0 if added else 1.0)
        differs += bool(added)
    assert differs > 100


@pytest.mark.parametrize("pred_limit,expected", [
    (3, 1.0), (3.0, 1.0), ("3", 0.0), (True, 0.0), (4, 0.0)])
def test_number_equality_no_coercion(git_rows, git_output, pred_limit, expected):
    ref = next(r["answer"] for r in git_rows if r["answer"]["parameters"].get("limit") == 3)
    pred = {"name": "git_log", "parameters": {**ref["parameters"], "limit": pred_limit}}
    m = get_metric("tool_call_equivalence")({})
    assert score(m, json.dumps(pred), ref, git_output).value == expected


def test_bool_is_not_int_and_default_float_is_dropped(git_output):
    m = get_metric("tool_call_equivalence")({})
    ref = {"name": "git_log", "parameters": {"oneline": True}}
    assert score(m, '{"name": "git_log", "parameters": {"oneline": 1}}', ref,
                 git_output).value == 0.0
    assert score(m, '{"name": "git_log", "parameters": {"oneline": true, "limit": 10.0}}', ref,
                 git_output).value == 1.0
    ref0 = {"name": "git_status", "parameters": {}}
    assert score(m, '{"name": "git_status", "parameters": {"verbose": 0}}', ref0,
                 git_output).value == 0.0


def test_nested_values_compare_structurally(git_output):
    m = get_metric("tool_call_equivalence")({})
    ref = {"name": "git_add", "parameters": {"files": ["a.py", "b.py"]}}
    assert score(m, '{"name":"git_add","parameters":{"files":["a.py","b.py"]}}', ref,
                 git_output).value == 1.0
    assert score(m, '{"name":"git_add","parameters":{"files":["b.py","a.py"]}}', ref,
                 git_output).value == 0.0
    nested = {"name": "x", "parameters": {"o": {"a": [1, {"b": False}], "c": "d"}}}
    out = {"kind": "tool_call", "tools": []}
    assert score(m, '{"name":"x","parameters":{"o":{"c":"d","a":[1.0,{"b":false}]}}}', nested,
                 out).value == 1.0
    assert score(m, '{"name":"x","parameters":{"o":{"c":"d","a":[1,{"b":0}]}}}', nested,
                 out).value == 0.0


def test_inputs_are_not_mutated(git_rows, git_tools, git_output):
    m = get_metric("tool_call_equivalence")({})
    ref = with_all_defaults(git_rows[1]["answer"], git_tools)
    parsed = json.loads(json.dumps(ref))
    before = (json.dumps(ref), json.dumps(parsed), json.dumps(git_output))
    m.score(MetricInput(raw=None, parsed=parsed, reference=ref, output=git_output))
    assert before == (json.dumps(ref), json.dumps(parsed), json.dumps(git_output))
