"""Fixtures for the metric tests: real data from the shared data folder.

The shared folder is `$TASKC_SHARED` (default `<repo>/../shared`); data lies under its `data/`.
SQL tests run on copies of the databases in a temporary folder, never on the shared files.
"""

from __future__ import annotations

import json
import shutil
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
