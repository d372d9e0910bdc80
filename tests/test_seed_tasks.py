"""The seed tasks in specs/: each compiles, its gold answers are valid and score full marks on
every metric but llm_judge (which needs a judge model), and each examples/<task>/prepare.py is
deterministic and reproduces the committed data from ../shared/data."""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from tests.shared_data import DATA, REPO, SHARED, need

SPECS = sorted((REPO / "specs").glob("*.yaml"))
SEED_TASKS = {"banking77", "git_assistant", "trec_coarse", "trec_fine", "ecommerce", "smart_home", "pii_redaction",
              "text2sql", "docstring", "hotpotqa", "smart_home_multiturn"}
PREPARE = sorted((REPO / "examples").glob("*/prepare.py"))
JUDGE_METRICS = {"llm_judge"}


@lru_cache(maxsize=None)
def contract_of(path: Path):
    from taskc.compiler.build import compile_spec

    return compile_spec(path)


def test_every_seed_task_has_a_spec():
    assert SEED_TASKS <= {p.stem for p in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_compiles(spec: Path):
    contract = contract_of(spec)
    assert contract.name == spec.stem
    assert contract.splits["test"].rows


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_artifacts_render(spec: Path):
    pytest.importorskip("taskc.constraints.lower")
    from taskc.backends.templates import compiled_files as render_files

    files = render_files(contract_of(spec))
    assert "contract.json" in files
    assert ("train.jsonl" in files) == ("train" in contract_of(spec).splits)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_gold_scores_full_marks(spec: Path):
    from taskc.evaluate.scoring import rescore

    contract = contract_of(spec)
    n = len(contract.splits["test"].rows)
    result = rescore(contract, [{"index": i, "output": contract.gold_text("test", i)} for i in range(n)])
    assert result["n"] == n
    assert result["invalid"] == 0
    scored = {name: value for name, value in result["metrics"].items() if name not in JUDGE_METRICS}
    assert scored, "every seed task has a metric that needs no judge"
    assert scored == {name: 1.0 for name in scored}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_train_gold_is_valid(spec: Path):
    from taskc.evaluate.validate import parse_output

    contract = contract_of(spec)
    if "train" not in contract.splits:
        pytest.skip("no train split")
    output, schema = contract.body["output"], contract.body["validate_schema"]
    bad = [i for i in range(len(contract.splits["train"].rows))
           if not parse_output(output, schema, contract.gold_text("train", i)).valid]
    assert bad == []


def _run_prepare(script: Path, out: Path) -> dict[str, bytes]:
    subprocess.run([sys.executable, str(script), str(SHARED), str(out)], check=True, cwd=REPO,
                   capture_output=True, timeout=300)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("script", PREPARE, ids=lambda p: p.parent.name)
def test_prepare_is_deterministic_and_matches_committed_data(script: Path, tmp_path: Path):
    need(DATA)
    first = _run_prepare(script, tmp_path / "a")
    second = _run_prepare(script, tmp_path / "b")
    assert first, f"{script} wrote nothing"
    assert first == second
    here = script.parent
    differ = [rel for rel, data in first.items() if not (here / rel).is_file() or (here / rel).read_bytes() != data]
    assert differ == [], f"committed data differs from what {script.relative_to(REPO)} writes"


def test_multiturn_rows_are_conversations_ending_with_the_user():
    contract = contract_of(REPO / "specs/smart_home_multiturn.yaml")
    assert contract.body["prompt"]["user"] is None
    for split in ("test", "train"):
        for i in range(len(contract.splits[split].rows)):
            turns = contract.turns(split, i)
            assert len(turns) >= 4 and turns[-1]["role"] == "user"
            assert turns[1]["role"] == "assistant" and turns[2]["content"].startswith("Tool result: ")
