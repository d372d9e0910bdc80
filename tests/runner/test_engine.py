"""run_requests: cache first, bounded concurrency, errors recorded, secrets kept out."""

import asyncio
import threading

from taskc.backends import get_backend
from taskc.backends.base import Backend
from taskc.runner.cache import ResultCache, cache_key
from taskc.runner.engine import run_requests
from taskc.runner.types import Result
from tests.fakes.requests import make_request

KEY = "sk-test-SECRET-9f8e7d"


def openai_backend(fake, monkeypatch, **settings):
    monkeypatch.setenv("TASKC_TEST_KEY", KEY)
    return get_backend("openai", model="m", base_url=fake.openai_base_url, api_key_env="TASKC_TEST_KEY", **settings)


def run(backend, requests, **options):
    options.setdefault("progress", False)
    return asyncio.run(run_requests(backend, requests, **options))


def test_results_in_order_with_usage_and_callback(fake, monkeypatch):
    fake.responder = lambda api, body: body["messages"][-1]["content"].upper()
    backend = openai_backend(fake, monkeypatch)
    requests = [make_request("text", f"row {i}", i) for i in range(50)]
    seen = []
    results = run(backend, requests, concurrency=8, on_result=seen.append)
    assert [r.raw for r in results] == [f"ROW {i}" for i in range(50)]
    assert [(r.index, r.repeat) for r in results] == [(i, 0) for i in range(50)]
    assert sorted(r.index for r in seen) == list(range(50))
    assert all(r.usage.input_tokens == 7 and r.usage.output_tokens == 2 and not r.cached for r in results)
    assert all(r.extra["finish_reason"] == "stop" for r in results)


def test_concurrency_is_bounded(fake, monkeypatch):
    lock, state = threading.Lock(), {"now": 0, "max": 0}
    fake.delay_s = 0.05
    original = fake._take

    def take(request, body):  # the fake's thread: a request arrived
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        return original(request, body)

    def done(result):  # the runner's thread: that request's result is recorded
        with lock:
            state["now"] -= 1

    fake._take = take
    run(openai_backend(fake, monkeypatch), [make_request("text", str(i), i) for i in range(40)], concurrency=4, on_result=done)
    assert state["max"] == 4


def test_second_run_is_served_from_cache(fake, monkeypatch, tmp_path):
    backend = openai_backend(fake, monkeypatch)
    requests = [make_request("label", f"q{i}", i, repeat=r) for i in range(20) for r in range(2)]
    fake.default_answer = "card_lost"
    with ResultCache(tmp_path / "cache.sqlite") as cache:
        first = run(backend, requests, cache=cache, cache_namespace="contract-1")
        assert fake.count == 40 and len(cache) == 40
        fake.reset()
        second = run(backend, requests, cache=cache, cache_namespace="contract-1")
        assert fake.count == 0
        assert all(r.cached for r in second)
        assert [(r.index, r.repeat, r.raw, r.usage) for r in second] == [(r.index, r.repeat, r.raw, r.usage) for r in first]
        run(backend, requests[:3], cache=cache, cache_namespace="contract-2")  # another contract: sent again
        assert fake.count == 3


def test_errors_are_recorded_not_cached_and_retried_next_run(fake, monkeypatch, tmp_path):
    backend = openai_backend(fake, monkeypatch)
    fake.fail_next(2, status=500)
    requests = [make_request("text", "a", 0), make_request("text", "b", 1)]
    with ResultCache(tmp_path / "c.sqlite") as cache:
        results = run(backend, requests, cache=cache, max_attempts=1, concurrency=1)
        assert [r.error is not None for r in results] == [True, True]
        assert results[0].error.startswith("HTTP 500") and results[0].raw is None and results[0].attempts == 1
        assert len(cache) == 0
        results = run(backend, requests, cache=cache)
        assert [r.raw for r in results] == ["ok", "ok"] and fake.count == 4


def test_two_429_then_success_through_the_runner(fake, monkeypatch):
    backend = openai_backend(fake, monkeypatch)
    fake.fail_next(2, status=429, retry_after="1")
    [result] = run(backend, [make_request("text")], max_attempts=5)
    assert result.raw == "ok" and result.attempts == 3 and result.latency_s >= 2.0


