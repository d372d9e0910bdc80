"""The `vllm` backend without an engine: payloads, settings, batching and failure isolation
(a stand-in `llm` object records the `chat` calls)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from taskc.constraints.ir import Constraint
from taskc.runner.types import Request

pytestmark = [pytest.mark.vllm,
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]


def _request(i: int, constraint=None, kind="label", generation=None, tools=(), content=None) -> Request:
    return Request(index=i, repeat=0, messages=({"role": "system", "content": "sys"},
                                                {"role": "user", "content": content or f"row {i}"}),
                   constraint=constraint, output_kind=kind,
                   generation=generation or {"temperature": 0.0, "max_tokens": 8}, messages_hash=str(i), tools=tools)


class FakeLLM:
    """Answers `chat` like vllm.LLM: one RequestOutput-like object per conversation, in order.
    A conversation whose user turn says "bad" makes the whole call raise (as vLLM does for one
    invalid request)."""

    def __init__(self, dead: bool = False) -> None:
        self.calls: list[tuple[int, dict]] = []
        self.dead = dead

    def chat(self, conversations, sampling_params=None, use_tqdm=True, chat_template_kwargs=None):
        self.calls.append((len(conversations), {"use_tqdm": use_tqdm, "chat_template_kwargs": chat_template_kwargs}))
        assert isinstance(sampling_params, list) and len(sampling_params) == len(conversations)
        if self.dead:
            raise type("EngineDeadError", (RuntimeError,), {})("engine died")
        if any(c[-1]["content"] == "bad" for c in conversations):
            raise ValueError("prompt too long")
        return [SimpleNamespace(prompt_token_ids=[1] * (10 + k), num_cached_tokens=0,
                                outputs=[SimpleNamespace(text=f"answer:{c[-1]['content']}", token_ids=[5, 6],
                                                         finish_reason="stop")])
                for k, c in enumerate(conversations)]


def _backend(**kw):
    from taskc.backends.vllm_local import VLLMBackend

    backend = VLLMBackend(model="m", **kw)
    backend._drop_seeds = False  # no platform probe on a stand-in
    return backend


def test_module_import_does_not_import_vllm():
    code = "import sys, taskc.backends.vllm_local; assert 'vllm' not in sys.modules, 'vllm imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_builds_it_with_engine_settings():
    from taskc.backends import get_backend

    backend = get_backend("vllm", model="Qwen/Qwen3-0.6B",
                          engine_args={"tensor_parallel_size": 2, "quantization": "fp8", "max_model_len": 8192},
                          engine_settings={"structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True}})
    assert backend.batched and backend.constrained and backend.name == "vllm"
    assert backend.engine_kwargs() == {
        "model": "Qwen/Qwen3-0.6B", "tensor_parallel_size": 2, "quantization": "fp8", "max_model_len": 8192,
        "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
    }
    assert backend._llm is None  # built lazily, on the first generate


def test_engine_args_may_refine_the_structured_outputs_config():
    backend = _backend(engine_args={"structured_outputs_config": {"backend": "guidance"}},
                       engine_settings={"structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True}})
    assert backend.engine_kwargs()["structured_outputs_config"] == {"backend": "guidance", "disable_any_whitespace": True}


def test_render_is_the_payload_and_never_guided():
    backend = _backend()
    gen = {"temperature": 0.7, "top_p": 0.9, "top_k": -1, "max_tokens": 32, "seed": 3, "stop": "\n\n", "reasoning_effort": "low"}
    cases = [
        (Constraint("choice", choices=("a", "b")), "label", {"choice": ["a", "b"]}),
        (Constraint.json({"type": "object"}), "object", {"json": {"type": "object"}}),
        (Constraint("regex", pattern="[0-9]+"), "text", {"regex": "[0-9]+"}),
        (Constraint("grammar", grammar="start: \"x\""), "sql", {"grammar": "start: \"x\""}),
    ]
    for constraint, kind, expected in cases:
        body = backend.render(_request(0, constraint, kind, gen))
        assert body == {
            "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "row 0"}],
            "sampling_params": {"temperature": 0.7, "top_p": 0.9, "top_k": -1, "max_tokens": 32, "seed": 3, "stop": ["\n\n"]},
            "structured_outputs": expected,
            "chat_template_kwargs": {"enable_thinking": False},
        }
        assert "guided_" not in json.dumps(body)
    assert "structured_outputs" not in backend.render(_request(0, None, "text"))
    # the constraint is the compiler's (request.constraint): a backend never derives one from the tools
    tool = {"name": "f", "parameters": {"type": "object", "properties": {}}}
    assert "structured_outputs" not in backend.render(_request(0, None, "tool_call", tools=(tool,)))


def test_one_chat_call_for_the_whole_batch():
    from vllm.sampling_params import StructuredOutputsParams

    llm = FakeLLM()
    backend = _backend(llm=llm)
    requests = [_request(i, Constraint("choice", choices=("a",))) for i in range(5)]
    results = asyncio.run(backend.generate(requests, None))
    assert len(llm.calls) == 1 and llm.calls[0][0] == 5
    assert llm.calls[0][1] == {"use_tqdm": False, "chat_template_kwargs": {"enable_thinking": False}}
    assert [r.raw for r in results] == [f"answer:row {i}" for i in range(5)]
    assert [r.index for r in results] == list(range(5))
    assert results[2].usage.input_tokens == 12 and results[2].usage.output_tokens == 2
    assert results[0].extra["batch_size"] == 5 and results[0].extra["finish_reason"] == "stop"
    assert results[0].latency_s == pytest.approx(results[0].extra["batch_wall_s"] / 5)
    params = backend.sampling_params(requests[0])
    assert isinstance(params.structured_outputs, StructuredOutputsParams)
    assert params.structured_outputs.choice == ["a"] and params.max_tokens == 8 and params.temperature == 0.0


def test_a_bad_request_fails_alone():
    llm = FakeLLM()
    backend = _backend(llm=llm)
    requests = [_request(0), _request(1, content="bad"), _request(2)]
    results = asyncio.run(backend.generate(requests, None))
    assert [r.raw for r in results] == ["answer:row 0", None, "answer:row 2"]
    assert results[1].error == "ValueError: prompt too long"
    assert [n for n, _ in llm.calls] == [3, 1, 1, 1]  # the batch, then one call each


def test_a_dead_engine_fails_the_batch_once():
    llm = FakeLLM(dead=True)
    results = asyncio.run(_backend(llm=llm).generate([_request(0), _request(1)], None))
    assert all(r.raw is None and "engine died" in r.error for r in results)
    assert len(llm.calls) == 1


def test_seed_dropped_only_where_it_would_crash_the_cpu_engine():
    backend = _backend(llm=FakeLLM())
    sampled = _request(0, generation={"temperature": 1.0, "seed": 7, "max_tokens": 4})
    greedy = _request(1, generation={"temperature": 0.0, "seed": 7, "max_tokens": 4})
    assert backend.sampling_params(sampled, drop_seed=True).seed is None
    assert backend.sampling_params(sampled, drop_seed=False).seed == 7
    assert backend.sampling_params(greedy, drop_seed=True).seed == 7
    backend._drop_seeds = True
    results = asyncio.run(backend.generate([sampled, greedy], None))
    assert results[0].extra.get("seed_dropped") is True and "seed_dropped" not in results[1].extra
