"""Files stay where the project is, and data rows never choose files: what a shared spec or a
hostile row names outside the project (or outside a database template's folder) is an error that
names the path and the rule, never the file's content; nothing is ever created."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from taskc.compiler.build import compile_spec
from taskc.errors import SpecError

SECRET = "root:*:19000:0:99999:7:::"
HINT = "every file a spec names must lie inside it, symlinks followed; pass --allow-outside PATH to allow files elsewhere"
LABEL_SPEC = """\
taskc: 1
name: demo
inputs:
  text: string
output:
  kind: label
  labels: LABELS
prompt:
  user: "{{ text }}"
data:
  test: {file: DATA}
metric: exact_match
"""
SQL_SPEC = """\
taskc: 1
name: demo
inputs:
  db_id: string
  question: string
output:
  kind: sql
  database: "../dbs/{{ db_id }}.sqlite"
prompt:
  user: "{{ schema }}\\n{{ question }}"
data:
  test: {file: test.jsonl}
metric: execution_match
"""


def taskc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taskc.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """tmp/proj/specs/ (the project) and tmp/outside/secret.csv (a file outside it)."""
    (tmp_path / "proj" / "specs").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.csv").write_text(f"{SECRET}\nbin:x:1:1\n")
    (tmp_path / "outside" / "labels.json").write_text('["pos", "neg"]')
    (tmp_path / "proj" / "specs" / "test.jsonl").write_text(json.dumps({"text": "a", "answer": "pos"}) + "\n")
    return tmp_path / "proj"


def write_label_spec(proj: Path, data: str = "test.jsonl", labels: str = "[pos, neg]") -> Path:
    spec = proj / "specs" / "task.yaml"
    spec.write_text(LABEL_SPEC.replace("DATA", data).replace("LABELS", labels))
    return spec


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_a_data_file_outside_the_project_is_refused_unread(proj, how):
    secret = proj.parent / "outside" / "secret.csv"
    if how == "symlink":
        (proj / "specs" / "passwd.csv").symlink_to(secret)
    name = {"absolute": str(secret), "dotdot": "../../outside/secret.csv", "symlink": "passwd.csv"}[how]
    write_label_spec(proj, data=name)
    proc = taskc("validate", "specs/task.yaml", cwd=proj)
    via = f" (a symlink to {secret})" if how == "symlink" else ""
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"specs/task.yaml:11:16: error: data file '{name}'{via} is outside the project root {proj} "
        f"(the folder holding specs/): {HINT}", "1 error"]
    assert "root:" not in proc.stderr + proc.stdout


def test_allow_outside_lets_the_user_admit_a_folder(proj):
    (proj.parent / "outside" / "test.jsonl").write_text(json.dumps({"text": "a", "answer": "pos"}) + "\n")
    write_label_spec(proj, data="../../outside/test.jsonl")
    assert taskc("validate", "specs/task.yaml", cwd=proj).returncode == 2
    proc = taskc("validate", "specs/task.yaml", "--allow-outside", "../outside", cwd=proj)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("specs/task.yaml: ok (contract ")


def test_a_label_file_outside_the_project_is_refused(proj, monkeypatch):
    monkeypatch.chdir(proj)
    spec = write_label_spec(proj, labels="{file: ../../outside/labels.json}")
    with pytest.raises(SpecError) as info:
        compile_spec(spec)
    assert [d.format() for d in info.value.diagnostics] == [
        f"specs/task.yaml:7:18: error: label file '../../outside/labels.json' is outside the project root {proj} "
        f"(the folder holding specs/): {HINT}"]
    assert compile_spec(spec, allow_outside=(proj.parent / "outside",)).output.labels == ("pos", "neg")


def test_a_tool_file_through_a_symlink_out_of_the_project_is_refused(proj, monkeypatch):
    monkeypatch.chdir(proj)
    tools = proj.parent / "outside" / "tools.json"
    tools.write_text(json.dumps([{"name": "f", "parameters": {}}]))
    (proj / "specs" / "tools.json").symlink_to(tools)
    spec = proj / "specs" / "task.yaml"
    spec.write_text(LABEL_SPEC.replace("kind: label\n  labels: LABELS", "kind: tool_call\n  tools: {file: tools.json}")
                    .replace("DATA", "test.jsonl"))
    with pytest.raises(SpecError) as info:
        compile_spec(spec)
    assert info.value.diagnostics[0].format() == (
        f"specs/task.yaml:7:17: error: tool file 'tools.json' (a symlink to {tools}) is outside the project root "
        f"{proj} (the folder holding specs/): {HINT}")


@pytest.fixture
def sql_proj(proj: Path) -> Path:
    """proj/dbs/shop.sqlite (a WAL database), and rows that try to pick other files."""
    (proj / "dbs").mkdir()
    con = sqlite3.connect(proj / "dbs" / "shop.sqlite")
    con.execute("PRAGMA journal_mode=wal")
    con.execute("CREATE TABLE item (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    (proj.parent / "outside" / "evil.sqlite").write_bytes((proj / "dbs" / "shop.sqlite").read_bytes())
    (proj / "dbs" / "link.sqlite").symlink_to(proj.parent / "outside" / "evil.sqlite")
    (proj / "specs" / "task.yaml").write_text(SQL_SPEC)
    return proj


def write_rows(proj: Path, db_ids: list[str]) -> None:
    rows = [{"db_id": d, "question": "how many?", "answer": "SELECT count(*) FROM item"} for d in db_ids]
    (proj / "specs" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


LEAVES = "leaves '../dbs/': the values of a row may only choose a file inside the folder the template names"


def test_rows_never_choose_files_outside_the_template_folder(sql_proj):
    write_rows(sql_proj, ["shop", "../../outside/evil", "/etc/passwd", "link", "new.sqlite?mode=rwc&x=1", "a\x00b"])
    before = files_in(sql_proj.parent)
    proc = taskc("validate", "specs/task.yaml", cwd=sql_proj)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    evil = sql_proj.parent / "outside" / "evil.sqlite"
    assert proc.stderr.splitlines() == [
        f"specs/test.jsonl:2:1: error: database path '../dbs/../../outside/evil.sqlite' {LEAVES} (test row 1)",
        "specs/test.jsonl:3:1: error: database not found: ../dbs//etc/passwd.sqlite (test row 2)",
        f"specs/test.jsonl:4:1: error: database path '../dbs/link.sqlite' (a symlink to {evil}) {LEAVES} (test row 3)",
        "specs/test.jsonl:5:1: error: database not found: ../dbs/new.sqlite?mode=rwc&x=1.sqlite (test row 4)",
        "specs/test.jsonl:6:1: error: database path '../dbs/a\\x00b.sqlite' holds a control character (test row 5)",
        "5 errors",
    ]
    assert files_in(sql_proj.parent) == before


def test_an_absolute_row_value_is_refused_when_the_template_is_only_a_variable(sql_proj, monkeypatch):
    monkeypatch.chdir(sql_proj)
    (sql_proj / "specs" / "task.yaml").write_text(SQL_SPEC.replace('"../dbs/{{ db_id }}.sqlite"', '"{{ db_id }}"'))
    write_rows(sql_proj, [str(sql_proj / "dbs" / "shop.sqlite")])
    with pytest.raises(SpecError) as info:
        compile_spec(sql_proj / "specs" / "task.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        f"specs/test.jsonl:1:1: error: database path '{sql_proj / 'dbs' / 'shop.sqlite'}' leaves the spec's folder: "
        "the values of a row may only choose a file inside the folder the template names (test row 0)"]


def test_validate_show_and_compile_create_nothing(sql_proj, tmp_path):
    write_rows(sql_proj, ["shop", "shop"])
    before = files_in(sql_proj.parent)
    for args in (["validate", "specs/task.yaml"], ["show", "specs/task.yaml"],
                 ["compile", "specs/task.yaml", "--out", str(tmp_path / "generated")]):
        proc = taskc(*args, cwd=sql_proj)
        assert proc.returncode == 0, proc.stderr
    assert {p for p in files_in(sql_proj.parent) if not p.startswith("generated")} == before
    assert not any(p.endswith(("-wal", "-shm")) for p in files_in(sql_proj.parent))


def test_the_sqlite_uri_quotes_the_path(tmp_path):
    from taskc.common.sqlite import read_only_uri
    from taskc.compiler.sql import open_database

    odd = tmp_path / "a?mode=rwc#b.sqlite"
    con = sqlite3.connect(odd)
    con.execute("CREATE TABLE t (x)")
    con.close()
    assert read_only_uri(odd) == f"file:{tmp_path}/a%3Fmode%3Drwc%23b.sqlite?mode=ro&immutable=1"
    assert open_database("k", odd).ddl == "CREATE TABLE t (x);"
    with pytest.raises(FileNotFoundError):
        open_database("k", tmp_path / "missing?mode=rwc.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a?mode=rwc#b.sqlite"]


def test_the_spec_examples_workspace_compiles_and_a_link_out_of_it_does_not(examples_workspace, tmp_path):
    contract = compile_spec(examples_workspace / "specs" / "text2sql.yaml")
    assert not (examples_workspace / "examples").is_symlink() and contract.databases
    linked = tmp_path / "linked"
    (linked / "specs").mkdir(parents=True)
    (linked / "specs" / "text2sql.yaml").write_bytes((examples_workspace / "specs" / "text2sql.yaml").read_bytes())
    (linked / "examples").symlink_to(examples_workspace / "examples")
    with pytest.raises(SpecError, match="is outside the project root"):
        compile_spec(linked / "specs" / "text2sql.yaml")
