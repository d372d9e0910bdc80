"""Ctrl-C during `taskc eval --backend vllm` (a real engine, a real SIGINT): the run stops after the
chunk in flight, keeps every finished sample and exits 130."""

import json
import signal
import subprocess
import sys
import time

import yaml

from tests.support import REPO


def test_vllm_engine_run_stops_after_the_chunk_in_flight(tiny_model, tmp_path):
    from taskc.testing import vllm_engine_kwargs

    engine = {k: v for k, v in vllm_engine_kwargs(tiny_model, max_num_seqs=4).items()
              if k not in ("model", "structured_outputs_config")}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(
        {"models": {"tiny": {"backend": "vllm", "model": str(tiny_model), "engine_args": engine}}}))
    proc = subprocess.Popen([sys.executable, "-m", "taskc.cli", "eval", str(REPO / "specs" / "banking77.yaml"),
                             "--models", "tiny", "--limit", "120", "--no-progress"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    samples = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "runs").rglob("samples.jsonl"))
        if found and found[0].read_bytes().count(b"\n") >= 16:  # the first chunk (4 x max_num_seqs) is in
            samples = found[0]
            break
        time.sleep(0.05)
    assert samples is not None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err[-3000:]
    summary = json.loads((samples.parent / "summary.json").read_text())
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert summary["partial"] is True and summary["planned"] == 120
    assert summary["n"] == len(rows) and summary["n"] % 16 == 0 and 16 <= summary["n"] < 120
    assert all(r["error"] is None for r in rows)
    assert f"interrupted: {summary['n']} of 120 samples done" in err
