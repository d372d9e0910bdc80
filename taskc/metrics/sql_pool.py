"""Score SQL predictions across worker processes, each bounded in time.

`run_pool(metric_name, options, tasks, jobs)` starts `jobs` workers (`python -m
taskc.metrics.sql_worker`, each with its own read-only sandboxed connections and gold cache),
keeps up to `DEPTH` tasks queued on each, and returns `(value, detail)` per task in task order.
A query past its limit is interrupted by the worker's progress handler; a worker stuck inside
one SQLite call is ended by its own watchdog, which first names the task's detail (e.g.
`{"reason": "timeout", "timeout_s": 2.0}`); the pool then gives that task this detail, starts
a fresh worker and hands it the tasks that were queued behind. A worker that dies otherwise
scores its current task 0 with "metric error: sql worker exited with code N". With a budget,
whatever has not finished when it is spent scores `budget_reason`.

Workers are plain subprocesses over two pipes (no multiprocessing start method, so any caller,
from any thread or a script without a `__main__` guard, can use the pool).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path

DEPTH = 4  # tasks in flight per worker: hides the round trip to the parent ...
FAST_S = 0.01  # ... reached only while tasks finish faster than this (one at a time if slower,
#               so that a slow task never holds others back while another worker idles)
_ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds the taskc package


def default_jobs() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Worker:
    """One worker process, its pipes, and the tasks it holds (oldest first)."""

    def __init__(self, metric_name: str, options: dict):
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        try:
            self.proc = subprocess.Popen(
                # -S: the worker needs only the standard library and taskc (on PYTHONPATH);
                # skipping site-packages halves its start-up
                [sys.executable, "-S", "-m", "taskc.metrics.sql_worker", str(p2c_r), str(c2p_w)],
                pass_fds=(p2c_r, c2p_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                env=env)
        except BaseException:
            for fd in (p2c_r, p2c_w, c2p_r, c2p_w):
                os.close(fd)
            raise
        os.close(p2c_r)
        os.close(c2p_w)
        self.inbox = Connection(c2p_r, writable=False)
        self.outbox = Connection(p2c_w, readable=False)
        self.held: deque[int] = deque()
        self.depth = 1
        self.since = 0.0  # when the oldest held task started (about)
        self.killed: dict | None = None  # what its watchdog said before ending it
        self.outbox.send(("init", metric_name, options))

    def close(self, kill: bool = False) -> None:
        """Close the pipes (the worker exits at end of input) and reap the process."""
        if kill and self.proc.poll() is None:
            self.proc.kill()
        for conn in (self.outbox, self.inbox):
            try:
                conn.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _drain(w: _Worker, results: list) -> bool:
    """Take in every reply the worker has sent; False when it has gone."""
    try:
        while w.inbox.poll():
            msg = w.inbox.recv()
            if msg[0] == "done":  # ("done", [(value, detail), ...]) for the oldest held
                now = time.monotonic()
                fast = now - w.since < FAST_S * len(msg[1])
                for value, detail in msg[1]:
                    results[w.held.popleft()] = (value, detail)
                w.depth = min(DEPTH, w.depth + len(msg[1])) if fast else 1
                w.since = now
            else:  # ("killed", detail): the watchdog ends the process right after
                w.killed = msg[1]
    except (EOFError, OSError):
        return False
    return True


def run_pool(metric_name: str, options: dict, tasks: list[tuple[str, str, str]], jobs: int,
             budget_s: float | None = None,
             budget_reason: dict | None = None) -> list[tuple[float, dict]]:
    """`(value, detail)` for each `(database, prediction, gold)` task, in order, scored by
    `get_metric(metric_name)(options).score_prepared` in `jobs` worker processes."""
    results: list[tuple[float, dict] | None] = [None] * len(tasks)
    pending = deque(range(len(tasks)))
    end = None if budget_s is None else time.monotonic() + budget_s
    workers = [_Worker(metric_name, options) for _ in range(min(jobs, len(tasks)))]
    try:
        while pending or any(w.held for w in workers):
            given: dict[int, list[int]] = {}
            for level in range(1, DEPTH + 1):  # round-robin, so that tasks spread evenly
                for i, w in enumerate(workers):
                    if pending and len(w.held) + len(given.get(i, ())) < min(level, w.depth):
                        given.setdefault(i, []).append(pending.popleft())
            for i, indices in given.items():
                _give(workers[i], indices, tasks)
            timeout = None if end is None else max(0.0, end - time.monotonic())
            for conn in wait([w.inbox for w in workers if w.held], timeout):
                w = next(x for x in workers if x.inbox is conn)
                if not _drain(w, results):
                    _retire(w, workers, results, pending, metric_name, options)
            if end is not None and time.monotonic() >= end:
                for w in workers:  # what has finished by now keeps its score
                    _drain(w, results)
                left = [i for w in workers for i in w.held] + list(pending)
                for index in left:
                    results[index] = (0.0, budget_reason or {"reason": "timeout"})
                break
    finally:
        for w in workers:
            w.close(kill=True)
    return results  # type: ignore[return-value]


def _give(w: _Worker, indices: list[int], tasks: list) -> None:
    if not w.held:
        w.since = time.monotonic()
    w.held.extend(indices)
    try:
        w.outbox.send(("tasks", [tasks[i] for i in indices]))
    except OSError:  # it has died: its end of input tells the loop, which retires it
        pass


def _retire(w: _Worker, workers: list[_Worker], results: list, pending: deque,
            metric_name: str, options: dict) -> None:
    """A worker has gone: score its current task, requeue the rest, start a fresh one."""
    w.close(kill=True)
    if w.held:
        index = w.held.popleft()
        if w.killed is not None:
            results[index] = (0.0, w.killed)
        else:
            results[index] = (0.0, {"reason": "metric error: sql worker exited with code "
                                              f"{w.proc.returncode}"})
        pending.extendleft(reversed(w.held))
    i = workers.index(w)
    if pending:
        workers[i] = _Worker(metric_name, options)
    else:
        del workers[i]
