"""Judges anywhere: `--judge NAME|BACKEND:MODEL [--judge-base-url URL]` points llm_judge at any
backend (here a local fake), the run records which judge scored and marks an override;
`--no-judge` reports judge metrics as not computed; the judge path may use `--batch`; bad input
is refused before anything is sent."""

import json
import os
from pathlib import Path

import pytest

from tests.fakes.batch_server import FakeBatchProvider
from tests.support import taskc

SPEC = """\
taskc: 1
name: capitals
inputs: {question: string}
output: {kind: text}
prompt: {user: "{{ question }}"}
data:
  test: {file: data.jsonl}
metrics:
  - exact_match: {normalize: squad}
  - llm_judge:
      judge: {backend: openai, model: gpt-5-mini}
      rubric: Correct if it names the same city as the reference.
"""
ROWS = [{"question": "Capital of France?", "answer": "Paris"},
        {"question": "Capital of Italy?", "answer": "Rome"},
        {"question": "Capital of Spain?", "answer": "Madrid"}]
NO_KEY = {"OPENAI_API_KEY": ""}


def verdicts(api, body):
    text = body["messages"][-1]["content"]
    return json.dumps({"verdict": "incorrect" if "Madrid" in text.split("## Model answer")[-1] else "correct",
                       "reason": "compared"})


@pytest.fixture
def task(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return tmp_path


def summary_of(folder: Path) -> dict:
    (path,) = folder.glob("runs/capitals/*/summary.json")
    return json.loads(path.read_text())


def samples_of(folder: Path) -> list[dict]:
    (path,) = folder.glob("runs/capitals/*/samples.jsonl")
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_the_spec_judge_needs_its_key_and_says_how_to_avoid_it(task):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "taskc.cli", "eval", "spec.yaml", "--backend", "gold"], cwd=task,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("error: metric llm_judge needs $OPENAI_API_KEY (judge openai:gpt-5-mini; "
                                   "--judge to use another, --no-judge to skip)")
    assert not (task / "runs").exists()


def test_judge_override_points_at_a_local_endpoint_and_is_marked(task):
    with FakeBatchProvider(responder=verdicts) as fake:
        proc = taskc("eval", "spec.yaml", "--backend", "gold", "--judge", "openai:qwen-judge", "--judge-base-url",
                     fake.openai_base_url, "--no-progress", cwd=task, env=NO_KEY)
        models = {r.body["model"] for r in fake.requests}
    assert proc.returncode == 0, proc.stderr
    assert models == {"qwen-judge"} and len(fake.requests) == 3
    judge = summary_of(task)["judge"]
    assert judge["scored_by"] == "openai:qwen-judge" and judge["spec_judge"] == "openai:gpt-5-mini"
    assert judge["overridden"] is True and judge["base_url"] == fake.openai_base_url
    assert summary_of(task)["metrics"]["llm_judge"]["mean"] == pytest.approx(2 / 3)
    assert {s["judge"] for s in samples_of(task)} == {"openai:qwen-judge"}
    assert "  judged by openai:qwen-judge instead of the spec's openai:gpt-5-mini" in proc.stdout


def test_a_judge_from_the_models_file_and_the_spec_judge_at_another_url(task):
    with FakeBatchProvider(responder=verdicts) as fake:
        (task / "models.yaml").write_text(f"models:\n  local-judge:\n    backend: openai\n    model: j-7b\n"
                                          f"    base_url: {fake.openai_base_url}\n")
        named = taskc("eval", "spec.yaml", "--backend", "gold", "--judge", "local-judge", "--no-progress", cwd=task,
                      env=NO_KEY)
        assert named.returncode == 0, named.stderr
        assert summary_of(task)["judge"]["scored_by"] == "openai:j-7b"
        for old in (task / "runs" / "capitals").iterdir():
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        same = taskc("eval", "spec.yaml", "--backend", "gold", "--judge-base-url", fake.openai_base_url,
                     "--no-progress", cwd=task, env=NO_KEY)
        assert same.returncode == 0, same.stderr
        assert fake.requests[-1].body["model"] == "gpt-5-mini"
    judge = summary_of(task)["judge"]
    assert judge["scored_by"] == "openai:gpt-5-mini" and judge["overridden"] is False  # same model, another endpoint


def test_no_judge_reports_the_judge_metric_as_not_computed(task):
    proc = taskc("eval", "spec.yaml", "--backend", "gold", "--no-judge", "--no-progress", cwd=task, env=NO_KEY)
    assert proc.returncode == 0, proc.stderr
    metric = summary_of(task)["metrics"]["llm_judge"]
    assert metric == {"mean": None, "std": None, "per_repeat": [], "computed": False,
                      "reason": "not computed (--no-judge)"}
    assert summary_of(task)["metrics"]["exact_match"]["mean"] == 1.0
    assert "exact_match 1.000 ± 0.000, llm_judge not computed" in proc.stdout
    assert all("llm_judge" not in s["scores"] for s in samples_of(task))


def test_the_judge_through_the_batch_api(task):
    with FakeBatchProvider(responder=verdicts) as fake:
        proc = taskc("eval", "spec.yaml", "--backend", "gold", "--batch", "--judge", "openai:gpt-5-mini",
                     "--judge-base-url", fake.openai_base_url, "--no-progress", cwd=task,
                     env={**NO_KEY, "TASKC_BATCH_POLL_S": "0.02"})
        (batch,) = fake.batches.values()
    assert proc.returncode == 0, proc.stderr
    assert "note: --batch: the gold backend has no batch API" in proc.stderr
    assert len(batch.items) == 3 and fake.raw_bodies == []
    judge = summary_of(task)["judge"]
    assert judge["batch_requests"] == 3 and judge["cost"]["pricing"] == "batch"
    assert judge["cost"]["usd_total"] == pytest.approx(judge["cost"]["usd_total_at_list_price"] / 2)
    assert summary_of(task)["metrics"]["llm_judge"]["mean"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("args, message", [
    (["--no-judge", "--judge", "openai:x"],
     "error: --no-judge skips the judge metrics: it cannot be used with --judge or --judge-base-url"),
    (["--judge", "nope"], "error: judge 'nope' is neither in models.yaml nor of the form BACKEND:MODEL"),
    (["--judge", "opnai:x"], "error: unknown backend 'opnai' (known: anthropic, baseline, gold, openai, replay, "
                             "transformers, vllm; did you mean 'openai'?)"),
    (["--judge", "anthropic:claude-haiku-4-5"],
     "error: metric llm_judge needs $ANTHROPIC_API_KEY (judge anthropic:claude-haiku-4-5; --judge to use another, "
     "--no-judge to skip)"),
])
def test_bad_judge_options_are_refused_before_anything_runs(task, args, message):
    proc = taskc("eval", "spec.yaml", "--backend", "gold", *args, cwd=task, env={**NO_KEY, "ANTHROPIC_API_KEY": ""})
    assert proc.returncode == 2 and proc.stderr.strip() == message
    assert not (task / "runs").exists()
