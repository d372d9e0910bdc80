"""A fake OpenAI Chat Completions server whose latency is known exactly, to check the load generator.

Behaviour (each worker process on its own):

- **Delay.** Request number n (the digits after the last `-` of its `x-request-id` header, else
  the worker's arrival counter) is served in `delays_ms[(n * STRIDE) % len(delays_ms)]`
  milliseconds. The default cycle `lognormal_cycle()` is the 100 quantiles
  exp(ln(median) + sigma * z((i + 0.5) / 100)) of a lognormal (median 100 ms, sigma 0.5), so the
  delays of any 100 consecutive request numbers are exactly that set and the true percentiles are
  known (`cycle_percentile`). STRIDE (37, coprime with 100) spreads long and short delays in time.
- **Capacity.** At most `capacity` requests are served at once (an `asyncio.Semaphore`); the rest
  wait in FIFO order. So latency = queue wait + delay, and beyond capacity/mean-delay requests/s
  the queue grows.
- **Truth.** Every request is recorded by the server with its own clock (`time.monotonic`, the
  system-wide CLOCK_MONOTONIC, so comparable with a client on the same host): arrival `t_in`,
  start of service `t_start`, first streamed token `t_first`, response ready `t_out` (both taken
  just before the bytes are written, so a client on this host always sees them later). Records
  go to `<record_dir>/worker-<pid>.jsonl` (flushed every 0.1 s and at exit), one JSON list per line:
  `[request_id, t_in, t_start, t_first, t_out, delay_s, status]`.
- **Answers.** `answer` (fixed text) or, with `echo`, the last user message; the body is
  `tests.fakes.provider_server.openai_body` (the same format as the other fake). With
  `stream: true` it answers as SSE: a first chunk with the role and the first character after
  `first_token_frac * delay`, the rest at `delay`, then a usage chunk when
  `stream_options.include_usage`, then `data: [DONE]`.
- **Errors.** With `error_every=k`, requests whose number is a multiple of k get HTTP 500 (after
  their delay, so they still occupy the server).
- **Metrics.** `GET /metrics` is Prometheus text in vLLM's names: `vllm:prefix_cache_queries_total`
  grows by 100 per request and `vllm:prefix_cache_hits_total` by 75 (a hit rate of exactly 0.75),
  `vllm:kv_cache_usage_perc` is requests in service / capacity, `process_resident_memory_bytes` the
  worker's RSS. `--no-metrics` answers 404 there instead.

The server is a bare asyncio protocol (keep-alive HTTP/1.1, Content-Length request bodies,
chunked SSE answers) on uvloop: at about 0.1 ms of CPU per request it leaves the cores to the
client being measured (aiohttp's server took about 0.4 ms on this project's 2-core machine).

Command line: `python -m tests.fakes.latency_server --port P [--workers N] [--capacity K]
[--median-ms M] [--sigma S] [--delays-ms 10,20,...] [--record-dir D] [--echo | --answer TEXT]
[--error-every K] [--no-metrics]`; several workers share the port with SO_REUSEPORT.
`LatencyServer(...)` starts that in a subprocess (so the server never shares the client's event
loop or GIL) and reads the records back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[2]
STRIDE = 37
_SEQ = re.compile(r"(\d+)$")


def lognormal_cycle(median_ms: float = 100.0, sigma: float = 0.5, n: int = 100) -> list[float]:
    """The n quantiles (i + 0.5)/n of a lognormal with this median and sigma, in milliseconds."""
    dist = statistics.NormalDist()
    return [median_ms * math.exp(sigma * dist.inv_cdf((i + 0.5) / n)) for i in range(n)]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (the definition `taskc.bench` and `taskc eval` use)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cycle_percentile(delays_ms: Sequence[float], q: float) -> float:
    """The true percentile of the delay cycle (exact for any whole number of cycles)."""
    return percentile(delays_ms, q)


def request_number(request_id: str | None) -> int | None:
    """n of an id ending in digits (`taskc-bench-ab12-41` -> 41)."""
    if not request_id:
        return None
    m = _SEQ.search(request_id)
    return int(m.group(1)) if m else None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required", 500: "Internal Server Error"}


def _head(status: int, content_type: str, length: int | None) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n{size}"
            f"Connection: keep-alive\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: requests parsed as they arrive (Content-Length bodies),
    answered in order."""

    def __init__(self, worker: "_Worker") -> None:
        self.worker = worker
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.last: asyncio.Future | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.worker.connections += 1

    def connection_lost(self, exc) -> None:  # type: ignore[override]
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, path = (lines[0].split(" ") + ["", ""])[:2]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):
                self.write(_head(411, "text/plain", 0))
                return
            size = int(headers.get("content-length") or 0)
            if len(self.buf) < end + 4 + size:
                return
            body = bytes(self.buf[end + 4:end + 4 + size])
            del self.buf[:end + 4 + size]
            t_in = time.monotonic()
            self.last = asyncio.ensure_future(self.worker.serve(self, method, path.split("?")[0], headers, body, t_in, self.last))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class _Worker:
    """One server process's state and request handling."""

    def __init__(self, delays_ms: Sequence[float], capacity: int, answer: str, echo: bool, first_token_frac: float,
                 error_every: int, metrics: bool, record_dir: Path | None) -> None:
        self.delays = [d / 1000.0 for d in delays_ms]
        self.capacity = capacity
        self.answer = answer
        self.echo = echo
        self.first_token_frac = first_token_frac
        self.error_every = error_every
        self.metrics = metrics
        self.record_path = record_dir / f"worker-{os.getpid()}.jsonl" if record_dir else None
        self.pending: list[list[Any]] = []
        self.arrivals = 0
        self.served = 0
        self.in_service = 0
        self.connections = 0
        self.sem: asyncio.Semaphore | None = None

    async def run(self, port: int, ready) -> None:
        """Serve on 127.0.0.1:port (SO_REUSEPORT) until SIGTERM/SIGINT; flush the records at the end."""
        import signal

        loop = asyncio.get_running_loop()
        self.sem = asyncio.Semaphore(self.capacity)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", port, reuse_port=True, backlog=4096)
        flusher = loop.create_task(self._flush_loop())
        ready()
        try:
            await stop.wait()
        finally:
            flusher.cancel()
            server.close()
            self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self.flush()

    def flush(self) -> None:
        if self.record_path is None or not self.pending:
            self.pending.clear()
            return
        lines, self.pending = self.pending, []
        with open(self.record_path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in lines))

    async def serve(self, conn: _Connection, method: str, path: str, headers: dict[str, str], body: bytes,
                    t_in: float, previous: asyncio.Future | None) -> None:
        """Answer one request; its response is written after the previous one on the connection."""
        if method == "POST" and path == "/v1/chat/completions":
            await self.chat(conn, headers, body, t_in, previous)
            return
        if previous is not None:
            await asyncio.wait([previous])
        if method == "GET" and path == "/metrics" and self.metrics:
            payload = self.prometheus().encode()
            conn.write(_head(200, "text/plain; version=0.0.4; charset=utf-8", len(payload)) + payload)
        elif method == "GET" and path == "/health":
            payload = json.dumps({"pid": os.getpid(), "served": self.served, "connections": self.connections}).encode()
            conn.write(_head(200, "application/json", len(payload)) + payload)
        else:
            conn.write(_head(404, "text/plain", 9) + b"Not Found")

    def prometheus(self) -> str:
        labels = '{engine="0",model_name="fake"}'
        return (
            "# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.\n"
            "# TYPE vllm:prefix_cache_queries_total counter\n"
            f"vllm:prefix_cache_queries_total{labels} {float(self.served * 100)}\n"
            "# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.\n"
            "# TYPE vllm:prefix_cache_hits_total counter\n"
            f"vllm:prefix_cache_hits_total{labels} {float(self.served * 75)}\n"
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\n"
            f"vllm:kv_cache_usage_perc{labels} {self.in_service / self.capacity}\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            f"process_resident_memory_bytes {float(_rss_bytes())}\n"
        )

    async def chat(self, conn: _Connection, headers: dict[str, str], raw: bytes, t_in: float,
                   previous: asyncio.Future | None) -> None:
        from tests.fakes.provider_server import last_user, openai_body

        rid = headers.get("x-request-id")
        n = request_number(rid)
        self.arrivals += 1
        if n is None:
            n = self.arrivals - 1
        delay = self.delays[(n * STRIDE) % len(self.delays)]
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            if previous is not None:
                await asyncio.wait([previous])
            payload = b'{"error":{"message":"bad request","type":"invalid_request_error"}}'
            conn.write(_head(400, "application/json", len(payload)) + payload)
            return
        answer = last_user(body) if self.echo else self.answer
        failing = self.error_every > 0 and n % self.error_every == 0
        stream = bool(body.get("stream")) and not failing
        assert self.sem is not None
        async with self.sem:
            t_start = time.monotonic()
            self.in_service += 1
            try:
                if stream:
                    await self._stream(conn, body, answer, n, rid, t_in, t_start, delay, previous)
                    return
                if failing:
                    status = 500
                    payload = b'{"error":{"message":"scripted failure","type":"server_error","code":null}}'
                else:
                    status = 200
                    payload = json.dumps(openai_body(body, answer, n)).encode()
                await asyncio.sleep(max(0.0, t_start + delay - time.monotonic()))
                if previous is not None:
                    await asyncio.wait([previous])
                # t_out is taken before the response is written, so a client can never see it earlier
                self.pending.append([rid, t_in, t_start, None, time.monotonic(), delay, status])
                self.served += 1
                conn.write(_head(status, "application/json", len(payload)) + payload)
            finally:
                self.in_service -= 1

    async def _stream(self, conn: _Connection, body, answer, n, rid, t_in, t_start, delay, previous) -> None:
        from tests.fakes.provider_server import openai_body

        full = openai_body(body, answer, n)
        text = full["choices"][0]["message"]["content"] or ""
        base = {"id": full["id"], "object": "chat.completion.chunk", "created": full["created"], "model": full["model"]}

        def chunk(value: Any) -> bytes:
            data = b"data: " + json.dumps(value).encode() + b"\n\n"
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        if previous is not None:
            await asyncio.wait([previous])
        conn.write(_head(200, "text/event-stream", None))
        await asyncio.sleep(max(0.0, t_start + delay * self.first_token_frac - time.monotonic()))
        t_first = time.monotonic()  # before the write: a client cannot see the token earlier
        conn.write(chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text[:1]},
                                               "logprobs": None, "finish_reason": None}]}))
        await asyncio.sleep(max(0.0, t_start + delay - time.monotonic()))
        tail = chunk({**base, "choices": [{"index": 0, "delta": {"content": text[1:]}, "logprobs": None,
                                           "finish_reason": full["choices"][0]["finish_reason"]}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            tail += chunk({**base, "choices": [], "usage": full["usage"]})
        done = b"data: [DONE]\n\n"
        tail += f"{len(done):x}\r\n".encode() + done + b"\r\n" + b"0\r\n\r\n"
        self.pending.append([rid, t_in, t_start, t_first, time.monotonic(), delay, 200])
        self.served += 1
        conn.write(tail)


def serve(args: argparse.Namespace) -> None:
    """Run one worker in the foreground (uvloop when installed)."""
    try:
        import uvloop  # type: ignore[import-not-found]

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    delays = [float(x) for x in args.delays_ms.split(",")] if args.delays_ms else lognormal_cycle(args.median_ms, args.sigma)
    record_dir = Path(args.record_dir) if args.record_dir else None
    import tests.fakes.provider_server  # noqa: F401  (imports aiohttp: do it now, not on the first request)

    worker = _Worker(delays, args.capacity, args.answer, args.echo, args.first_token_frac, args.error_every,
                     not args.no_metrics, record_dir)

    def ready() -> None:
        if record_dir is not None:
            (record_dir / f"ready-{os.getpid()}").write_text("")
        print(f"latency server pid {os.getpid()} on port {args.port}", flush=True)

    asyncio.run(worker.run(args.port, ready))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--capacity", type=int, default=100_000)
    parser.add_argument("--median-ms", type=float, default=100.0)
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--delays-ms", default="", help="comma-separated delay cycle (overrides the lognormal)")
    parser.add_argument("--first-token-frac", type=float, default=0.3)
    parser.add_argument("--answer", default="ok")
    parser.add_argument("--echo", action="store_true", help="answer with the last user message")
    parser.add_argument("--error-every", type=int, default=0)
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument("--record-dir", default="")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Serve; `--workers N` starts N-1 more processes on the same port (SO_REUSEPORT)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    children: list[subprocess.Popen] = []
    if args.workers > 1:
        child_argv = [a for a in argv]
        i = child_argv.index("--workers")
        del child_argv[i:i + 2]
        children = [subprocess.Popen([sys.executable, "-m", "tests.fakes.latency_server", *child_argv], cwd=ROOT)
                    for _ in range(args.workers - 1)]
    try:
        serve(args)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LatencyServer:
    """The server in a subprocess (`workers` processes on one port), its records read back.

        with LatencyServer(capacity=64, median_ms=100) as server:
            server.base_url                      # http://127.0.0.1:P/v1
            ... run load ...
            server.records(prefix="taskc-bench-1a2b")   # {request_id: record}
    """

    def __init__(self, workers: int = 1, delays_ms: Sequence[float] | None = None, capacity: int = 100_000,
                 median_ms: float = 100.0, sigma: float = 0.5, answer: str = "ok", echo: bool = False,
                 first_token_frac: float = 0.3, error_every: int = 0, metrics: bool = True, cycle: int = 100) -> None:
        self.workers = workers
        self.delays_ms = list(delays_ms) if delays_ms is not None else lognormal_cycle(median_ms, sigma, cycle)
        self.capacity = capacity
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="latency-server-")
        self.record_dir = Path(self._dir.name)
        self._args = ["--port", str(self.port), "--workers", str(workers), "--capacity", str(capacity),
                      "--delays-ms", ",".join(repr(d) for d in self.delays_ms), "--answer", answer,
                      "--first-token-frac", str(first_token_frac), "--error-every", str(error_every),
                      "--record-dir", str(self.record_dir)] + (["--echo"] if echo else []) + ([] if metrics else ["--no-metrics"])
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def true_percentile_ms(self, q: float) -> float:
        """The delay cycle's percentile (the truth when under capacity)."""
        return cycle_percentile(self.delays_ms, q)

    def start(self, timeout_s: float = 60.0) -> "LatencyServer":
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.latency_server", *self._args], cwd=ROOT,
                                     env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the latency server exited with {self.proc.returncode}")
            if len(list(self.record_dir.glob("ready-*"))) >= self.workers:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the latency server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def records(self, prefix: str = "", settle_s: float = 0.35) -> dict[str, dict[str, Any]]:
        """Every recorded request whose id starts with `prefix`, by id (waits one flush first)."""
        if self.proc is not None:
            time.sleep(settle_s)
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(self.record_dir.glob("worker-*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line:
                    continue
                rid, t_in, t_start, t_first, t_out, delay, status = json.loads(line)
                if rid is not None and rid.startswith(prefix):
                    out[rid] = {"t_in": t_in, "t_start": t_start, "t_first": t_first, "t_out": t_out,
                                "delay": delay, "status": status}
        return out

    def __enter__(self) -> "LatencyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()


def latencies_ms(records: Iterable[dict[str, Any]]) -> list[float]:
    """Server-side queue + service time of each record, in milliseconds."""
    return [(r["t_out"] - r["t_in"]) * 1000.0 for r in records]


if __name__ == "__main__":
    main()
