"""One writer per run folder, a cache shared by concurrent runs, no credentials at rest (issue 19,
points 1 and 7)."""

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from taskc.common.endpoints import redact_url
from taskc.evaluate.run import claim_run_dir
from tests.fakes.provider_server import FakeProvider
from tests.support import REPO, taskc

SPEC = str(REPO / "specs" / "banking77.yaml")


def test_run_ids_are_unique_and_claimed_exclusively(tmp_path):
    started = datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=timezone.utc)
    claimed = [claim_run_dir(tmp_path, "task", "openai:m", "abcdef123456", started) for _ in range(50)]
    ids = [run_id for run_id, _ in claimed]
    assert len(set(ids)) == 50 and all(i.startswith("20261202-010203-456789-openai-m-abcdef12-") for i in ids)
    assert all(path.is_dir() and not any(path.iterdir()) for _, path in claimed)


def test_two_evals_started_together_get_their_own_folders(tmp_path):
    args = [sys.executable, "-m", "taskc.cli", "eval", SPEC, "--limit", "300", "--no-progress"]
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = sorted((tmp_path / "runs" / "banking77").iterdir())
    assert len(runs) == 2
    for run in runs:
        rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        assert sorted(r["index"] for r in rows) == list(range(300))
        summary = json.loads((run / "summary.json").read_text())
        assert summary["run_id"] == run.name and summary["n"] == 300


CACHE_WRITER = """
import sys
from taskc.runner.cache import ResultCache
from taskc.runner.types import Result
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with ResultCache(path, max_pending=1) as cache:
    for i in range(n):
        cache.put(f"{tag}-{i}", Result(i, 0, raw=f"{tag} {i}"))
        cache.flush()
"""


def test_two_processes_write_one_cache_file_and_lose_nothing(tmp_path):
    from taskc.runner.cache import ResultCache

    path = tmp_path / "cache.sqlite"
    ResultCache(path).close()  # the file and table exist before both writers start
    procs = [subprocess.Popen([sys.executable, "-c", CACHE_WRITER, str(path), tag, "1500"], stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    with ResultCache(path) as cache:
        found = cache.get_many(f"{tag}-{i}" for tag in "ab" for i in range(1500))
        assert len(found) == 3000 and len(cache) == 3000


def test_failures_warned_are_the_failures_counted(tmp_path):
    with FakeProvider() as fake:
        fake.fail_next(5, status=400)
        proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                     "--limit", "12", "--concurrency", "2", "--no-progress", cwd=tmp_path)
    (run,) = (tmp_path / "runs" / "banking77").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert proc.returncode == 0
    assert summary["errors"] == sum(1 for r in rows if r["error"]) == 5
    assert f"warning: {summary['errors']} of 12 requests failed" in proc.stderr


@pytest.mark.parametrize("url, shown", [
    ("https://bob:s3cret@api.example.com/v1", "https://[REDACTED]@api.example.com/v1"),
    ("https://generativelanguage.googleapis.com/v1beta/openai?key=AIzaSECRET&alt=json",
     "https://generativelanguage.googleapis.com/v1beta/openai?key=[REDACTED]&alt=json"),
    ("http://127.0.0.1:8000/v1?api-version=2024-10-21", "http://127.0.0.1:8000/v1?api-version=2024-10-21"),
])
def test_urls_are_written_without_their_credentials(url, shown):
    assert redact_url(url) == shown


def test_a_query_key_never_reaches_summary_json(tmp_path):
    with FakeProvider() as fake:
        url = fake.openai_base_url + "?key=sk-query-secret-777"
        proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", url, "--limit", "3",
                     "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert fake.requests and all(r.path == "/v1/chat/completions" for r in fake.requests)
    assert "sk-query-secret-777" not in proc.stdout + proc.stderr
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert b"sk-query-secret-777" not in path.read_bytes(), path
    (run,) = (tmp_path / "runs" / "banking77").iterdir()
    assert json.loads((run / "summary.json").read_text())["settings"]["base_url"].endswith("?key=[REDACTED]")


def test_user_and_password_in_the_url_are_explained_once(tmp_path):
    proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", "https://me:hunter2@llm.example.com/v1",
                 "--limit", "3", "--no-progress", cwd=tmp_path, env={"OPENAI_API_KEY": "sk-x"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --base-url https://[REDACTED]@llm.example.com/v1 carries credentials (user:password@ in the URL); "
        "taskc sends the API key as a header: put it in an environment variable and name it with --api-key-env "
        "(or api_key_env: in models.yaml), e.g. $OPENAI_API_KEY")
    assert "hunter2" not in proc.stdout + proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_folder_has_one_writer_at_a_time(tmp_path):
    from taskc.errors import TaskcError
    from taskc.evaluate.run import lock_run_dir

    held = lock_run_dir(tmp_path)
    with pytest.raises(TaskcError, match=r"^run folder .* is being written by another taskc process; wait for it to end$"):
        lock_run_dir(tmp_path)
    held.close()
    lock_run_dir(tmp_path).close()  # free again once the first writer is done
