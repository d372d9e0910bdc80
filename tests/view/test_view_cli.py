"""The `taskc view` command: clear errors for a missing extra, a missing folder, a busy port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from taskc.view.cli import is_loopback


def _taskc(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"{prelude}\nimport sys\nsys.argv = ['taskc', *{list(args)!r}]\nfrom taskc.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_missing_extra_says_what_to_install(tmp_path: Path):
    done = _taskc("view", str(tmp_path), prelude="import sys; sys.modules['starlette'] = None")
    assert done.returncode == 2
    assert done.stderr == "error: taskc view needs starlette: pip install 'taskc[view]'\n"
    assert "Traceback" not in done.stdout + done.stderr


def test_missing_runs_folder(tmp_path: Path):
    done = _taskc("view", str(tmp_path / "nope"), "--port", "0")
    assert (done.returncode, done.stderr) == (2, f"error: no such runs folder: {tmp_path / 'nope'}\n")


def test_busy_port(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = _taskc("view", str(tmp_path), "--port", str(port))
    assert done.returncode == 2
    assert done.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_loopback_names():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org"))
