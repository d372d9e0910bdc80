"""Every spec problem is reported at file:line:col with an exact message, all in one pass."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taskc.compiler.build import compile_spec
from taskc.errors import SpecError

GOOD = """\
taskc: 1
name: demo
inputs:
  text: string
output:
  kind: label
  labels: [pos, neg]
prompt:
  system: "Classify. {{ format_instructions }}"
  user: "{{ text }}"
data:
  test: {file: data.jsonl}
metric: exact_match
"""
DATA = '{"text": "is it?", "answer": "pos"}\n{"text": "no way", "answer": "neg"}\n'


def errors(tmp: Path, spec: str, files: dict[str, str] | None = None) -> list[str]:
    (tmp / "data.jsonl").write_text(DATA)
    for name, text in (files or {}).items():
        (tmp / name).write_text(text)
    (tmp / "spec.yaml").write_text(textwrap.dedent(spec))
    with pytest.raises(SpecError) as info:
        compile_spec(tmp / "spec.yaml")
    return [d.format() for d in info.value.diagnostics]


def test_the_good_spec_compiles(chdir):
    (chdir / "data.jsonl").write_text(DATA)
    (chdir / "spec.yaml").write_text(GOOD)
    assert compile_spec(chdir / "spec.yaml").name == "demo"


CASES = [
    ("duplicate key", GOOD.replace("name: demo\n", "name: demo\nname: again\n"),
     "spec.yaml:3:1: error: duplicate key 'name' (first defined at line 2)"),
    ("python tag", GOOD + "x: !!python/object/apply:os.system [ls]\n",
     "spec.yaml:14:4: error: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system': specs are plain data"),
    ("unknown top-level field", GOOD.replace("metric:", "metrik:"),
     "spec.yaml:13:1: error: unknown field 'metrik' (did you mean 'metric'?)"),
    ("unknown nested field", GOOD.replace("  user:", "  usr: x\n  user:"),
     "spec.yaml:10:3: error: unknown field 'usr' in prompt (did you mean 'user'?)"),
    ("missing field", GOOD.replace("name: demo\n", ""),
     "spec.yaml:1:1: error: missing required field 'name'"),
    ("invalid yaml", GOOD.replace("  kind: label", "  kind: [label"),
     "spec.yaml:7:9: error: invalid YAML: did not find expected ',' or ']'"),
    ("unknown output kind", GOOD.replace("kind: label", "kind: lable"),
     "spec.yaml:6:9: error: unknown output kind 'lable' (expected one of: label, tool_call, object, sql, text)"),
    ("format version", GOOD.replace("taskc: 1", "taskc: 2"),
     "spec.yaml:1:8: error: 'taskc' should be 1"),
    ("task name", GOOD.replace("name: demo", "name: My Task"),
     "spec.yaml:2:7: error: task name 'My Task' must be 1-64 lower-case letters, digits, '_', '.' or '-'"),
    ("input type", GOOD.replace("text: string", "text: strin"),
     "spec.yaml:4:9: error: unknown input type 'strin' (expected string, integer, number, boolean, messages, list[T] or {field: T})"),
    ("template syntax", GOOD.replace('user: "{{ text }}"', 'user: "{{ text }"'),
     "spec.yaml:10:10: error: template syntax error: unexpected '}'"),
    ("template variable", GOOD.replace('user: "{{ text }}"', 'user: "{{ text }} {{ txt }}"'),
     "spec.yaml:10:24: error: template variable 'txt' is not provided by any input (available: format_instructions, text)"),
    ("data file", GOOD.replace("data.jsonl", "nope.jsonl"),
     "spec.yaml:12:16: error: data file not found: nope.jsonl"),
    ("columns column", GOOD.replace("{file: data.jsonl}", "{file: data.jsonl, columns: {text: body}}"),
     "spec.yaml:12:44: error: column 'body' not found in data.jsonl (columns: text, answer)"),
    ("columns entry", GOOD.replace("{file: data.jsonl}", "{file: data.jsonl, columns: {txt: text}}"),
     "spec.yaml:12:38: error: columns entry 'txt' is not an input or 'answer' (inputs: text)"),
    ("gold label", GOOD.replace("[pos, neg]", "[pos, maybe]"),
     "data.jsonl:2:1: error: gold label 'neg' is not in the label set (test row 1)"),
    ("label file", GOOD.replace("[pos, neg]", "{file: labels.json}"),
     "spec.yaml:7:11: error: labels must be a non-empty list of strings"),
    ("unknown metric", GOOD.replace("metric: exact_match", "metric: accuracy"),
     "spec.yaml:13:9: error: unknown metric 'accuracy' (known: binary_tool_call, exact_match, execution_match, f1, "
     "json_match, llm_judge, rouge_l, staged_tool_call, test_suite_match, tool_call_equivalence)"),
    ("metric option", GOOD.replace("metric: exact_match", "metric: {exact_match: {normalise: squad}}"),
     "spec.yaml:13:24: error: unknown option 'normalise' for metric exact_match (expected one of: normalize)"),
    ("generation range", GOOD + "generation: {temperature: 3}\n",
     "spec.yaml:14:27: error: 'temperature' should be less than or equal to 2"),
    ("few shot without train", GOOD.replace('  user: "{{ text }}"', '  user: "{{ text }}"\n  few_shot: {count: 2}'),
     "spec.yaml:11:13: error: few_shot draws from the train split, but data has no train"),
    ("metric and metrics", GOOD + "metrics: [f1]\n",
     "spec.yaml:14:1: error: use either 'metric' or 'metrics', not both"),
]


@pytest.mark.parametrize("name, spec, expected", CASES, ids=[c[0] for c in CASES])
def test_exact_error(chdir, name, spec, expected):
    files = {"labels.json": json.dumps({"not": "a list"})} if name == "label file" else None
    assert expected in errors(chdir, spec, files)


def test_tool_file_pointer(chdir):
    (chdir / "tools.json").write_text(json.dumps({"tools": []}))
    spec = GOOD.replace("kind: label\n  labels: [pos, neg]", "kind: tool_call\n  tools: {file: tools.json, pointer: /functions}")
    assert errors(chdir, spec) == ["spec.yaml:7:38: error: JSON pointer '/functions' has no 'functions'"]


def test_type_syntax_error_points_inside_the_string(chdir):
    spec = GOOD.replace("kind: label\n  labels: [pos, neg]", "kind: object\n  schema:\n    tags: 'list[strng]'")
    assert "spec.yaml:8:17: error: unknown type 'strng' (expected string, integer, number, boolean, list[T], a literal or {field: T}) (in the type of 'tags')" in errors(chdir, spec)


def test_sql_database_missing(chdir):
    spec = GOOD.replace("kind: label\n  labels: [pos, neg]", 'kind: sql\n  database: "dbs/{{ text }}.sqlite"')
    found = errors(chdir, spec.replace("metric: exact_match", "metric: execution_match"))
    assert found[0] == "data.jsonl:1:1: error: database not found: dbs/is it?.sqlite (test row 0)"


def test_every_problem_in_one_pass(chdir):
    spec = (GOOD.replace("name: demo\n", "name: demo\nname: again\n")
            .replace('user: "{{ text }}"', 'user: "{{ text }} {{ nope }}"')
            .replace("data.jsonl", "gone.jsonl")
            .replace("metric: exact_match", "metric: accuracy")) + "generation: {max_tokens: 0}\n"
    found = errors(chdir, spec)
    assert [f.split(": error: ")[0] for f in found] == [
        "spec.yaml:3:1", "spec.yaml:11:24", "spec.yaml:13:16", "spec.yaml:14:9", "spec.yaml:15:26"]


def test_cli_prints_errors_and_exits_2_without_traceback(chdir):
    (chdir / "data.jsonl").write_text(DATA)
    (chdir / "spec.yaml").write_text(GOOD.replace("[pos, neg]", "[pos]").replace("metric:", "metrik:"))
    proc = subprocess.run([sys.executable, "-m", "taskc.cli", "validate", "spec.yaml"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "spec.yaml:13:1: error: unknown field 'metrik' (did you mean 'metric'?)",
        "data.jsonl:2:1: error: gold label 'neg' is not in the label set (test row 1)",
        "2 errors",
    ]
