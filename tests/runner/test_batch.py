"""`run_batch` against the fake batch APIs over real HTTP, with taskc's own openai and anthropic
backends: byte-identical payloads, custom_id matching of shuffled lines, error files, expired and
malformed items (retried once synchronously), validation failure, splitting, Retry-After on a
poll, the cache, and resumption from the run folder's batches.json."""

import asyncio
import json

import pytest

from taskc.backends import get_backend
from taskc.common.encoding import dumps
from taskc.runner.batch import custom_id, index_of_custom_id, run_batch, split_lines
from taskc.runner.batch_state import read_records
from taskc.runner.cache import ResultCache, cache_key
from tests.fakes.batch_server import FakeBatchProvider
from tests.fakes.requests import make_request

N = 12


def upper(api, body):
    return body["messages"][-1]["content"].upper()


def outcomes(mapping):
    """An outcome function: row index -> outcome, by the custom_id taskc gives each request."""
    return lambda api, cid, params: mapping.get(index_of_custom_id(cid)[0], "succeeded")


def backend_for(api, fake, **kw):
    if api == "openai":
        return get_backend("openai", model="gpt-x", base_url=fake.openai_base_url, mode="openai", **kw)
    return get_backend("anthropic", model="claude-x", base_url=fake.anthropic_base_url, **kw)


def requests(n=N, kind="text"):
    return [make_request(kind, f"row {i}", i) for i in range(n)]


def go(backend, reqs, **kw):
    kw.setdefault("poll_interval_s", 0.01)
    kw.setdefault("progress", False)
    return asyncio.run(run_batch(backend, reqs, **kw))


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_batch_answers_match_by_custom_id_and_failures_are_retried_once(api, tmp_path):
    with FakeBatchProvider(responder=upper, outcome=outcomes({2: "errored", 5: "expired", 7: "malformed"})) as fake:
        fake.garbage_lines = 1
        backend = backend_for(api, fake)
        reqs = requests()
        got = []
        results = go(backend, reqs, state_dir=tmp_path / "run", on_result=got.append)
        (batch,) = fake.batches.values()
        sync = list(fake.raw_bodies)
    assert [(r.index, r.repeat) for r in results] == [(i, 0) for i in range(N)]
    assert all(r.error is None for r in results) and [r.raw for r in results] == [f"ROW {i}" for i in range(N)]
    assert sorted((r.index for r in got)) == list(range(N))  # each delivered once
    retried = {r.index for r in results if "batch_retry" in r.extra}
    assert retried == {2, 5, 7} and all("batch" not in results[i].extra for i in retried)
    assert all(results[i].extra["batch"] == batch.id for i in range(N) if i not in retried)
    assert "expired" in results[5].extra["batch_retry"] and "malformed response" in results[7].extra["batch_retry"]
    # byte-identical: each batch entry embeds exactly the bytes the synchronous path POSTs
    payloads = {i: dumps(backend.render(r)) for i, r in enumerate(reqs)}
    field = b',"body":' if api == "openai" else b',"params":'
    for line in batch.lines:
        entry = json.loads(line)
        index = index_of_custom_id(entry["custom_id"])[0]
        if api == "openai":
            assert line.endswith(field + payloads[index] + b"}")
        else:
            assert payloads[index] in batch.raw_body
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    assert sorted(sync) == sorted((path, payloads[i]) for i in (2, 5, 7))  # the retries: the same bytes
    (record,) = read_records(tmp_path / "run" / "batches.json")
    assert record["id"] == batch.id and record["state"] == "collected" and record["requests"] == N
    if api == "anthropic":  # results_url followed exactly as the provider returned it
        assert fake.results_fetches == [f"/fake-results/{batch.id}/download.jsonl?sig=x1"]


def test_lines_that_name_no_request_are_reported_and_never_drop_an_answer(tmp_path, capsys):
    with FakeBatchProvider(responder=upper) as fake:
        fake.garbage_lines = 2
        results = go(backend_for("openai", fake), requests(4), state_dir=tmp_path / "run")  # no progress display
    assert all(r.error is None and r.extra.get("batch") for r in results)
    err = capsys.readouterr().err
    assert err.count("batch: warning: batch batch_") == 2 and "line 5: malformed output line" in err and "line 6" in err
    (record,) = read_records(tmp_path / "run" / "batches.json")
    assert len(record["problems"]) == 2 and "line 6: malformed output line: not JSON" in record["problems"][1]


def test_split_above_the_request_and_byte_limits(tmp_path):
    assert split_lines([10] * 7, 3, 10_000) == [(0, 3), (3, 6), (6, 7)]
    assert split_lines([600, 600, 600], 100, 1024 + 1300) == [(0, 2), (2, 3)]
    assert split_lines([5000, 10], 100, 2000) == [(0, 1), (1, 2)]  # too big alone: its own batch
    with FakeBatchProvider(responder=upper, max_requests=5) as fake:
        backend = backend_for("openai", fake)
        backend.batch_max_requests = 5
        results = go(backend, requests(), state_dir=tmp_path / "run")
        sizes = sorted(len(b.items) for b in fake.batches.values())
        statuses = {b.status for b in fake.batches.values()}
    assert sizes == [2, 5, 5] and statuses == {"completed"} and fake.raw_bodies == []  # no sync request
    assert all(r.error is None and r.extra["batch"] for r in results)
    assert len(read_records(tmp_path / "run" / "batches.json")) == 3


