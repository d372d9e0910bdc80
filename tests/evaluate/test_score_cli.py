"""`taskc score` refuses what does not belong and says what it covers."""

import json

from tests.support import REPO, taskc

BANKING = str(REPO / "specs" / "banking77.yaml")
GIT = str(REPO / "specs" / "git_assistant.yaml")


def eval_run(cwd, spec=BANKING, *args):
    proc = taskc("eval", spec, "--no-progress", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    task = "banking77" if spec == BANKING else "git_assistant"
    (run,) = (cwd / "runs" / task).iterdir()
    return run


def test_a_whole_run_scores_as_its_summary_says(tmp_path):
    run = eval_run(tmp_path)
    proc = taskc("score", BANKING, "--predictions", str(run / "samples.jsonl"), "--json", "--require-complete", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    summary = json.loads((run / "summary.json").read_text())
    assert result["metrics"]["exact_match"] == summary["metrics"]["exact_match"]["mean"]
    assert (result["rows_scored"], result["rows_missing"], result["partial"]) == (3080, 0, False)
    assert proc.stderr == ""


def test_a_run_of_another_task_is_refused(tmp_path):
    run = eval_run(tmp_path, BANKING, "--limit", "5")
    proc = taskc("score", GIT, "--predictions", str(run / "samples.jsonl"), cwd=tmp_path)
    contract_id = json.loads((run / "summary.json").read_text())["contract_id"]
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {run / 'samples.jsonl'} comes from a run of contract {contract_id[:12]} "
                                  "(task banking77), not ")
    assert proc.stderr.rstrip().endswith("(git_assistant): its answers belong to other rows, prompts or scoring; "
                                         "pass --allow-other-contract to score it anyway")
    assert "Traceback" not in proc.stderr


def test_a_partial_file_is_scored_with_a_warning_and_can_be_required_complete(tmp_path):
    run = eval_run(tmp_path, BANKING, "--limit", "100")
    args = ("score", BANKING, "--predictions", str(run / "samples.jsonl"), "--json")
    proc = taskc(*args, cwd=tmp_path)
    assert proc.returncode == 0
    result = json.loads(proc.stdout)
    assert (result["rows_scored"], result["rows_missing"], result["partial"]) == (100, 2980, True)
    assert proc.stderr.strip() == (f"warning: {run / 'samples.jsonl'} covers 100 of 3080 test rows (2980 missing): "
                                   "the scores are over those rows only")
    strict = taskc(*args, "--require-complete", cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stderr.strip().endswith("error: --require-complete: the predictions do not cover every test row")


def test_replay_lines_carry_no_contract_and_are_scored(tmp_path):
    lines = tmp_path / "preds.jsonl"
    lines.write_text("".join(json.dumps({"index": i, "output": "card_arrival"}) + "\n" for i in range(3080)))
    proc = taskc("score", BANKING, "--predictions", str(lines), "--json", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["partial"] is False
