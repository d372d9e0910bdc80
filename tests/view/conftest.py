"""Fixtures of the viewer tests: runs made once per session by `taskc eval`, and a live viewer
(uvicorn in a thread, real HTTP on 127.0.0.1) over a runs folder."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from tests.view import workspace

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="session")
def made(tmp_path_factory) -> tuple[Path, dict[str, dict[str, Path]]]:
    """(workspace root, {task: {model: run folder}}): specs/ and runs/ made by taskc eval."""
    root = tmp_path_factory.mktemp("view")
    return root, workspace.build(root)


class Live:
    """A viewer served over real HTTP from a thread of this process (stopped by `close`)."""

    def __init__(self, runs: Path, specs: list[Path]):
        from taskc.view.cli import BackgroundServer
        from taskc.view.contracts import default_search
        from taskc.view.service import Viewer

        self.viewer = Viewer(runs, default_search(runs, Path.cwd(), specs))
        self.background = BackgroundServer(self.viewer)
        self.port = self.background.port

    def raw(self, path: str, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
        """GET `path` exactly as written (no normalization); (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"{host}:{self.port}")
            conn.endheaders()
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def json(self, path: str, status: int = 200):
        code, _, body = self.raw(path)
        assert code == status, (code, body[:500])
        return json.loads(body)

    def close(self) -> None:
        self.background.close()


@pytest.fixture(scope="module")
def live(made):
    """A viewer over the session's runs, gold from its specs/."""
    root, _ = made
    server = Live(root / "runs", [root / "specs"])
    yield server
    server.close()


def group_id(live: Live, task: str) -> str:
    """The id of the (only) group of `task`."""
    (found,) = [g["id"] for g in live.json("/api/index")["groups"] if g["task"] == task]
    return found
