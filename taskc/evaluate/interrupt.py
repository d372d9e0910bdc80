"""Ctrl-C during a run: the first stops sending and lets the run write what it has; the second
exits at once.

The handler is a plain `signal.signal` one, not the event loop's: it runs between bytecodes of
the main thread, so it is honoured while an in-process engine (vLLM, the baseline) computes in
the loop's thread, where a loop signal handler would wait for the computation to end.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


@contextmanager
def interruptible(note: str = "interrupted: finishing the requests in flight, then writing what is done "
                                "(Ctrl-C again to quit at once)") -> Iterator[threading.Event]:
    """An event set by the first SIGINT inside the block (which prints `note`); a second SIGINT
    ends the process at once with exit code 130. Outside the main thread nothing is installed."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigint(signum, frame) -> None:
        if stop.is_set():
            os.write(2, b"\ninterrupted again: quitting now\n")
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        print(f"\n{note}", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