def test_a_batch_that_fails_validation_is_answered_synchronously_and_says_why(tmp_path):
    with FakeBatchProvider(responder=upper, max_requests=3) as fake:
        results = go(backend_for("openai", fake), requests(4), state_dir=tmp_path / "run")
        (batch,) = fake.batches.values()
    assert batch.status == "failed" and fake.created == 1
    assert all(r.error is None and r.raw == f"ROW {r.index}" for r in results)
    assert all("failed: too_many_requests" in r.extra["batch_retry"] for r in results)
    (record,) = read_records(tmp_path / "run" / "batches.json")
    assert record["state"] == "failed" and "limit is 3" in record["error"]


def test_anthropic_batch_over_its_limit_is_reported_not_dropped(tmp_path):
    with FakeBatchProvider(responder=upper, max_requests=3) as fake:
        results = go(backend_for("anthropic", fake), requests(4), state_dir=tmp_path / "run")
    assert fake.created == 0 and fake.raw_bodies == []  # refused: nothing billed, nothing sent at list price
    assert all(r.error.startswith("batch submission failed (4 requests): creating the batch: HTTP 400 invalid_request_error")
               for r in results)
    assert read_records(tmp_path / "run" / "batches.json")[0]["state"] == "failed"


def test_a_poll_answered_429_waits_its_retry_after(tmp_path):
    with FakeBatchProvider(responder=upper, polls_to_end=2) as fake:
        fake.script({}, {}, {"status": 429, "retry_after": "0.6"})  # upload, create, then the first poll
        results = go(backend_for("openai", fake), requests(3))
        polls = [r.at for r in fake.requests if r.path.startswith("/v1/batches/")]
    assert all(r.error is None for r in results)
    assert len(polls) == 3 and polls[1] - polls[0] >= 0.6  # the 429'd poll, its retry, the final poll


def test_cached_answers_are_not_sent_again(tmp_path):
    with FakeBatchProvider(responder=upper) as fake, ResultCache(tmp_path / "cache.sqlite") as cache:
        backend = backend_for("anthropic", fake)
        first = go(backend, requests(6)[:4], cache=cache, cache_namespace="ns", state_dir=tmp_path / "a")
        again = go(backend, requests(6), cache=cache, cache_namespace="ns", state_dir=tmp_path / "b")
        sizes = [len(b.items) for b in fake.batches.values()]
    assert all(not r.cached for r in first) and [r.cached for r in again] == [True] * 4 + [False] * 2
    assert sizes == [4, 2] and [r.raw for r in again] == [f"ROW {i}" for i in range(6)]
    assert again[0].extra["batch"]  # a cached batch answer keeps its batch id (it was billed at the batch price)


def test_a_malformed_batch_object_is_reported_then_resumed_without_a_second_batch(tmp_path, capsys):
    run_dir = tmp_path / "task" / "run1"
    with FakeBatchProvider(responder=upper) as fake:
        backend = backend_for("openai", fake)
        fake.malformed_batch = True
        failed = go(backend, requests(3), state_dir=run_dir)
        (batch_id,) = fake.batches
        assert all(r.error.startswith(f"batch {batch_id}: cannot poll it: batch {batch_id}: malformed batch object: "
                                      "no valid 'status'") for r in failed)
        assert "rerun (or taskc eval --resume RUN_DIR)" in failed[0].error
        assert read_records(run_dir / "batches.json")[0]["state"] == "submitted"
        fake.malformed_batch = False
        # a rerun in a new run folder of the same task adopts the recorded batch
        again = go(backend, requests(3), state_dir=tmp_path / "task" / "run2")
        assert fake.created == 1 and all(r.error is None and r.extra["batch"] == batch_id for r in again)
    (adopted,) = read_records(tmp_path / "task" / "run2" / "batches.json")
    assert adopted["id"] == batch_id and adopted["adopted_from"].endswith("run1") and adopted["state"] == "collected"


