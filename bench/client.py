"""Client throughput: openai.AsyncOpenAI (default httpx client) vs taskc's runner + openai backend.

Starts the fake provider (tests/fakes/provider_server.py, answering at once) in subprocesses on
one port (SO_REUSEPORT), then sends N chat-completion requests at the given concurrency with
each client and prints requests/s and the ratio. No cache, no retries needed.

    python bench/client.py [--requests 3000] [--concurrency 256] [--server-workers 1] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from taskc.backends import get_backend  # noqa: E402
from taskc.runner.engine import run_requests  # noqa: E402
from tests.fakes.requests import make_request  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.fakes.provider_server", "--port", str(port), "--workers", str(workers),
           "--no-record", "--answer", "card_lost"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            time.sleep(0.5 if workers > 1 else 0.1)  # let the other workers bind too
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the fake provider did not start")


def requests_for(n: int):
    return [make_request("label", f"I lost my card, row {i}", i, max_tokens=16) for i in range(n)]


def banking77_payloads(base_url: str) -> list[dict]:
    """The bodies `taskc eval specs/banking77.yaml --backend openai` sends (every test row)."""
    from taskc.compiler.build import compile_spec

    backend = get_backend("openai", model="m", base_url=base_url, api_key_env=None)
    return [backend.render(r) for r in compile_spec(ROOT / "specs" / "banking77.yaml").requests()]


async def bench_sdk(base_url: str, n: int, concurrency: int, payloads: list[dict] | None = None) -> tuple[float, float]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    backend = get_backend("openai", model="bench", base_url=base_url, api_key_env=None)
    same_answers = payloads is None
    payloads = payloads or [backend.render(r) for r in requests_for(n)]
    n = len(payloads)
    sem = asyncio.Semaphore(concurrency)
    answers = []

    async def one(p):
        async with sem:
            r = await client.chat.completions.create(
                model=p["model"], messages=p["messages"], temperature=p["temperature"], max_tokens=p["max_tokens"],
                extra_body={"structured_outputs": p["structured_outputs"]})
            answers.append(r.choices[0].message.content)

    await asyncio.gather(*(one(p) for p in payloads[:50]))  # warm the pool
    answers.clear()
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(p) for p in payloads))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await client.close()
    assert len(answers) == n and (not same_answers or all(a == "card_lost" for a in answers))
    return n / elapsed, cpu / n


async def bench_taskc(base_url: str, n: int, concurrency: int) -> tuple[float, float]:
    backend = get_backend("openai", model="bench", base_url=base_url, api_key_env=None)
    await run_requests(backend, requests_for(50), concurrency=concurrency, progress=False)  # warm-up
    requests = requests_for(n)
    start, cpu = time.perf_counter(), time.process_time()
    results = await run_requests(backend, requests, concurrency=concurrency, progress=False)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(r.error is None and r.raw == "card_lost" for r in results), results[0]
    return n / elapsed, cpu / n


def bench_eval_command(base_url: str, concurrency: int) -> tuple[float, int]:
    """The whole `taskc eval` command (compile, render, send, validate, score, write samples and
    summary), over every banking77 test row, no cache: its own requests/s from summary.json."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "taskc.cli", "eval", str(ROOT / "specs" / "banking77.yaml"), "--backend", "openai",
               "--model", "m", "--base-url", base_url, "--concurrency", str(concurrency), "--no-cache",
               "--no-progress", "--out", out]
        subprocess.run(cmd, check=True, capture_output=True)
        (summary,) = Path(out).rglob("summary.json")
        data = json.loads(summary.read_text())
    return data["requests_per_s"], data["n"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sdk-requests", type=int, default=None, help="requests for the SDK (default: --requests)")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--uvloop", action="store_true", help="run both clients on uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    port = free_port()
    server = start_server(port, args.server_workers)
    base_url = f"http://127.0.0.1:{port}/v1"
    sdk_n = args.sdk_requests or args.requests
    try:
        sdk, sdk_cpu = asyncio.run(bench_sdk(base_url, sdk_n, args.concurrency))
        ours, ours_cpu = asyncio.run(bench_taskc(base_url, args.requests, args.concurrency))
        sdk77, _ = asyncio.run(bench_sdk(base_url, 0, args.concurrency, banking77_payloads(base_url)))
        whole, whole_n = bench_eval_command(base_url, args.concurrency)
    finally:
        server.terminate()
        server.wait(10)
    load = os.getloadavg()[0]
    print(f"cpus={os.cpu_count()} load1={load:.2f} concurrency={args.concurrency} "
          f"server_workers={args.server_workers} loop={'uvloop' if args.uvloop else 'asyncio'}")
    print(f"openai.AsyncOpenAI (default httpx): {sdk:7.0f} requests/s  {sdk_cpu * 1e3:6.2f} client CPU ms/request  ({sdk_n} requests)")
    print(f"taskc runner + openai backend     : {ours:7.0f} requests/s  {ours_cpu * 1e3:6.2f} client CPU ms/request  ({args.requests} requests)")
    print(f"ratio                             : {ours / sdk:7.1f}x requests/s  {sdk_cpu / ours_cpu:6.1f}x less CPU per request")
    print("same 3,080 banking77 bodies (2 kB system prompt each), both ways:")
    print(f"openai.AsyncOpenAI (default httpx): {sdk77:7.0f} requests/s")
    print(f"whole `taskc eval` command        : {whole:7.0f} requests/s  ({whole_n} rows, validated, scored, written)")
    print(f"ratio, whole command / SDK        : {whole / sdk77:7.1f}x requests/s   target >= 10x: {'PASS' if whole / sdk77 >= 10 else 'FAIL'}")


if __name__ == "__main__":
    main()
