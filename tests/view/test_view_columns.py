"""The per-sample columns of samples.jsonl: partial and corrupt lines, growth, rewrites, old records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from taskc.view.columns import read_columns, read_records
from taskc.view.compare import join, masks, select


def _line(i: int, score: float = 1.0, **extra) -> str:
    record = {"index": i, "repeat": 0, "inputs": {"text": f"row {i}"}, "raw": "a" if score else "b",
              "parsed": "a" if score else "b", "valid": True, "scores": {"m": score}, "latency_s": 0.01,
              "cached": False, "error": None}
    record.update(extra)
    return json.dumps(record) + "\n"


def test_partial_last_line_is_left_out_then_read_when_complete(tmp_path: Path):
    path = tmp_path / "samples.jsonl"
    whole = "".join(_line(i) for i in range(3))
    last = _line(3, 0.0)
    path.write_text(whole + last[:20])
    cols = read_columns(path)
    assert cols.n == 3
    assert cols.partial == "line 4 is incomplete (the run may still be writing it); showing the samples before it"
    assert cols.problems == ()
    with open(path, "a") as f:
        f.write(last[20:] + _line(4))
    grown = read_columns(path, cols)
    assert grown.n == 5 and grown.partial is None
    assert grown.index.tolist() == [0, 1, 2, 3, 4]
    assert grown.scores["m"].tolist() == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert [r["index"] for r in read_records(path, grown, range(5))] == [0, 1, 2, 3, 4]


def test_a_last_line_without_newline_that_parses_is_shown_and_read_again(tmp_path: Path):
    path = tmp_path / "samples.jsonl"
    path.write_text(_line(0) + _line(1).rstrip("\n"))
    cols = read_columns(path)
    assert cols.n == 2 and cols.partial == "line 2 has no newline yet (the run may still be writing)"
    with open(path, "a") as f:
        f.write("\n" + _line(2, 0.0))
    grown = read_columns(path, cols)
    assert grown.index.tolist() == [0, 1, 2] and grown.partial is None


def test_corrupt_lines_are_skipped_and_named(tmp_path: Path):
    path = tmp_path / "samples.jsonl"
    path.write_text(_line(0) + "{not json\n" + "\n" + "[1, 2]\n" + _line(1))
    cols = read_columns(path)
    assert cols.index.tolist() == [0, 1]
    assert cols.line.tolist() == [1, 5]
    assert len(cols.problems) == 2
    assert cols.problems[0].startswith("line 2: not valid JSON (")
    assert cols.problems[1] == "line 4: not a JSON object; skipped"
    assert [r["index"] for r in read_records(path, cols, [0, 1])] == [0, 1]


def test_a_rewritten_file_is_read_again_from_the_start(tmp_path: Path):
    path = tmp_path / "samples.jsonl"
    path.write_text(_line(0) + _line(1))
    cols = read_columns(path)
    path.write_text(_line(7, 0.0) + _line(8, 0.0) + _line(9, 0.0))  # longer, different bytes
    os.utime(path, ns=(cols.mtime_ns + 10**9, cols.mtime_ns + 10**9))
    again = read_columns(path, cols)
    assert again.index.tolist() == [7, 8, 9]
    assert read_columns(path, again) is again  # unchanged: the same value


def test_old_records_without_repeat_valid_scores_or_index(tmp_path: Path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"index": 0, "raw": "x", "parsed": "x"}) + "\n"
                    + json.dumps({"raw": "y", "parsed": None}) + "\n"
                    + json.dumps({"index": 2, "error": "timeout"}) + "\n")
    cols = read_columns(path)
    assert cols.index.tolist() == [0, 1, 2] and cols.unindexed == 1
    assert cols.repeat.tolist() == [0, 0, 0]
    assert cols.invalid.tolist() == [False, True, False]
    assert cols.error.tolist() == [False, False, True]
    assert np.isnan(cols.score("m")).all()


def _cols(tmp_path: Path, name: str, lines: list[str]):
    path = tmp_path / name
    path.write_text("".join(lines))
    return read_columns(path)


def test_join_filters_and_search(tmp_path: Path):
    a = _cols(tmp_path, "a.jsonl", [_line(0), _line(1), _line(2, 0.0), _line(3)])
    b = _cols(tmp_path, "b.jsonl", [_line(0), _line(1, 0.0), _line(2), _line(4, 0.0, error="boom", raw=None, parsed=None, valid=False),
                                    _line(1, 0.0, raw="later", parsed="later")])  # row 1 again: the last line counts
    table = join([a, b])
    assert table.index.tolist() == [0, 1, 2, 3, 4]
    assert table.pos[0].tolist() == [0, 1, 2, 3, -1]
    assert table.pos[1].tolist() == [0, 4, 2, -1, 3]
    found = masks(table, [a, b], "m")
    assert found.counts() == {"wrong": 3, "invalid": 0, "errors": 1, "disagree": 2, "regressed": 1, "fixed": 1}
    assert np.flatnonzero(found.masks["regressed"]).tolist() == [1]
    assert np.flatnonzero(found.masks["fixed"]).tolist() == [2]
    hay = {0: ["row 0\na", "row 1\na", "row 2\nb", "row 3\na"], 1: ["row 0\na", "row 1\nb", "row 2\na", "row 4", "row 1\nlater"]}
    rows = select(table, found, ["wrong"], "LATER", lambda r, p: hay[r][p], lambda i: None)
    assert rows.tolist() == [1]
    rows = select(table, found, [], "gold-only", lambda r, p: hay[r][p], lambda i: "GOLD-ONLY" if i == 3 else None)
    assert rows.tolist() == [3]
