"""The command line as a user meets it: show, new, validate exit codes, eval and score offline."""


import pytest


from tests.support import taskc


def test_show_prints_the_exact_messages(examples_workspace):
    proc = taskc("show", "specs/home_control.yaml", "--example", "3", cwd=examples_workspace)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("# home_control (contract ")
    assert "# static prefix (all rows): 1 whole messages, " in out
    assert "test example 3 of 6" in out
    assert "--- system ---\nYou are an on-device smart home controller.\nAnswer with exactly one tool call" in out
    assert "--- user ---\ncool the house down to 68\n" in out
    assert out.rstrip().endswith('--- gold ---\n{"name":"set_thermostat","parameters":{"temperature":68,"mode":"cool"}}')


def test_show_rejects_an_example_out_of_range(examples_workspace):
    proc = taskc("show", "specs/home_control.yaml", "--example", "6", cwd=examples_workspace)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --example must be between 0 and 5"


@pytest.mark.parametrize("kind", ["label", "tool_call", "object", "sql", "text"])
def test_new_writes_a_spec_that_validates(tmp_path, kind):
    proc = taskc("new", f"my_{kind}", "--kind", kind, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    spec = tmp_path / "specs" / f"my_{kind}.yaml"
    assert spec.read_text().startswith(f"# my_{kind}: a taskc spec")
    check = taskc("validate", str(spec.relative_to(tmp_path)), cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    again = taskc("new", f"my_{kind}", "--kind", kind, cwd=tmp_path)
    assert again.returncode == 2 and "exists; pass --force to overwrite" in again.stderr


def test_new_rejects_an_unknown_kind(tmp_path):
    proc = taskc("new", "x", "--kind", "table", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown kind 'table' (expected one of: label, tool_call, object, sql, text)"


def test_validate_reports_a_missing_spec(tmp_path):
    proc = taskc("validate", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["nope.yaml:1:1: error: spec file not found", "1 error"]
