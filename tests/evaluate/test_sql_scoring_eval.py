"""SQL execution scoring inside `taskc eval` and `taskc score`: across worker processes, the same
scores as one process, and timeouts counted apart from wrong answers."""

import json

from taskc.compiler.build import compile_spec
from tests.support import REPO, taskc

SPEC = REPO / "specs" / "text2sql.yaml"
SLOW = "SELECT printf('%.*c', 2000000000, 'x')"  # one scalar call past any time limit


def predictions(tmp_path, n: int = 12):
    contract = compile_spec(SPEC)
    lines = [{"index": i, "output": contract.gold_text("test", i)} for i in range(n)]
    lines[3]["output"] = SLOW
    lines[5]["output"] = "SELECT 1"  # runs, wrong
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_eval_scores_sql_in_workers_and_counts_timeouts_apart(tmp_path):
    preds = predictions(tmp_path)
    proc = taskc("eval", str(SPEC), "--backend", "replay", "--model", str(preds), "--limit", "12", "--jobs", "2",
                 "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "runs" / "text2sql").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    rows = {r["index"]: r for r in map(json.loads, (run / "samples.jsonl").read_text().splitlines())}
    assert summary["metrics"]["execution_match"]["mean"] == 10 / 12
    assert summary["timeouts"] == {"execution_match": 1} and summary["metrics"]["execution_match"]["timeouts"] == 1
    assert rows[3]["details"]["execution_match"]["reason"] == "timeout"
    assert rows[5]["scores"]["execution_match"] == 0 and rows[5]["details"]["execution_match"]["reason"] != "timeout"
    assert "timeouts (scored 0, counted apart from wrong answers): execution_match 1" in proc.stdout


def test_score_with_one_or_two_workers_gives_the_same_result(tmp_path):
    preds = predictions(tmp_path)
    one, two = (taskc("score", str(SPEC), "--predictions", str(preds), "--json", "--jobs", jobs, cwd=tmp_path)
                for jobs in ("1", "2"))
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    assert json.loads(one.stdout) == json.loads(two.stdout)
    result = json.loads(one.stdout)
    assert result["metrics"]["execution_match"] == 10 / 12 and result["timeouts"] == {"execution_match": 1}
