"""Data files that cannot be read as they are written are errors at their row, exit 2, never a
traceback nor a silent guess: huge CSV fields, duplicate headers, ragged rows, unterminated
quotes, empty splits, JSON nested past Python's stack."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from taskc.compiler.build import compile_spec
from taskc.errors import SpecError

SPEC = """\
taskc: 1
name: demo
inputs:
  text: string
output:
  kind: label
  labels: [pos, neg]
prompt:
  user: "{{ text }}"
data:
  test: {file: FILE}
metric: exact_match
"""


def compiled(tmp: Path, name: str, content: str | bytes):
    data = tmp / name
    data.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp / "spec.yaml").write_text(SPEC.replace("FILE", name))
    return compile_spec(tmp / "spec.yaml")


def errors(tmp: Path, name: str, content: str | bytes) -> list[str]:
    with pytest.raises(SpecError) as info:
        compiled(tmp, name, content)
    return [d.format() for d in info.value.diagnostics]


def test_a_field_past_the_csv_module_default_is_read(chdir):
    text = "x" * 200_000  # the csv module stops at 131,072 by default
    contract = compiled(chdir, "data.csv", f"text,answer\n{text},pos\nshort,neg\n")
    assert contract.splits["test"].rows[0]["text"] == text


def test_a_field_past_the_bound_is_an_error_at_its_row(chdir):
    big = "x" * 5_000_000
    assert errors(chdir, "data.csv", f"text,answer\nok,pos\n\"{big}\",neg\nfine,pos\n") == [
        "data.csv:3:1: error: field 'text' holds 5,000,000 characters, more than the 4,000,000 a field may hold (test row 1)"]


def test_a_duplicate_header_is_an_error(chdir):
    assert errors(chdir, "data.csv", "text,answer,text\na,pos,b\n") == [
        "data.csv:1:1: error: duplicate column 'text' in the header (columns 1 and 3)"]


@pytest.mark.parametrize("row, count", [("a,pos,extra", 3), ("a", 1)])
def test_a_ragged_row_is_an_error(chdir, row, count):
    assert errors(chdir, "data.csv", f"text,answer\nok,pos\n{row}\n") == [
        f"data.csv:3:1: error: row has {count} fields but the header has 2 (test row 1)"]


def test_an_unterminated_quote_is_an_error_where_it_opens(chdir):
    assert errors(chdir, "data.csv", 'text,answer\nok,pos\n"never closed,neg\nmore,pos\n') == [
        "data.csv:3:1: error: a quoted field starts in this row and is never closed (test row 1)"]


def test_text_after_a_closing_quote_is_an_error(chdir):
    assert errors(chdir, "data.csv", 'text,answer\n"a"b,pos\n') == [
        "data.csv:2:1: error: invalid CSV: text after a closing quote (',' expected after '\"') (test row 0)"]


def test_row_problems_past_twenty_are_counted(chdir):
    rows = "".join(f"r{i}\n" for i in range(25))
    found = errors(chdir, "data.csv", "text,answer\n" + rows)
    assert len(found) == 21
    assert found[-1] == "data.csv:22:1: error: ... and 5 more row problems in data.csv"


@pytest.mark.parametrize("name, content", [("data.jsonl", ""), ("data.jsonl", "\n\n"), ("data.csv", "text,answer\n"),
                                           ("data.json", "[]")])
def test_an_empty_test_split_is_an_error(chdir, name, content):
    assert errors(chdir, name, content) == [
        f"spec.yaml:11:16: error: {name} has no rows: the test split needs at least one"]


def test_json_nested_past_the_stack_is_an_error(chdir):
    deep = '{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "answer": "pos"}\n'
    assert errors(chdir, "data.jsonl", deep) == ["spec.yaml:11:16: error: data.jsonl: JSON nested too deeply to read"]


def test_a_missing_json_pointer_in_a_data_file_is_an_error(chdir):
    (chdir / "data.json").write_text(json.dumps({"rows": [{"text": "a", "answer": "pos"}]}))
    (chdir / "spec.yaml").write_text(SPEC.replace("{file: FILE}", "{file: data.json, pointer: /items}"))
    with pytest.raises(SpecError) as info:
        compile_spec(chdir / "spec.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "spec.yaml:11:16: error: data.json: JSON pointer '/items' has no 'items'"]


def test_a_fifo_is_refused_not_read(chdir):
    import os

    os.mkfifo(chdir / "data.jsonl")
    (chdir / "spec.yaml").write_text(SPEC.replace("FILE", "data.jsonl"))
    with pytest.raises(SpecError) as info:
        compile_spec(chdir / "spec.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "spec.yaml:11:16: error: cannot read data file data.jsonl: it is not a regular file"]


def test_the_cli_reports_bad_csv_rows_with_exit_2(chdir):
    (chdir / "data.csv").write_text("text,answer,text\na,pos\n")
    (chdir / "spec.yaml").write_text(SPEC.replace("FILE", "data.csv"))
    proc = subprocess.run([sys.executable, "-m", "taskc.cli", "validate", "spec.yaml"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "data.csv:1:1: error: duplicate column 'text' in the header (columns 1 and 3)",
        "data.csv:2:1: error: row has 2 fields but the header has 3 (test row 0)",
        "2 errors"]