def test_a_batch_the_provider_does_not_know_is_reported_and_not_adopted_again(tmp_path):
    run_dir = tmp_path / "task" / "run1"
    with FakeBatchProvider(responder=upper) as fake:
        backend = backend_for("anthropic", fake)
        go(backend, requests(2), state_dir=run_dir)
        fake.batches.clear()  # the provider forgot it (another organisation's key, say)
        state = json.loads((run_dir / "batches.json").read_text())
        state["batches"][0]["state"] = "submitted"
        (run_dir / "batches.json").write_text(json.dumps(state))
        lost = go(backend, requests(2), state_dir=run_dir)
        assert all("the provider does not know this batch (batch msgbatch_" in r.error and "HTTP 404 not_found_error" in r.error
                   for r in lost)
        assert read_records(run_dir / "batches.json")[0]["state"] == "gone"
        fresh = go(backend, requests(2), state_dir=run_dir)
    assert fake.created == 2 and all(r.error is None for r in fresh)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_submission_killed_before_its_answer_finds_its_batch(api, tmp_path):
    """A run killed after the create call but before recording the id: the record says
    `submitting`; the rerun finds the batch (OpenAI: by its metadata key; Anthropic: the one
    batch created since with as many requests) instead of creating another."""
    run_dir = tmp_path / "task" / "run1"
    with FakeBatchProvider(responder=upper) as fake:
        backend = backend_for(api, fake)
        reqs = requests(3)
        go(backend, reqs, state_dir=run_dir)
        state = json.loads((run_dir / "batches.json").read_text())
        state["batches"][0].update(id=None, state="submitting")
        (run_dir / "batches.json").write_text(json.dumps(state))
        again = go(backend, reqs, state_dir=run_dir)
    assert fake.created == 1 and all(r.error is None and r.extra.get("batch") for r in again)
    (record,) = read_records(run_dir / "batches.json")
    assert record["id"] in fake.batches and record["state"] == "collected"


def test_canceled_items_are_reported_not_retried(tmp_path):
    with FakeBatchProvider(responder=upper, outcome=lambda api, cid, p: "succeeded") as fake:
        fake.hold = True
        backend = backend_for("anthropic", fake)

        async def run_and_cancel():
            task = asyncio.create_task(run_batch(backend, requests(3), poll_interval_s=0.02, progress=False))
            while not fake.batches:
                await asyncio.sleep(0.01)
            from taskc.runner.http import JsonClient

            async with JsonClient() as client:
                await backend.batch_cancel(client, next(iter(fake.batches)))
            return await task

        results = asyncio.run(run_and_cancel())
    assert all(r.error == f"batch {next(iter(fake.batches))}: canceled" for r in results)
    assert fake.raw_bodies == []


def test_custom_ids_are_unique_per_row_and_repeat_and_name_the_payload():
    key = cache_key("ns", "openai", "m", {"a": 1}, 0)
    a, b = make_request("text", "x", 3, repeat=0), make_request("text", "x", 3, repeat=1)
    assert custom_id(a, key) == f"t3-0-{key[:16]}" and index_of_custom_id(custom_id(b, key)) == (3, 1)
    assert index_of_custom_id("other") is None and index_of_custom_id("t1-x-abc") is None


def test_ctrl_c_while_polling_leaves_the_batch_recorded(tmp_path):
    import threading

    with FakeBatchProvider(responder=upper) as fake:
        fake.hold = True
        stop = threading.Event()

        async def run_then_stop():
            task = asyncio.create_task(run_batch(backend_for("openai", fake), requests(3), poll_interval_s=0.02,
                                                 progress=False, state_dir=tmp_path / "run", stop=stop))
            while len(fake.polls) < 2:
                await asyncio.sleep(0.01)
            stop.set()
            return await task

        results = asyncio.run(run_then_stop())
    assert results == [] and fake.created == 1 and fake.raw_bodies == []
    assert read_records(tmp_path / "run" / "batches.json")[0]["state"] == "submitted"


def test_keys_never_reach_batches_json_or_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKC_TEST_KEY", "sk-batch-secret-9876")
    with FakeBatchProvider(responder=upper) as fake:
        backend = backend_for("openai", fake, api_key_env="TASKC_TEST_KEY")
        fake.script({"status": 401, "echo_key": True})
        failed = go(backend, requests(2), state_dir=tmp_path / "run")
        ok = go(backend, requests(2), state_dir=tmp_path / "run")
        assert fake.requests[0].headers["authorization"] == "REDACTED"
    text = (tmp_path / "run" / "batches.json").read_text()
    assert "sk-batch-secret-9876" not in text and '"api_key_env": "TASKC_TEST_KEY"' in text
    assert all("[REDACTED]" in r.error and "sk-batch-secret" not in r.error for r in failed)
    assert all(r.error is None for r in ok)


def test_a_failed_download_keeps_the_batch_and_gone_results_are_answered_synchronously(tmp_path):
    from taskc.runner.http import JsonClient

    run_dir = tmp_path / "task" / "run1"
    with FakeBatchProvider(responder=upper) as fake:
        backend = backend_for("openai", fake)
        fake.script({}, {}, {}, {"status": 500})  # upload, create, poll, then the download fails

        async def once():
            async with JsonClient(max_attempts=1) as client:
                return await run_batch(backend, requests(2), state_dir=run_dir, client=client, poll_interval_s=0.01,
                                       progress=False)

        failed = asyncio.run(once())
        (batch_id,) = fake.batches
        assert all(r.error.startswith(f"batch {batch_id}: downloading its results failed: downloading file file-")
                   and "HTTP 500" in r.error for r in failed)
        assert read_records(run_dir / "batches.json")[0]["state"] == "submitted" and fake.raw_bodies == []
        fake.files.clear()  # then the provider drops the output file: the answers are gone
        again = go(backend, requests(2), state_dir=run_dir)
    assert fake.created == 1 and all(r.error is None and "its results are gone" in r.extra["batch_retry"] for r in again)
    assert len(fake.raw_bodies) == 2 and read_records(run_dir / "batches.json")[0]["state"] == "gone"
