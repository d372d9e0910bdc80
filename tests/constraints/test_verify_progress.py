"""`taskc verify` says what it is doing while it works (text2sql takes tens of seconds)."""

import re

import pytest

from tests.support import REPO, taskc

pytest.importorskip("xgrammar")


def test_verify_prints_a_line_as_each_engine_starts(tmp_path):
    proc = taskc("verify", str(REPO / "specs" / "trec_coarse.yaml"), "--engines", "xgrammar,llguidance", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"verify trec_coarse: xgrammar \(\d+ gold answers; \d+\.\d s so far\)", lines[0])
    assert re.fullmatch(r"verify trec_coarse: llguidance \(\d+ gold answers; \d+\.\d s so far\)", lines[1])
    assert "gold answers accepted" in proc.stdout
