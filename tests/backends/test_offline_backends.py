"""replay, gold and baseline backends, and lazy loading by name."""

import asyncio
import importlib.util
import json

import pytest

from taskc.backends import BackendUnavailable, backend_names, get_backend, register_backend
from taskc.runner.engine import run_requests
from tests.fakes.requests import make_request


def run(backend, requests):
    return asyncio.run(run_requests(backend, requests, progress=False))


def test_replay_exact_repeat_any_repeat_and_missing(tmp_path):
    path = tmp_path / "predictions.jsonl"
    lines = [
        {"index": 0, "output": "card_lost"},
        {"index": 1, "output": "a", "repeat": 0},
        {"index": 1, "output": "b", "repeat": 1},
        {"index": 3, "output": {"name": "f", "parameters": {"x": 1}}},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    backend = get_backend("replay", path=path)
    requests = [make_request("text", "q", i, repeat=r) for i in range(4) for r in range(2)]
    results = run(backend, requests)
    assert [(r.index, r.repeat, r.raw) for r in results] == [
        (0, 0, "card_lost"), (0, 1, "card_lost"), (1, 0, "a"), (1, 1, "b"),
        (2, 0, None), (2, 1, None), (3, 0, '{"name":"f","parameters":{"x":1}}'), (3, 1, '{"name":"f","parameters":{"x":1}}'),
    ]
    assert results[4].error == "no prediction for row 2"


def test_replay_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"index": 0, "output": "x"}\n{"output": "y"}\n')
    with pytest.raises(BackendUnavailable, match=r"p.jsonl:2"):
        get_backend("replay", path=path)


def test_gold_answers_gold_text():
    backend = get_backend("gold", gold={0: "SELECT 1", 1: {"name": "g", "parameters": {}}})
    results = run(backend, [make_request("sql", "q", 0), make_request("tool_call", "q", 1), make_request("text", "q", 2)])
    assert [r.raw for r in results] == ["SELECT 1", '{"name":"g","parameters":{}}', None]
    assert results[2].error == "no gold answer for row 2"


def test_baseline_nearest_neighbour_with_lowest_index_ties():
    train_texts = ["I lost my card", "I lost my card", "refund my purchase please", "top up failed again"]
    train_outputs = ["card_lost", "duplicate", "refund_request", "top_up_failed"]
    backend = get_backend("baseline", train_texts=train_texts, train_outputs=train_outputs)
    tests = ["where is my lost card", "please refund", "my top up failed", "zzz qqq"]
    results = run(backend, [make_request("label", t, i) for i, t in enumerate(tests)])
    assert [r.raw for r in results] == ["card_lost", "refund_request", "top_up_failed", "card_lost"]
    assert [r.extra["neighbour"] for r in results] == [0, 2, 3, 0]


def test_baseline_uses_the_last_user_message():
    backend = get_backend("baseline", train_texts=["alpha", "beta"], train_outputs=["A", "B"])
    request = make_request("text", "beta")
    few_shot = request.messages[:1] + ({"role": "user", "content": "alpha"}, {"role": "assistant", "content": "A"}) + request.messages[1:]
    from dataclasses import replace

    [result] = run(backend, [replace(request, messages=few_shot)])
    assert result.raw == "B"
    assert backend.render(request) == {"text": "beta"}


def test_baseline_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 train texts but 1 train outputs"):
        get_backend("baseline", train_texts=["a", "b"], train_outputs=["x"])


def test_unknown_backend_lists_names():
    with pytest.raises(ValueError, match="unknown backend 'nope'; known: .*openai"):
        get_backend("nope")
    assert {"openai", "anthropic", "replay", "gold", "baseline", "vllm"} <= set(backend_names())


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_missing_optional_dependency_is_backend_unavailable():
    with pytest.raises(BackendUnavailable, match=r"the vllm backend needs vLLM: pip install 'taskc\[vllm\]'"):
        get_backend("vllm", model="x")


def test_missing_dependency_is_backend_unavailable_never_import_error():
    from taskc import backends

    register_backend("needs_dep", "taskc.backends.replay", "GoldBackend", needs=("taskc_no_such_dep",),
                     hint="vLLM: pip install 'taskc[vllm]'")
    register_backend("needs_module", "taskc_test_no_such_module.sub", "X")
    try:
        with pytest.raises(BackendUnavailable, match=r"^the needs_dep backend needs vLLM: pip install 'taskc\[vllm\]'$"):
            get_backend("needs_dep")
        with pytest.raises(BackendUnavailable, match="^the needs_module backend needs taskc_test_no_such_module"):
            get_backend("needs_module")
    finally:
        backends.unregister_backend("needs_dep")
        backends.unregister_backend("needs_module")
