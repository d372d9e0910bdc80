"""Backends against real vLLM: the in-process `vllm` backend, and the `openai` (mode vllm) and
`anthropic` backends against one vLLM server, each evaluating banking77 (label) and
git_assistant (tool_call), 30 rows, through `taskc.evaluate.run.evaluate` with the tiny model
(local models run greedy). Every output must be valid, no request may fail, and no request body
may carry a removed vLLM ``guided_*`` field."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = [pytest.mark.vllm,
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]

ROWS = 30
SPECS = ["banking77", "git_assistant"]
ALL_SPECS = ["banking77", "git_assistant", "pii_redaction", "text2sql"]


def guided_keys(value: Any, path: str = "") -> list[str]:
    """Every key starting with ``guided_`` anywhere in a JSON-like value, as paths."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).startswith("guided_"):
                found.append(f"{path}/{key}")
            found += guided_keys(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += guided_keys(item, f"{path}/{i}")
    return found


@pytest.fixture
def sent_bodies(monkeypatch):
    """Every (url, body) any backend POSTs through the runner's JsonClient during the test."""
    from taskc.runner.http import JsonClient

    sent: list[tuple[str, Any]] = []
    original = JsonClient.post_json

    async def recording(self, url, payload, headers=None):
        sent.append((url, payload))
        return await original(self, url, payload, headers)

    monkeypatch.setattr(JsonClient, "post_json", recording)
    return sent


def _evaluate(contract, config, tmp_path):
    from taskc.evaluate.run import EvalOptions, evaluate

    options = EvalOptions(limit=ROWS, use_cache=False, out=tmp_path / "runs", progress=False,
                          concurrency=16, timeout_s=300, max_attempts=2)
    return evaluate(contract, config, options)


def _check(summary, label: str) -> None:
    print(f"\n{label}: n={summary['n']} invalid={summary['invalid']} errors={summary['errors']} "
          f"wall={summary['wall_s']:.1f}s metrics={ {k: v['mean'] for k, v in summary['metrics'].items()} }")
    assert summary["n"] == ROWS
    assert summary["errors"] == 0, summary["first_errors"]
    assert summary["invalid"] == 0, summary["warnings"]
    assert summary["constraint_sent"] is True


@pytest.mark.parametrize("spec", SPECS)
def test_vllm_backend_evaluates_valid(spec, vllm_engine, tiny_model, contracts, tmp_path, monkeypatch):
    import taskc.evaluate.preflight as preflight
    from taskc.backends.vllm_local import VLLMBackend
    from taskc.backends.config import ModelConfig

    contract = contracts(spec)
    made: list[VLLMBackend] = []
    original = preflight.make_backend

    def make_backend(config, contract):  # the real construction, then the session's engine
        backend = original(config, contract)
        assert isinstance(backend, VLLMBackend)
        assert backend.structured_outputs_config == contract.body["engine"]["structured_outputs_config"]
        backend._llm, backend._owns_llm = vllm_engine, False
        made.append(backend)
        return backend

    monkeypatch.setattr(preflight, "make_backend", make_backend)
    config = ModelConfig(name="tiny-vllm", backend="vllm", model=str(tiny_model),
                         engine_args={"max_model_len": 4096, "dtype": "float32"})
    summary = _evaluate(contract, config, tmp_path)
    _check(summary, f"vllm/{spec}")
    assert made and made[0].engine_args == {"max_model_len": 4096, "dtype": "float32"}
    for r in contract.requests(limit=ROWS):
        body = made[0].render(r)
        assert guided_keys(body) == []
        assert "structured_outputs" in body


@pytest.mark.parametrize("spec", SPECS)
def test_openai_backend_against_vllm_server(spec, vllm_server, contracts, tmp_path, sent_bodies):
    from taskc.backends.config import ModelConfig

    config = ModelConfig(name="tiny-openai", backend="openai", model=vllm_server.model,
                         base_url=vllm_server.openai_url, mode="vllm")
    summary = _evaluate(contracts(spec), config, tmp_path)
    _check(summary, f"openai/{spec}")
    assert len(sent_bodies) == ROWS
    for url, body in sent_bodies:
        assert url.endswith("/v1/chat/completions")
        assert guided_keys(body) == []
        assert "structured_outputs" in body


@pytest.mark.parametrize("spec", SPECS)
def test_anthropic_backend_against_vllm_server(spec, vllm_server, contracts, tmp_path, sent_bodies):
    from taskc.backends.config import ModelConfig

    config = ModelConfig(name="tiny-anthropic", backend="anthropic", model=vllm_server.model,
                         base_url=vllm_server.base_url)
    summary = _evaluate(contracts(spec), config, tmp_path)
    _check(summary, f"anthropic/{spec}")
    assert len(sent_bodies) == ROWS
    for url, body in sent_bodies:
        assert url.endswith("/v1/messages")
        assert guided_keys(body) == []
        assert ("tool_choice" in body) if spec == "git_assistant" else ("output_config" in body)


def test_no_body_has_guided_fields(vllm_server, contracts, sent_bodies):
    """Every backend's payload for every output kind is free of ``guided_*``; what the openai
    backend actually sends for an object and a SQL task is too, and the server answers it
    within the contract."""
    from taskc.backends import get_backend
    from taskc.backends.vllm_local import VLLMBackend
    from taskc.evaluate.validate import parse_output
    from taskc.runner.engine import run_requests

    backends = [
        VLLMBackend(model="tiny-qwen3"),
        get_backend("openai", model=vllm_server.model, base_url=vllm_server.openai_url, mode="vllm"),
        get_backend("anthropic", model=vllm_server.model, base_url=vllm_server.base_url),
    ]
    for spec in ALL_SPECS:
        requests = contracts(spec).requests(limit=8)
        for backend in backends:
            for r in requests:
                assert guided_keys(backend.render(r)) == [], (backend.name, spec)

    openai = backends[1]
    for spec in ("pii_redaction", "text2sql"):
        contract = contracts(spec)
        requests = contract.requests(limit=4, generation={"temperature": 0.0})
        results = asyncio.run(run_requests(openai, requests, concurrency=4, progress=False, timeout_s=300))
        assert [r.error for r in results if r.error] == []
        for r in results:
            assert parse_output(contract.body["output"], contract.body["validate_schema"], r.raw).valid, r.raw
    assert len(sent_bodies) == 8
    for _, body in sent_bodies:
        assert guided_keys(body) == []
        assert "structured_outputs" in body
