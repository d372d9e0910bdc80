"""A scoring worker of `taskc.metrics.sql_pool`: `python -m taskc.metrics.sql_worker IN OUT`.

Reads pickled messages from file descriptor IN and writes replies to OUT (its stdin and
stdout are not used, so nothing printed can garble the protocol):

- `("init", metric_name, options)`: build the metric (options without a budget);
- `("tasks", [(database, prediction, gold), ...])`: score each with `metric.score_prepared`
  and reply `("done", [(value, detail), ...])` in the order the tasks came (replies are
  grouped while more tasks wait, for at most `HOLD_S`).

A watchdog thread holds each query's limits (CPU time of the main thread and wall time, armed
through `sql_exec.set_query_hook`, in process, at no IPC cost). SQLite runs without the GIL,
so the watchdog runs even while one long C call (`printf('%.*c', 2e9, 'x')`) never returns:
`GRACE_S` past a limit it sends `("killed", detail)` and ends the process; the pool starts a
fresh one.

The address space is capped (`MEMORY_LIMIT`) so that a hostile query fails with "out of
memory" instead of taking the machine; rows are streamed and SQLite sorts spill to its
temporary files, so a correct answer needs little memory here. The worker exits at end of
input.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection

MEMORY_LIMIT = 4 << 30
GRACE_S = 0.5
HOLD_S = 0.005


def _cap_memory() -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    if soft == resource.RLIM_INFINITY or soft > cap:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        except (ValueError, OSError):
            pass


class Replies:
    """Scores not yet sent, grouped while more tasks wait; thread-safe with the watchdog."""

    def __init__(self, outbox: Connection):
        self._outbox = outbox
        self._lock = threading.Lock()
        self._held: list[tuple[float, dict]] = []
        self._since = 0.0

    def add(self, value: float, detail: dict, more_waiting: bool) -> None:
        """Hold a score; send the group unless more tasks wait and it is young."""
        with self._lock:
            now = time.monotonic()
            if not self._held:
                self._since = now
            self._held.append((value, detail))
            if not more_waiting or now - self._since >= HOLD_S:
                self._outbox.send(("done", self._held))
                self._held = []

    def last_words(self, detail: dict) -> None:
        """Send what is held, then the detail of the task that is stuck (never returns)."""
        with self._lock:
            try:
                if self._held:
                    self._outbox.send(("done", self._held))
                self._outbox.send(("killed", detail))
            finally:
                os._exit(3)


class Watchdog:
    """Ends the process when a query outlives its CPU or wall limit by `GRACE_S`.

    Armed from the main thread (the one running SQLite), it reads that thread's CPU clock."""

    def __init__(self, replies: Replies):
        self._replies = replies
        self._cond = threading.Condition()
        self._ends: tuple[float, float] | None = None  # (main thread CPU, wall)
        self._detail: dict | None = None
        self._idle = True  # waiting with no deadline: an arm must wake it
        try:
            self._cpu_clock = time.pthread_getcpuclockid(threading.main_thread().ident)
        except (AttributeError, OSError):  # pragma: no cover - not on Linux
            self._cpu_clock = None
        threading.Thread(target=self._watch, name="sql-watchdog", daemon=True).start()

    def _cpu(self) -> float:
        return time.clock_gettime(self._cpu_clock) if self._cpu_clock is not None else 0.0

    def arm(self, left: tuple[float, float] | None, detail: dict | None) -> None:
        """The hook of `sql_exec.set_query_hook` (called from the main thread)."""
        with self._cond:
            if left is None:
                self._ends = None
                return
            if detail is not None:
                self._detail = detail
            cpu = self._cpu() + left[0] + GRACE_S if self._cpu_clock is not None else float("inf")
            self._ends = (cpu, time.monotonic() + left[1] + GRACE_S)
            if self._idle:
                self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while True:
                if self._ends is None:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                    continue
                # one thread's CPU clock never runs faster than the wall clock
                delay = min(self._ends[0] - self._cpu(), self._ends[1] - time.monotonic())
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                self._replies.last_words(self._detail or {"reason": "timeout"})


def main(argv: list[str]) -> int:
    """Serve tasks until end of input."""
    inbox = Connection(int(argv[0]), writable=False)
    outbox = Connection(int(argv[1]), readable=False)
    _cap_memory()
    from taskc.metrics import get_metric
    from taskc.metrics.sql_exec import set_query_hook

    replies = Replies(outbox)
    set_query_hook(Watchdog(replies).arm)
    metric = None
    queue: deque = deque()
    while True:
        if not queue:
            try:
                msg = inbox.recv()
            except (EOFError, OSError):
                return 0
            if msg[0] == "init":
                metric = get_metric(msg[1])(msg[2])
            else:
                queue.extend(msg[1])
            continue
        try:
            score = metric.score_prepared(*queue.popleft())
            value, detail = score.value, score.detail
        except Exception as exc:  # noqa: BLE001 - one bad sample must not stop the batch
            value, detail = 0.0, {"reason": f"metric error: {type(exc).__name__}: {exc}"}
        try:
            replies.add(value, detail, bool(queue))
        except OSError:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
