"""Check before spending: a run that cannot finish says why before its first request, names the
metric that needs what, and leaves no run folder behind."""

import json

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
  - exact_match
  - llm_judge:
      judge: {backend: anthropic, model: claude-sonnet-4-6}
      rubric: Correct if it names the same city.
"""


def workspace(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "capitals.yaml").write_text(SPEC)
    (tmp_path / "specs" / "data.jsonl").write_text(json.dumps({"question": "Capital of France?", "answer": "Paris"}) + "\n")
    return tmp_path


def test_a_judge_without_its_key_is_named_before_anything_runs(tmp_path):
    cwd = workspace(tmp_path)
    proc = taskc("eval", "specs/capitals.yaml", "--backend", "gold", "--no-progress", cwd=cwd,
                 env={"ANTHROPIC_API_KEY": ""})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: metric llm_judge needs $ANTHROPIC_API_KEY (judge anthropic:claude-sonnet-4-6; "
                                   "--judge to use another, --no-judge to skip)")
    assert not (cwd / "runs").exists()


def test_a_model_without_its_key_is_named_too(tmp_path):
    cwd = workspace(tmp_path)
    proc = taskc("eval", "specs/capitals.yaml", "--backend", "openai", "--model", "gpt-5-nano", "--no-progress", cwd=cwd,
                 env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "sk-ant-dummy"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: the openai backend needs an API key for https://api.openai.com/v1: set $OPENAI_API_KEY"
    assert not (cwd / "runs").exists()


def test_a_student_trained_for_another_contract_is_refused(tmp_path):
    from tests.support import REPO

    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "taskc-train.json").write_text(json.dumps({"contract_id": "f" * 64, "task": "other_task"}))
    proc = taskc("eval", str(REPO / "specs" / "banking77.yaml"), "--backend", "vllm", "--model", str(folder),
                 "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {folder} was trained for contract ffffffffffff (task other_task), not ")
    assert proc.stderr.rstrip().endswith("the spec, its prompts or its data changed since training; retrain, "
                                         "or pass --allow-other-contract to evaluate it anyway")
    assert not (tmp_path / "runs").exists()
