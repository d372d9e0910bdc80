"""`taskc view [RUNS_DIR] [--port P] [--host 127.0.0.1]`: serve the viewer until Ctrl-C."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Sequence

from taskc.common.endpoints import is_loopback_host
from taskc.errors import TaskcError

INSTALL_HINT = "pip install 'taskc[view]'"


def _require() -> None:
    """Starlette, uvicorn and numpy, or a TaskcError saying how to install them."""
    missing = []
    for module in ("starlette", "uvicorn", "numpy", "orjson"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise TaskcError(f"taskc view needs {', '.join(missing)}: {INSTALL_HINT}")


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (the one rule, `taskc.common.endpoints`)."""
    return is_loopback_host(host)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); TaskcError when the address cannot be used."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TaskcError(f"cannot use host '{host}': {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise TaskcError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class BackgroundServer:
    """The viewer served from a thread of this process (tests, benchmarks); `close()` stops it."""

    def __init__(self, viewer, host: str = "127.0.0.1", port: int = 0):
        import threading
        import time

        import uvicorn

        from taskc.view.app import create_app

        self.viewer = viewer
        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        app = create_app(viewer, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"] if is_loopback(host) else None)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        """Stop serving and close the socket."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        self.viewer.store.close()


def view_command(runs_dir: Path, *, host: str = "127.0.0.1", port: int = 8765, specs: Sequence[Path] = ()) -> int:
    """Serve the viewer over `runs_dir` on host:port until interrupted; 0 on a clean stop.
    `specs`: spec files or folders to look for gold in (default: specs/ and . here and beside the runs)."""
    _require()
    import uvicorn

    from taskc.view.app import create_app
    from taskc.view.contracts import default_search
    from taskc.view.service import Viewer

    viewer = Viewer(Path(runs_dir), default_search(Path(runs_dir), Path.cwd(), specs))
    listing = viewer.store.listing()
    sock = bind(host, port)
    shown_host = sock.getsockname()[0]
    actual = sock.getsockname()[1]
    url_host = f"[{shown_host}]" if ":" in shown_host else shown_host
    loopback = is_loopback(host)
    allowed = ["127.0.0.1", "localhost", "[::1]", "::1"] if loopback else None
    app = create_app(viewer, allowed_hosts=allowed)
    viewer.warm()
    print(f"taskc view: {len(listing.runs)} runs in {len(listing.groups)} groups under {viewer.store.root}", flush=True)
    if not loopback:
        print(f"warning: listening on {host}: anyone who can reach this machine can read these runs", file=sys.stderr)
    print(f"serving http://{url_host}:{actual}/ (Ctrl-C to stop)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, date_header=False,
                            lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        viewer.store.close()
    return 0
