"""Ctrl-C during `taskc eval`, with a real SIGINT: the run stops sending, writes what it has and a
summary marked partial, says how many samples are done and how to resume, and exits 130; a
second SIGINT exits at once; the rerun sends only what was not answered."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.provider_server import FakeProvider
from tests.support import REPO

SPEC = str(REPO / "specs" / "banking77.yaml")


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "taskc.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_samples(cwd: Path, at_least: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = list((cwd / "runs").rglob("samples.jsonl"))
        if found:
            n = len(found[0].read_bytes().splitlines())
            if n >= at_least:
                return n
        time.sleep(0.02)
    raise AssertionError("the run did not get going")


def the_run(cwd: Path, task: str = "banking77") -> Path:
    (only,) = sorted((cwd / "runs" / task).iterdir())
    return only


def check_partial(proc: subprocess.Popen, cwd: Path, planned: int) -> tuple[dict, list[dict], str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run = the_run(cwd)
    summary = json.loads((run / "summary.json").read_text())
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert summary["partial"] is True and summary["planned"] == planned
    assert 0 < summary["n"] == len(rows) < planned
    assert f"interrupted: {summary['n']} of {planned} samples done -> runs/banking77/{run.name}/ (summary marked partial)" in err
    assert "resume with: taskc eval " in err and err.rstrip().endswith(f" --resume runs/banking77/{run.name}")
    return summary, rows, err


def test_baseline_stops_on_the_first_sigint(tmp_path):
    planned = 3080 * 40
    proc = start(["eval", SPEC, "--repeats", "40", "--no-progress"], tmp_path)
    wait_for_samples(tmp_path, 1)
    proc.send_signal(signal.SIGINT)
    summary, rows, err = check_partial(proc, tmp_path, planned)
    assert err.splitlines()[1].startswith("interrupted: finishing the requests in flight")
    assert summary["n"] % 1024 == 0  # whole chunks of the batched backend, nothing half-written
    assert summary["metrics"]["exact_match"]["mean"] is not None


def test_openai_stops_sending_and_the_rerun_sends_only_the_rest(tmp_path):
    with FakeProvider(delay_s=0.05) as fake:
        args = ["eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                "--limit", "200", "--concurrency", "4", "--no-progress"]
        proc = start(args, tmp_path)
        wait_for_samples(tmp_path, 10)
        proc.send_signal(signal.SIGINT)
        summary, rows, err = check_partial(proc, tmp_path, 200)
        sent_first = len(fake.requests)
        assert sent_first <= summary["n"] + 4  # nothing sent after the signal but what was in flight
        time.sleep(0.3)
        assert len(fake.requests) == sent_first
        fake.reset()
        resume = err.rstrip().rsplit("resume with: taskc ", 1)[1].split()
        assert resume[-2:] == ["--resume", f"runs/banking77/{the_run(tmp_path).name}"]
        rerun = subprocess.run([sys.executable, "-m", "taskc.cli", *resume], cwd=tmp_path, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert len(fake.requests) == 200 - summary["n"]
        run = the_run(tmp_path)  # the same folder, now complete
        done = json.loads((run / "summary.json").read_text())
        assert done["partial"] is False and done["n"] == 200 and done["cached"] == summary["n"]
        assert len((run / "samples.jsonl").read_text().splitlines()) == 200


def test_a_second_sigint_exits_at_once(tmp_path):
    with FakeProvider(delay_s=2.0) as fake:  # answers slower than the test waits
        proc = start(["eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", fake.openai_base_url,
                      "--limit", "50", "--concurrency", "8", "--no-progress"], tmp_path)
        deadline = time.monotonic() + 60
        while len(fake.requests) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        waited = time.monotonic() - t0
    assert proc.returncode == 130
    assert "interrupted again: quitting now" in err
    assert waited < 1.5  # did not wait for the 2 s answers in flight
