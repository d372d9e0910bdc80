"""Fixtures for the metric tests: real data from the shared data folder.

The shared folder is `$TASKC_SHARED` (default `<repo>/../shared`); data lies under its `data/`.
SQL tests run on copies of the databases in a temporary folder, never on the shared files.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.shared_data import DATA, need


@pytest.fixture(scope="session")
def git_tools() -> list[dict]:
    """The 13 git_assistant tools, unwrapped to {name, description, parameters}."""
    doc = json.loads(need(DATA / "git_assistant" / "job_description.json").read_text())
    return [t["function"] for t in doc["tools"]]


@pytest.fixture(scope="session")
def git_output(git_tools) -> dict:
    return {"kind": "tool_call", "tools": git_tools}


@pytest.fixture(scope="session")
def git_rows() -> list[dict]:
    """Every git_assistant row (test then train) with `answer` decoded."""
    rows = []
    for split in ("test", "train"):
        path = need(DATA / "git_assistant" / f"{split}.jsonl")
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows.append({"question": row["question"], "answer": json.loads(row["answer"]),
                             "answer_text": row["answer"]})
    return rows


@pytest.fixture(scope="session")
def sql_rows() -> list[dict]:
    """The 484 Spider dev questions (db_id, question, query)."""
    path = need(DATA / "text2sql" / "dev.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def db_copies(tmp_path_factory) -> Path:
    """A session-wide copy of the text2sql databases (folder of <db_id>.sqlite files)."""
    src = need(DATA / "text2sql" / "databases")
    dst = tmp_path_factory.mktemp("dbs")
    for db in sorted(p for p in src.iterdir() if p.is_dir()):
        shutil.copyfile(db / f"{db.name}.sqlite", dst / f"{db.name}.sqlite")
    return dst


@pytest.fixture()
def private_dbs(db_copies, tmp_path) -> Path:
    """Fresh copies for the hostile tests (never the shared files)."""
    out = tmp_path / "dbs"
    out.mkdir()
    for name in ("concert_singer", "flight_2"):
        (out / f"{name}.sqlite").write_bytes((db_copies / f"{name}.sqlite").read_bytes())
    return out


@pytest.fixture()
def hostile_cases(private_dbs: Path, tmp_path: Path) -> list[tuple[Path, str, str, dict]]:
    """(database, prediction, gold, expected detail) for predictions that must be refused."""
    singer = private_dbs / "concert_singer.sqlite"
    flight = private_dbs / "flight_2.sqlite"
    x_db, y_db = tmp_path / "x.db", tmp_path / "y.db"
    cases = [
        (singer, "DROP TABLE singer", "denied: DELETE sqlite_master"),
        (singer, "DELETE FROM singer", "denied: DELETE singer"),
        (singer, "INSERT INTO singer (Singer_ID, Name) VALUES (99, 'x')", "denied: INSERT singer"),
        (singer, "UPDATE singer SET Age = 1", "denied: UPDATE singer"),
        (singer, f"ATTACH DATABASE '{x_db}' AS x", f"denied: ATTACH {x_db}"),
        (singer, "PRAGMA writable_schema=1", "denied: PRAGMA writable_schema"),
        (singer, "SELECT load_extension('x')", "denied: FUNCTION load_extension"),
        (singer, f"VACUUM INTO '{y_db}'", f"denied: ATTACH {y_db}"),
        (singer, "BEGIN IMMEDIATE", "denied: TRANSACTION BEGIN"),
        (singer, "CREATE TEMP TABLE t AS SELECT * FROM singer",
         "denied: INSERT sqlite_temp_master"),
        (singer, "SELECT 1; DELETE FROM singer",
         "error: You can only execute one statement at a time."),
        (singer, "SELECT zeroblob(2000000000)", "error: string or blob too big"),
    ]
    out = [(db, pred, "SELECT name FROM singer", {"reason": reason}) for db, pred, reason in cases]
    # an endless row stream stops as soon as it has more rows than gold
    out.append((singer, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
                        "SELECT x FROM c", "SELECT name FROM singer",
                {"reason": "different result", "rows": 7, "gold_rows": 6, "ordered": False,
                 "more_rows": True}))
    out.append((flight, "SELECT count(*) FROM flights a, flights b, flights c, airports d, "
                        "airports e, airlines f", "SELECT count(*) FROM flights",
                {"reason": "timeout", "timeout_s": 2.0}))
    return out


@pytest.fixture(scope="session")
def million_db(tmp_path_factory) -> Path:
    """t(id 1..1,000,000, grp = id % 1000, name = 'n' || id), built by a recursive CTE."""
    path = tmp_path_factory.mktemp("million") / "million.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT)")
    con.execute("INSERT INTO t SELECT x, x % 1000, 'n' || x FROM (WITH RECURSIVE c(x) AS "
                "(SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000000) SELECT x FROM c)")
    con.commit()
    con.close()
    return path


@pytest.fixture(scope="session")
def pii_records() -> list[dict]:
    return json.loads(need(DATA / "pii" / "presidio_synth_dataset_v2.json").read_text())


@pytest.fixture(scope="session")
def docstrings() -> list[dict]:
    path = need(DATA / "docstring" / "humaneval_code2docstring.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def hotpot() -> list[dict]:
    return json.loads(need(DATA / "hotpotqa" / "hotpot_dev_distractor_first53.json").read_text())


@pytest.fixture(scope="session")
def banking_test() -> list[dict]:
    """banking77 test rows: {"text", "category"}."""
    import csv

    with open(need(DATA / "banking77" / "test.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def banking_labels() -> list[str]:
    return json.loads(need(DATA / "banking77" / "categories.json").read_text())
