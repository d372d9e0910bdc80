"""A run over part of the test split (--limit, Ctrl-C) is never ranked beside full runs unmarked,
and a chart with nothing to show says so in one line instead of drawing a $0 band or an empty box."""

from tests.support import REPO, taskc

SPEC = str(REPO / "specs" / "banking77.yaml")


def test_a_limited_run_is_marked_beside_a_full_one(tmp_path):
    assert taskc("eval", SPEC, "--no-progress", cwd=tmp_path).returncode == 0
    assert taskc("eval", SPEC, "--backend", "gold", "--limit", "100", "--no-progress", cwd=tmp_path).returncode == 0
    proc = taskc("report", "runs", "--markdown", "report.md", "--html", "report.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report.md").read_text()
    assert "| gold | 1.000 ± 0.000 | 100 ‡ |" in md and "| baseline | 0.737 ± 0.000 | 3080 |" in md
    assert "‡ gold: 100 of 3080 test rows (--limit 100): not comparable with the full runs in this table" in md
    assert "‡ gold: 100 of 3080 test rows (--limit 100)" in proc.stdout
    # both models are local and unpriced: "not priced", and no cost chart
    assert "| not priced |" in md and "$0" not in md
    html = (tmp_path / "report.html").read_text()
    assert "no exact_match-against-cost chart: no model here has a price" in html and "$0" not in html
    assert "no latency chart: no request of these runs took measurable time" in html and "<svg" not in html
