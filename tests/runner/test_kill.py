"""SIGKILL mid-run loses nothing that was cached, and a rerun resends none of it: at this rate each
answer is committed as it arrives, so only what was in flight at the kill is sent again."""

import json
from contextlib import closing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from taskc.backends import get_backend
from taskc.runner.cache import cache_key
from tests.fakes.requests import make_request
from tests.support import REPO

WORKER = Path(__file__).with_name("_kill_worker.py")
CONCURRENCY = 8  # as _kill_worker.py runs
N = 200


def committed(path: Path) -> int:
    """Rows committed to the cache file so far, as another process sees them."""
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(path, timeout=1)) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not made yet
        return 0


def test_sigkill_then_rerun_resends_nothing_cached(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKC_TEST_KEY", "sk-kill-test-5555")
    fake.responder = lambda api, body: body["messages"][-1]["content"].upper()
    fake.delay_s = 0.05  # 8 in flight: about 160 requests/s, so the run takes over a second
    cache_path, out_path = tmp_path / "cache.sqlite", tmp_path / "out.jsonl"
    args = [sys.executable, str(WORKER), fake.openai_base_url, str(cache_path), str(out_path), str(N)]

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env)
    deadline = time.monotonic() + 60
    while committed(cache_path) < 50 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL and not out_path.exists()

    with closing(sqlite3.connect(cache_path)) as db:
        cached_keys = {k for (k,) in db.execute("SELECT key FROM results")}
    backend = get_backend("openai", model="m", base_url=fake.openai_base_url, api_key_env="TASKC_TEST_KEY")
    requests = [make_request("text", f"row {i}", i) for i in range(N)]
    key_of = {i: cache_key("kill", "openai", "m", backend.render(r), 0) for i, r in enumerate(requests)}
    cached = {i for i, k in key_of.items() if k in cached_keys}
    print(f"cached before the kill: {len(cached)} of {N}")
    assert 50 <= len(cached) < N and len(cached_keys) == len(cached)

    received_first = {int(rec.body["messages"][-1]["content"].split()[1]) for rec in fake.requests}
    fake.reset()
    subprocess.run(args, env=env, check=True, timeout=120)
    resent = [int(rec.body["messages"][-1]["content"].split()[1]) for rec in fake.requests]
    assert not set(resent) & cached
    assert sorted(resent) == sorted(set(range(N)) - cached)
    again = set(resent) & received_first  # answered (or being answered) by the server before the kill
    print(f"sent twice: {len(again)} (in flight at most {CONCURRENCY})")
    assert len(again) <= CONCURRENCY

    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(N))
    assert all(r["raw"] == f"ROW {r['index']}" and r["error"] is None for r in rows)
    assert {r["index"] for r in rows if r["cached"]} == cached
    assert all(b"sk-kill-test-5555" not in p.read_bytes() for p in tmp_path.iterdir())