def test_backend_exception_becomes_error_result():
    class Flaky(Backend):
        name, model = "flaky", "f"

        def render(self, request):
            return {"i": request.index}

        async def generate_one(self, request, client, payload=None):
            if request.index == 1:
                raise RuntimeError(f"boom with {KEY}")
            return Result(request.index, request.repeat, raw="fine")

        def secrets(self):
            return (KEY,)

    results = run(Flaky(), [make_request("text", str(i), i) for i in range(3)])
    assert [r.raw for r in results] == ["fine", None, "fine"]
    assert results[1].error == "RuntimeError: boom with [REDACTED]"


def test_batched_backend_failure_fails_its_batch_only_as_results():
    class Broken(Backend):
        name, model, batched, cacheable = "broken", "b", True, False

        def render(self, request):
            return {}

        async def generate(self, requests, client, payloads=None):
            raise ValueError("engine died")

    results = run(Broken(), [make_request("text", str(i), i) for i in range(3)])
    assert [r.error for r in results] == ["ValueError: engine died"] * 3
    assert [r.index for r in results] == [0, 1, 2]


def test_key_never_reaches_results_cache_or_errors(fake, monkeypatch, tmp_path):
    backend = openai_backend(fake, monkeypatch)
    fake.fail_next(1, status=401, echo_key=True)
    requests = [make_request(kind, kind, i) for i, kind in enumerate(["text", "label", "object", "tool_call", "sql"])]
    path = tmp_path / "cache.sqlite"
    with ResultCache(path) as cache:
        results = run(backend, requests, cache=cache, concurrency=1)
        assert results[0].error.startswith("HTTP 401") and "[REDACTED]" in results[0].error
        assert [r.error for r in results[1:]] == [None] * 4
        keys = [cache_key("", "openai", "m", backend.render(r), 0) for r in requests]
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert KEY.encode() not in blob
    assert KEY not in repr(results) + repr(keys) + repr(backend) + repr(fake.requests)
    assert all(rec.headers["authorization"] == "REDACTED" for rec in fake.requests)


def test_offline_backends_skip_http_and_cache(tmp_path):
    gold = get_backend("gold", gold={0: "a", 2: {"name": "f", "parameters": {}}})
    with ResultCache(tmp_path / "c.sqlite") as cache:
        results = run(gold, [make_request("text", "x", i) for i in range(3)], cache=cache)
        assert len(cache) == 0
    assert [r.raw for r in results] == ["a", None, '{"name":"f","parameters":{}}']
    assert results[1].error == "no gold answer for row 1"


def test_results_are_committed_while_the_run_waits(fake, monkeypatch, tmp_path):
    import sqlite3
    from contextlib import closing

    path = tmp_path / "cache.sqlite"
    seen = []

    def responder(api, body):  # runs in the fake's thread while the runner waits for row 3
        if body["messages"][-1]["content"] == "row 3":
            with closing(sqlite3.connect(path)) as db:
                seen.append(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        return "x"

    fake.responder = responder
    fake.script({}, {}, {}, {"delay": 0.3})
    with ResultCache(path, flush_interval_s=0.05) as cache:
        run(openai_backend(fake, monkeypatch), [make_request("text", f"row {i}", i) for i in range(4)],
            cache=cache, concurrency=1)
    assert seen == [3]


def test_a_model_folder_trained_again_is_not_answered_from_the_cache(tmp_path):
    """The cache names a local model folder by its files: retraining into the same folder is a
    new model, whose requests are sent again."""
    from taskc.backends.base import folder_fingerprint

    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"first weights")
    first = folder_fingerprint(str(folder))
    assert first.startswith(f"{folder}@") and folder_fingerprint(str(folder)) == first
    (folder / "model.safetensors").write_bytes(b"the retrained weights")
    assert folder_fingerprint(str(folder)) != first
    assert folder_fingerprint("Qwen/Qwen3-0.6B") == "Qwen/Qwen3-0.6B"  # a hub id names itself
