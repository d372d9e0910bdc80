"""`taskc eval` end to end over real HTTP against the fake provider: records, summaries, exits,
resumption after SIGKILL, flagged constraint violations, secrets kept out of files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from tests.fakes.provider_server import FakeProvider
from tests.support import REPO as ROOT
from tests.support import taskc

SPEC = str(ROOT / "specs" / "banking77.yaml")
GIT = str(ROOT / "specs" / "git_assistant.yaml")


def run_dir(out: Path, task: str) -> Path:
    (only,) = sorted((out / task).iterdir())
    return only


def gold_label_responder():
    from taskc.compiler.build import compile_spec

    contract = compile_spec(SPEC)
    by_text = {contract.user_message("test", i): contract.gold_text("test", i) for i in range(50)}
    return lambda api, body: by_text.get(body["messages"][-1]["content"], "card_arrival")


def test_eval_writes_samples_and_summary(tmp_path):
    with FakeProvider(responder=gold_label_responder()) as fake:
        proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                     "--limit", "20", "--out", "runs", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = run_dir(tmp_path / "runs", "banking77")
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert sorted(s["index"] for s in samples) == list(range(20))
    first = min(samples, key=lambda s: s["index"])
    assert set(first) >= {"index", "repeat", "inputs", "messages_hash", "raw", "parsed", "valid", "invalid_reason",
                          "scores", "latency_s", "usage", "error"}
    assert first["valid"] and first["scores"] == {"exact_match": 1.0} and first["usage"]["input_tokens"] > 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["metrics"]["exact_match"]["mean"] == 1.0
    assert summary["settings"]["repeats"] == 1 and summary["settings"]["generation"]["temperature"] == 0.0
    assert summary["n"] == 20 and summary["errors"] == 0 and summary["invalid"] == 0
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99"} and summary["requests_per_s"] > 0
    assert summary["contract_id"] == json.loads((folder / "contract.json").read_text())["contract_id"]
    assert "taskc" in summary["versions"]


def test_rerun_is_served_from_the_cache(tmp_path):
    with FakeProvider(responder=gold_label_responder()) as fake:
        args = ("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                "--limit", "10", "--no-progress")
        assert taskc(*args, cwd=tmp_path).returncode == 0
        sent = fake.count
        again = taskc(*args, cwd=tmp_path)
        assert again.returncode == 0 and fake.count == sent == 10
        assert "cached 10" in again.stdout
        assert taskc(*args, "--no-cache", cwd=tmp_path).returncode == 0 and fake.count == 20


def test_invalid_outputs_despite_a_constraint_are_flagged(tmp_path):
    with FakeProvider(default_answer="not a label at all") as fake:
        proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                     "--limit", "5", "--no-progress", cwd=tmp_path)
        body = fake.requests[0].body
    assert proc.returncode == 0
    assert "structured_outputs" in body and "guided_choice" not in json.dumps(body)
    summary = json.loads((run_dir(tmp_path / "runs", "banking77") / "summary.json").read_text())
    assert summary["invalid"] == 5 and summary["constraint_sent"] is True
    warning = "5 outputs broke the contract although a constraint was sent: the backend may have dropped the grammar"
    assert warning in summary["warnings"] and f"warning: {warning}" in proc.stderr


def test_a_wrong_base_url_does_not_look_like_a_finished_run(tmp_path):
    """Nothing listens there: said before the first request, and no run folder is left behind."""
    proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                 "--limit", "3", "--timeout", "2", "--max-attempts", "1", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: nothing answers at http://127.0.0.1:9/v1 (connection refused): "
                                   "start the server first, or check --base-url")
    assert not (tmp_path / "runs").exists()


def test_an_endpoint_that_fails_every_request_does_not_look_like_a_finished_run(tmp_path):
    with FakeProvider() as fake:
        fake.fail_next(3, status=400)
        proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                     "--limit", "3", "--max-attempts", "1", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1
    assert "error: every request failed; first errors:" in proc.stderr
    assert "HTTP 400" in proc.stderr


def test_some_failures_are_counted(tmp_path):
    with FakeProvider(responder=gold_label_responder()) as fake:
        fake.fail_next(3, status=400)  # not retried: three rows fail
        proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                     "--limit", "8", "--concurrency", "1", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0
    assert "warning: 3 of 8 requests failed" in proc.stderr
    summary = json.loads((run_dir(tmp_path / "runs", "banking77") / "summary.json").read_text())
    assert summary["errors"] == 3 and len(summary["first_errors"]) == 3


def test_api_models_default_to_three_repeats_and_their_own_temperature(tmp_path):
    with FakeProvider(responder=gold_label_responder()) as fake:
        (tmp_path / "models.yaml").write_text(
            "models:\n  nano:\n    backend: openai\n    model: gpt-5-nano\n    mode: openai\n"
            f"    base_url: {fake.openai_base_url}\n    local: false   # an API model behind a local proxy\n")
        proc = taskc("eval", GIT, "--models", "nano", "--limit", "2", "--no-progress", cwd=tmp_path)
        bodies = [r.body for r in fake.requests]
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir(tmp_path / "runs", "git_assistant") / "summary.json").read_text())
    assert summary["settings"]["repeats"] == 3 and summary["n"] == 6
    assert all("temperature" not in b for b in bodies)
    assert all(b["tools"][0]["function"]["strict"] is True and b["tool_choice"] == "required" for b in bodies)


def test_the_api_key_reaches_no_file(tmp_path):
    key = "sk-secret-do-not-leak-4242"
    with FakeProvider(responder=gold_label_responder()) as fake:
        fake.script({"status": 401, "echo_key": True})
        proc = taskc("eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                     "--api-key-env", "MY_KEY", "--limit", "4", "--concurrency", "1", "--no-progress", cwd=tmp_path,
                     env={"MY_KEY": key})
    assert proc.returncode == 0, proc.stderr
    assert key not in proc.stdout + proc.stderr
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_sigkill_mid_run_then_rerun_loses_nothing_and_resends_nothing(tmp_path):
    with FakeProvider(responder=gold_label_responder(), delay_s=0.05) as fake:
        args = [sys.executable, "-m", "taskc.cli", "eval", SPEC, "--backend", "openai", "--model", "m",
                "--base-url", fake.openai_base_url, "--limit", "120", "--concurrency", "4", "--no-progress"]
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        samples = None
        while time.monotonic() < deadline:
            found = list((tmp_path / "runs").rglob("samples.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= 40:
                samples = found[0]
                break
            time.sleep(0.05)
        assert samples is not None, "the run did not get going"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first_prompts = [r.body["messages"][-1]["content"] for r in fake.requests]
        assert len(first_prompts) < 120
        time.sleep(0.2)
        fake.reset()
        rerun = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
        second_prompts = [r.body["messages"][-1]["content"] for r in fake.requests]
    assert rerun.returncode == 0, rerun.stderr
    answered = set(first_prompts) - set(second_prompts)
    assert len(answered) >= 30  # most of what finished before the kill was cached, so not sent again
    # answers arrive at about 80/s, so each is committed as it comes: only the 4 in flight go again
    assert len(set(first_prompts) & set(second_prompts)) <= 4
    assert len(second_prompts) == len(set(second_prompts)) and len(second_prompts) <= 120 - len(answered)
    latest = max((tmp_path / "runs" / "banking77").iterdir())
    rows = [json.loads(line) for line in (latest / "samples.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(120)) and all(r["valid"] for r in rows)
