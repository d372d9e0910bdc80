"""`taskc distill`: synth (a fake teacher over real HTTP) -> train (the tiny student) -> eval (a
real vLLM engine) -> report, resumable stage by stage."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from tests.support import taskc


def test_a_stage_is_skipped_when_its_inputs_are_unchanged_and_redone_otherwise(tmp_path):
    from taskc.distill.pipeline import STAGE_FILE, run_stage

    calls = []

    def build(tmp: Path) -> dict:
        calls.append(tmp)
        (tmp / "out.txt").write_text(str(len(calls)))
        return {"n": len(calls)}

    folder = tmp_path / "task" / "synth"
    lines: list[str] = []
    first = run_stage(folder, {"a": 1}, build, lines.append)
    again = run_stage(folder, {"a": 1}, build, lines.append)
    assert (first.ran, again.ran, len(calls), again.record["n"]) == (True, False, 1, 1)
    assert lines == [f"synth: up to date (inputs {first.record['inputs_sha256'][:12]}), skipped"]
    changed = run_stage(folder, {"a": 2}, build, lines.append)
    assert changed.ran and (folder / "out.txt").read_text() == "2"

    def killed(tmp: Path) -> dict:
        (tmp / "half.txt").write_text("half")
        raise KeyboardInterrupt  # the pipeline is stopped in the middle of this stage

    with pytest.raises(KeyboardInterrupt):
        run_stage(folder, {"a": 3}, killed, lines.append)
    # the finished stage of before is intact (and not taken for the new inputs), no half-built folder
    assert (folder / "out.txt").read_text() == "2" and json.loads((folder / STAGE_FILE).read_text())["n"] == 2
    assert sorted(p.name for p in folder.parent.iterdir()) == ["synth"]
    assert run_stage(folder, {"a": 3}, build, lines.append).ran


def _candidates(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    labels = ["billing", "shipping", "returns", "account", "other"]
    out = []
    for i in range(n):
        text = "".join(rng.choice(string.ascii_lowercase + " ") for _ in range(40)).strip()
        out.append(json.dumps({"inputs": {"text": f"note {i}: {text}"}, "output": labels[i % 5]}))
    return out


@pytest.mark.vllm
@pytest.mark.train
def test_distill_runs_every_stage_then_resumes_without_redoing_finished_ones(tasks, student, tmp_path, quiet_env):
    from tests.fakes.provider_server import FakeProvider
    from taskc.testing import vllm_engine_kwargs

    spec = tasks("label")
    answers = iter(_candidates(40))
    engine = {**vllm_engine_kwargs(student, max_model_len=1024), "distributed_executor_backend": "uni"}
    with FakeProvider(responder=lambda api, body: next(answers)) as fake:
        argv = ["distill", str(spec), "--teacher", "openai:teacher-model", "--base-url", fake.openai_base_url,
                "--student", str(student), "--n", "6", "--seed-examples", "4", "--out", "distill", "--runs", "runs",
                "--max-steps", "2", "--method", "full", "--lr", "1e-4", "--engine-args", json.dumps(engine),
                "--no-progress"]
        proc = taskc(*argv, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-4000:]
        sent = len(fake.requests)
        lines = proc.stdout.strip().splitlines()
        assert lines[0] == "tiny_labels: synth: kept 6 of 6 candidates"
        assert lines[1].startswith("tiny_labels: train: 36 rows, 2 steps, final loss ")
        assert lines[2].startswith("tiny_labels: eval: exact_match ") and " -> runs/tiny_labels/" in lines[2]
        assert lines[3] == "tiny_labels: report: 1 runs -> distill/tiny_labels/report/report.md"
        base = tmp_path / "distill" / "tiny_labels"
        from taskc.compiler.build import compile_spec

        contract_id = compile_spec(spec).id
        record = json.loads((base / "train" / "model" / "taskc-train.json").read_text())
        assert record["contract_id"] == contract_id and record["data"]["rows"] == 36
        (run,) = (tmp_path / "runs" / "tiny_labels").glob("*/summary.json")
        summary = json.loads(run.read_text())
        assert summary["backend"] == "vllm" and summary["model"] == str((base / "train" / "model").resolve())
        assert summary["contract_id"] == contract_id and summary["n"] == 30 and summary["errors"] == 0
        assert summary["invalid"] == 0  # constrained decoding through the trained folder
        assert "student-tiny_labels" in (base / "report" / "report.md").read_text()

        # everything finished: a second run skips all four stages and asks the teacher nothing
        again = taskc(*argv, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-4000:]
        assert [line.split(": ", 2)[1] + ": " + line.split(": ", 2)[2].split(" (")[0] for line in again.stdout.splitlines()
                if "up to date" in line] == ["synth: up to date", "train: up to date", "eval: up to date", "report: up to date"]
        assert len(fake.requests) == sent and len(list((tmp_path / "runs" / "tiny_labels").glob("*/summary.json"))) == 1

        # killed during the report stage (its stage.json never written): only the report is redone
        (base / "report" / "stage.json").unlink()
        resumed = taskc(*argv, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-4000:]
        skipped = [line.split(": ")[1] for line in resumed.stdout.splitlines() if "up to date" in line]
        assert skipped == ["synth", "train", "eval"] and (base / "report" / "stage.json").is_file()
        assert len(fake.requests) == sent


def test_synth_command_writes_the_kept_rows_and_the_reasons(tasks, tmp_path, chdir):
    from typer.testing import CliRunner

    from taskc.cli import app
    from tests.fakes.provider_server import FakeProvider

    spec = tasks("label")
    texts = (_candidates(3) + [json.dumps({"inputs": {"text": "case 1: ember sierra zephyr"}, "output": "billing"})]
             + _candidates(1, seed=9))
    answers = iter(texts)
    with FakeProvider(responder=lambda api, body: next(answers)) as fake:
        result = CliRunner().invoke(app, ["synth", str(spec), "--teacher", "openai:t", "--base-url", fake.openai_base_url,
                                          "--n", "4", "--seed-examples", "3", "--out", "s.jsonl", "--no-cache"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["tiny_labels: kept 4/5 candidates -> s.jsonl",
                                          "  rejected 1: near-duplicate of a test row"]
    assert [json.loads(line)["answer"] for line in (tmp_path / "s.jsonl").read_text().splitlines()] == [
        "billing", "shipping", "returns", "billing"]
