"""`taskc eval --batch` end to end (the real command, a fake batch API over real HTTP): the same
payloads as the synchronous path, batch pricing in summary.json, SIGKILL during polling then
`taskc batches` and `--resume` (one batch on the fake's side), `--cancel`, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taskc.evaluate.batches import batch_output_predictions
from tests.fakes.batch_server import FakeBatchProvider
from tests.support import REPO, taskc

SPEC = str(REPO / "specs" / "banking77.yaml")
FAST = {"TASKC_BATCH_POLL_S": "0.02"}


@pytest.fixture(scope="module")
def gold():
    from taskc.compiler.build import compile_spec

    contract = compile_spec(SPEC)
    by_text = {contract.user_message("test", i): contract.gold_text("test", i) for i in range(12)}
    return lambda api, body: by_text.get(body["messages"][-1]["content"], "card_arrival")


def model_args(api, fake):
    if api == "openai":
        return ["--backend", "openai", "--model", "gpt-5-nano", "--base-url", fake.openai_base_url]
    return ["--backend", "anthropic", "--model", "claude-haiku-4-5", "--base-url", fake.anthropic_base_url]


def only_run(out: Path) -> Path:
    (folder,) = [p for p in (out / "banking77").iterdir() if (p / "summary.json").exists()]
    return folder


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_batch_run_sends_the_synchronous_payloads_at_the_batch_price(api, tmp_path, gold):
    with FakeBatchProvider(responder=gold) as fake:
        sync = taskc("eval", SPEC, *model_args(api, fake), "--limit", "8", "--no-progress", "--out", "sync", cwd=tmp_path)
        assert sync.returncode == 0, sync.stderr
        sent_sync = sorted(body for _, body in fake.raw_bodies)
        proc = taskc("eval", SPEC, *model_args(api, fake), "--limit", "8", "--no-progress", "--batch", "--no-cache",
                     "--out", "batch", cwd=tmp_path, env=FAST)
        (batch,) = fake.batches.values()
    assert proc.returncode == 0, proc.stderr
    assert len(fake.raw_bodies) == 8  # nothing synchronous in the batch run
    if api == "openai":  # byte for byte what the synchronous run POSTed
        assert sorted(line.split(b',"body":', 1)[1][:-1] for line in batch.lines) == sent_sync
    else:
        assert len(batch.items) == 8 and all(b'"params":' + body + b"}" in batch.raw_body for body in sent_sync)
    summary = json.loads((only_run(tmp_path / "batch") / "summary.json").read_text())
    listed = json.loads((only_run(tmp_path / "sync") / "summary.json").read_text())
    assert summary["metrics"]["exact_match"]["mean"] == listed["metrics"]["exact_match"]["mean"] == 1.0
    cost = summary["cost"]
    assert cost["pricing"] == "batch" and cost["batch_discount"] == 0.5 and cost["batch_requests"] == 8
    assert cost["usd_total"] == pytest.approx(cost["usd_total_at_list_price"] * 0.5)
    assert cost["usd_total_at_list_price"] == pytest.approx(listed["cost"]["usd_total"])
    assert listed["cost"]["pricing"] == "list"
    assert summary["batch"] == {"requested": True, "supported": True, "requests": 8, "batches": [batch.id],
                                "retried_sync": 0}
    assert summary["latency_ms"]["p50"] is None and summary["requests_per_s"] is None
    assert "(batch price)" in proc.stdout


def _start_held_run(fake, api, tmp_path):
    fake.hold = True
    args = [sys.executable, "-m", "taskc.cli", "eval", SPEC, *model_args(api, fake), "--limit", "6", "--no-progress",
            "--batch"]
    proc = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, **FAST}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "runs").glob("banking77/*/batches.json"))
        if found and fake.polls:  # recorded, then polled at least once
            records = json.loads(found[0].read_text())["batches"]
            if records and records[0]["id"]:
                state = found[0]
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert state is not None, "the run never recorded its batch"
    assert not (state.parent / "summary.json").exists()
    return state.parent


def test_sigkill_while_polling_then_resume_polls_the_same_batch(tmp_path, gold):
    with FakeBatchProvider(responder=gold) as fake:
        run_dir = _start_held_run(fake, "openai", tmp_path)
        (batch_id,) = fake.batches
        listed = taskc("batches", "runs", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert f"{batch_id} · openai:gpt-5-nano · 6 requests · submitted · provider: in_progress" in listed.stdout
        fake.hold = False
        again = taskc("eval", SPEC, *model_args("openai", fake), "--limit", "6", "--no-progress", "--batch",
                      "--resume", str(run_dir), cwd=tmp_path, env=FAST)
        assert again.returncode == 0, again.stderr
        assert fake.created == 1 and fake.raw_bodies == []  # the same batch, nothing sent twice
        after = taskc("batches", "runs", "--offline", cwd=tmp_path)
    assert after.stdout.strip() == "no batches in flight under runs"
    summary = json.loads((only_run(tmp_path / "runs") / "summary.json").read_text())
    assert summary["n"] == 6 and summary["errors"] == 0 and summary["batch"]["batches"] == [batch_id]


def test_cancel_an_in_flight_batch_and_bad_input(tmp_path, gold):
    with FakeBatchProvider(responder=gold) as fake:
        run_dir = _start_held_run(fake, "anthropic", tmp_path)
        (batch_id,) = fake.batches
        unknown = taskc("batches", "runs", "--cancel", "msgbatch_nope", cwd=tmp_path)
        assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
        assert unknown.stderr.strip() == f"error: no batch 'msgbatch_nope' is recorded under runs (recorded: {batch_id})"
        cancelled = taskc("batches", "runs", "--cancel", batch_id, cwd=tmp_path)
        assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"{batch_id}: canceling", cancelled.stderr
        again = taskc("eval", SPEC, *model_args("anthropic", fake), "--limit", "6", "--no-progress", "--batch",
                      "--resume", str(run_dir), cwd=tmp_path, env=FAST)
        assert fake.created == 1 and fake.raw_bodies == []  # canceled items are reported, not retried
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"error: every request failed; first errors:\n  batch {batch_id}: canceled" in again.stderr
    samples = [json.loads(x) for x in (only_run(tmp_path / "runs") / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and all(s["error"] == f"batch {batch_id}: canceled" for s in samples)


def test_resume_refuses_a_folder_of_another_contract_or_model(tmp_path, gold):
    bogus = tmp_path / "runs" / "banking77" / "old"
    bogus.mkdir(parents=True)
    proc = taskc("eval", SPEC, "--backend", "gold", "--resume", str(bogus), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: --resume {bogus}: not a run folder (no readable contract.json)"
    (bogus / "contract.json").write_text(json.dumps({"contract_id": "f" * 64}))
    proc = taskc("eval", SPEC, "--backend", "gold", "--resume", str(bogus), cwd=tmp_path)
    assert proc.returncode == 2 and "that run used contract ffffffffffff, the spec now compiles to banking77" in proc.stderr


def test_a_malformed_batch_object_names_the_batch_and_keeps_the_cached_answers(tmp_path, gold):
    with FakeBatchProvider(responder=gold) as fake:
        first = taskc("eval", SPEC, *model_args("openai", fake), "--limit", "3", "--no-progress", "--batch", cwd=tmp_path, env=FAST)
        assert first.returncode == 0, first.stderr
        fake.malformed_batch = True
        proc = taskc("eval", SPEC, *model_args("openai", fake), "--limit", "5", "--no-progress", "--batch", cwd=tmp_path, env=FAST)
        batch_id = list(fake.batches)[-1]
    assert proc.returncode == 0 and "Traceback" not in proc.stderr  # 3 of 5 answered (from the cache)
    assert "warning: 2 of 5 requests failed" in proc.stderr
    runs = sorted((tmp_path / "runs" / "banking77").iterdir())
    samples = [json.loads(x) for x in (runs[-1] / "samples.jsonl").read_text().splitlines()]
    failed = [s for s in samples if s["error"]]
    assert len(samples) == 5 and sorted(s["index"] for s in failed) == [3, 4]
    assert all(s["error"].startswith(f"batch {batch_id}: cannot poll it: batch {batch_id}: malformed batch object")
               for s in failed)


def test_batch_output_lines_become_predictions():
    lines = [{"id": "x", "custom_id": "t3-1-00ff00ff00ff00ff", "error": None,
              "response": {"status_code": 200, "body": {"choices": [{"message": {"content": "card_lost"}}]}}},
             {"id": "y", "custom_id": "t4-0-00ff00ff00ff00ff", "response": {"status_code": 400, "body": {}}, "error": None},
             {"index": 1, "output": "kept"}]
    assert batch_output_predictions(lines) == [{"index": 3, "repeat": 1, "raw": "card_lost"},
                                               {"index": 4, "repeat": 0, "raw": None}, {"index": 1, "output": "kept"}]
    with pytest.raises(ValueError, match="not a custom_id taskc made"):
        batch_output_predictions([{"custom_id": "row-7", "response": {}}])


def test_missing_keys_are_clear_and_nothing_is_sent(tmp_path):
    env = {"OPENAI_API_KEY": "", "TASKC_NOPE": ""}
    proc = taskc("eval", SPEC, "--backend", "openai", "--model", "gpt-5-nano", "--batch", "--limit", "2", cwd=tmp_path,
                 env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("needs an API key for https://api.openai.com/v1: set $OPENAI_API_KEY")
    run = tmp_path / "runs" / "banking77" / "r1"
    run.mkdir(parents=True)
    (run / "batches.json").write_text(json.dumps({"format": 1, "batches": [{
        "id": "batch_abc", "state": "submitted", "backend": "openai", "model": "gpt-5-nano",
        "base_url": "https://api.openai.com/v1", "api_key_env": "TASKC_NOPE", "mode": "openai", "requests": 2,
        "custom_ids": ["t0-0-0000000000000000", "t1-0-0000000000000000"], "submitted_at": "2026-01-01T00:00:00+00:00"}]}))
    listed = taskc("batches", "runs", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "batch_abc · openai:gpt-5-nano · 2 requests · submitted · provider: ? (" in listed.stdout
    assert "set $TASKC_NOPE" in listed.stdout
    cancel = taskc("batches", "runs", "--cancel", "batch_abc", cwd=tmp_path, env=env)
    assert cancel.returncode == 2 and cancel.stderr.strip() == (
        "error: cannot cancel batch batch_abc: the openai backend needs an API key for https://api.openai.com/v1: "
        "set $TASKC_NOPE")
