"""Bad input: corrupt and half-written samples.jsonl, an older run folder, paths that leave the runs
folder (.., absolute, encoded, symlinks), bad parameters. A clear message or a 4xx, never a
traceback, never a file from outside the runs folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from tests.view.conftest import Live

SECRET = "TOPSECRET-do-not-serve"


@pytest.fixture(scope="module")
def bad(made, tmp_path_factory):
    """A runs folder holding a corrupt run, a run being written, an older run, and symlinks out."""
    root, runs = made
    base = tmp_path_factory.mktemp("bad")
    out = base / "runs"
    gold = runs["tickets"]["gold"]
    lines = (gold / "samples.jsonl").read_text().splitlines(keepends=True)

    corrupt = out / "tickets" / "20260101-000000-corrupt-f82b0060"
    shutil.copytree(gold, corrupt)
    lines_bad = list(lines)
    lines_bad[2] = "{not json\n"
    lines_bad[4] = "[1, 2]\n"
    (corrupt / "samples.jsonl").write_text("".join(lines_bad))
    summary = json.loads((gold / "summary.json").read_text())
    summary["model_name"] = "corrupt"
    (corrupt / "summary.json").write_text(json.dumps(summary))

    writing = out / "tickets" / "20260101-000001-writing-f82b0060"
    writing.mkdir(parents=True)
    shutil.copy(gold / "contract.json", writing / "contract.json")
    (writing / "samples.jsonl").write_text("".join(lines[:5]) + lines[5][:30])

    old = out / "tickets" / "20250101-000000-old"
    old.mkdir(parents=True)
    (old / "summary.json").write_text(json.dumps({"task": "tickets", "model": "old-model",
                                                  "metrics": {"exact_match": {"mean": 0.5}}}))
    (old / "samples.jsonl").write_text(
        json.dumps({"index": 0, "raw": "billing", "parsed": "billing", "scores": {"exact_match": 1.0}}) + "\n"
        + json.dumps({"index": 1, "raw": "card", "parsed": "card", "scores": {"exact_match": 0.0}}) + "\n")

    bare = out / "tickets" / "20250101-000001-bare"
    bare.mkdir(parents=True)
    (bare / "summary.json").write_text(json.dumps({"task": "tickets", "contract_id": summary["contract_id"],
                                                   "model_name": "bare", "metrics": {"exact_match": 0.75},
                                                   "latency_ms": 12.5, "n": 2}))
    (bare / "samples.jsonl").write_text("".join(lines[:2]))

    outside = base / "outside"
    secret_run = outside / "secret" / "20260101-000000-secret-f82b0060"
    shutil.copytree(gold, secret_run)
    with open(secret_run / "samples.jsonl", "a") as f:
        f.write(json.dumps({"index": 99, "raw": SECRET, "parsed": SECRET, "scores": {"exact_match": 0.0}}) + "\n")
    (outside / "secret.jsonl").write_text(json.dumps({"index": 0, "raw": SECRET}) + "\n")
    (out / "linked").symlink_to(outside / "secret", target_is_directory=True)
    sneaky = out / "tickets" / "20260101-000002-sneaky-f82b0060"
    shutil.copytree(gold, sneaky)
    (sneaky / "samples.jsonl").unlink()
    (sneaky / "samples.jsonl").symlink_to(outside / "secret.jsonl")
    summary["model_name"] = "sneaky"
    (sneaky / "summary.json").write_text(json.dumps(summary))
    server = Live(out, [root / "specs"])
    yield server, out, lines
    server.close()


def _groups(live):
    return {g["id"]: g for g in live.json("/api/index")["groups"]}


def _run(index, model):
    for g in index["groups"]:
        for r in g["runs"]:
            if r["model"] == model:
                return g, r
    raise AssertionError(f"no run of {model}")


def test_corrupt_lines_are_named_and_the_rest_shown(bad):
    live, _, _ = bad
    g, r = _run(live.json("/api/index"), "corrupt")
    page = live.json("/api/compare?" + urlencode([("group", g["id"]), ("run", r["id"])]))
    assert page["total"] == 10
    problems = page["runs"][0]["problems"]
    assert problems[0].startswith("line 3: not valid JSON (") and problems[1] == "line 5: not a JSON object; skipped"


def test_a_run_being_written_shows_the_samples_so_far(bad):
    live, out, lines = bad
    index = live.json("/api/index")
    g, r = _run(index, "writing")
    assert r["status"] == "in progress" and r["n"] == 5
    assert r["notes"][0].startswith("no summary.json yet: the run is still being written")
    params = urlencode([("group", g["id"]), ("run", r["id"])])
    page = live.json("/api/compare?" + params)
    assert page["total"] == 5 and page["runs"][0]["partial"].startswith("line 6 is incomplete")
    with open(out / r["id"] / "samples.jsonl", "a") as f:
        f.write(lines[5][30:] + "".join(lines[6:9]))
    page = live.json("/api/compare?" + params)
    assert page["total"] == 9 and page["runs"][0]["partial"] is None


def test_an_older_run_folder_is_shown_with_what_it_lacks(bad):
    live, _, _ = bad
    index = live.json("/api/index")
    g, r = _run(index, "old-model")
    assert g["contract_id"] == "unknown" and g["kind"] == "unknown"
    assert r["metrics"]["exact_match"] == {"mean": 0.5, "std": None}
    assert "summary.json lacks contract_id, model_name, started, latency_ms, cost, invalid_rate (an older taskc?)" in r["notes"]
    assert "no contract.json in this run folder (an older taskc?)" in r["notes"]
    q = urlencode([("group", g["id"]), ("row", "0.0")])
    page = live.json("/api/compare?" + q)
    assert [row["cells"][0]["output"] for row in page["rows"]] == ["billing", "card"]
    assert page["counts"]["wrong"] == 1 and page["group"]["gold"] is False
    assert live.json("/api/sample?" + q)["cells"][0]["raw"] == "billing"
    assert live.json("/api/messages?" + q, 404) == {"error": "no contract.json in these runs: the messages cannot be rendered"}
    assert live.json("/api/kind?" + q)["runs"][0]["histogram"]["n"] == 2


def test_summary_fields_in_an_older_shape(bad):
    live, _, _ = bad
    g, r = _run(live.json("/api/index"), "bare")
    assert r["metrics"]["exact_match"] == {"mean": 0.75, "std": None} and r["p50"] is None
    assert r["notes"] == ["summary.json lacks started, cost, invalid_rate (an older taskc?)",
                          "no contract.json in this run folder (an older taskc?)",
                          "summary.json: metric exact_match is a bare value (an older taskc?)",
                          "summary.json: latency_ms is not an object; ignored"]
    page = live.json("/api/compare?" + urlencode([("group", g["id"]), ("run", r["id"])]))
    assert page["total"] == 2 and page["group"]["gold"] is True


def test_symlinks_out_of_the_runs_folder_are_not_served(bad):
    live, _, _ = bad
    index = live.json("/api/index")
    ids = [r["id"] for g in index["groups"] for r in g["runs"]]
    assert not any(i.startswith("linked") for i in ids)
    g, r = _run(index, "sneaky")
    assert "samples.jsonl points outside the runs folder; it is not read" in r["notes"]
    status, _, body = live.raw("/api/compare?" + urlencode([("group", g["id"]), ("run", r["id"])]))
    assert status == 404 and json.loads(body)["error"].endswith("samples.jsonl points outside the runs folder")
    for path in ["/api/compare?" + urlencode([("group", g["id"]), ("run", "linked/20260101-000000-secret-f82b0060")]),
                 "/api/sample?" + urlencode([("group", g["id"]), ("run", r["id"]), ("row", "0.0")])]:
        status, _, body = live.raw(path)
        assert status == 404 and SECRET.encode() not in body


@pytest.mark.parametrize("path", [
    "/static/../cli.py", "/static/..%2fcli.py", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", "/static/index.html",
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "/api/../../etc/passwd", "//etc/passwd",
    "/static/%2fetc%2fpasswd",
])
def test_paths_outside_are_404(bad, path):
    live, _, _ = bad
    status, headers, body = live.raw(path)
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "not found"}


@pytest.mark.parametrize("run", ["../../etc/passwd", "/etc/passwd", "tickets/../../outside/secret.jsonl",
                                 quote("../outside", safe=""), "linked/20260101-000000-secret-f82b0060", "."])
def test_run_ids_outside_are_404(bad, run):
    live, _, _ = bad
    g, _ = _run(live.json("/api/index"), "corrupt")
    for api in ("compare", "sample", "kind"):
        status, _, body = live.raw(f"/api/{api}?" + urlencode([("group", g["id"]), ("run", run), ("row", "0.0")]))
        assert status == 404 and json.loads(body)["error"] == f"no run '{run}' in this runs folder"


def test_bad_parameters_get_a_clear_4xx(bad, live):
    from tests.view.conftest import group_id

    tickets = group_id(live, "tickets")
    timers = group_id(live, "timers")
    timers_run = next(g for g in live.json("/api/index")["groups"] if g["id"] == timers)["runs"][0]["id"]
    cases = {
        "/api/compare?group=nope": (404, "no task group 'nope' in this runs folder"),
        f"/api/compare?group={tickets}&page=x": (400, "'page' must be a whole number, not 'x'"),
        f"/api/compare?group={tickets}&filter=bogus": (400, "unknown filter 'bogus' (filters: wrong, invalid, errors, disagree, regressed, fixed)"),
        f"/api/compare?group={tickets}&filter=regressed": (400, "the regressed and fixed filters compare exactly two runs"),
        f"/api/sample?group={tickets}&row=abc": (400, "a row is ROW.REPEAT (e.g. 12.0), not 'abc'"),
        f"/api/sample?group={tickets}&row=99.0": (404, "row 99.0 is in none of the chosen runs"),
        f"/api/sql?group={tickets}&row=0.0": (400, "not a sql task"),
    }
    for path, (status, message) in cases.items():
        assert live.json(path, status) == {"error": message}, path
    error = live.json("/api/compare?" + urlencode([("group", tickets), ("run", timers_run)]), 400)["error"]
    assert error.startswith(f"run '{timers_run}' has a different contract than tickets")


def test_an_unexpected_failure_is_a_json_500_without_traceback(made):
    root, _ = made
    server = Live(root / "runs", [root / "specs"])
    try:
        server.viewer.index = lambda: 1 / 0
        status, headers, body = server.raw("/api/index")
        assert status == 500 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"error": "internal error (ZeroDivisionError); the terminal running taskc view has the details"}
        status, _, _ = server.raw("/api/index", host="evil.example")
        assert status == 400  # a foreign Host header (DNS rebinding) is refused
    finally:
        server.close()


def test_run_folders_are_never_written(made, live):
    root, _ = made
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in (root / "runs").rglob("*") if p.is_file()}
    for task in ("tickets", "timers", "reviews", "shop"):
        gid = next(g["id"] for g in live.json("/api/index")["groups"] if g["task"] == task)
        live.json(f"/api/compare?group={gid}")
        live.json(f"/api/kind?group={gid}")
        live.json(f"/api/sample?group={gid}&row=0.0")
    after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in (root / "runs").rglob("*") if p.is_file()}
    assert after == before


def test_gold_not_reachable_is_said_and_the_samples_still_shown(made, tmp_path: Path):
    root, _ = made
    changed = tmp_path / "specs"
    shutil.copytree(root / "specs", changed)
    with open(changed / "tickets_test.jsonl", "a") as f:
        f.write(json.dumps({"text": "one more row", "answer": "other"}) + "\n")
    for specs, note in (([tmp_path / "empty"], f"gold not available: no spec named 'tickets' found (looked in {tmp_path / 'empty'}); "
                                                "showing what the samples hold"),
                        ([changed], f"gold not available: {changed / 'tickets.yaml'}: its test data ({changed / 'tickets_test.jsonl'}) "
                                    "changed since this run (sha256 differs); showing what the samples hold")):
        server = Live(root / "runs", specs)
        try:
            gid = next(g["id"] for g in server.json("/api/index")["groups"] if g["task"] == "tickets")
            page = server.json(f"/api/compare?group={gid}")
            assert page["group"] == {**page["group"], "gold": False, "gold_note": note}
            assert page["rows"][0]["gold"] is None and page["rows"][0]["cells"][0]["output"] == "billing"
            sample = server.json(f"/api/sample?group={gid}&row=0.0")
            assert sample["gold"] is None and sample["inputs"] == {"text": "my invoice shows the wrong amount"}
            (run,) = server.json(f"/api/kind?group={gid}&run={page['runs'][0]['id']}")["runs"]
            assert run["confusion"] == {"note": note}
        finally:
            server.close()
