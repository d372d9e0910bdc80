"""The fake batch servers speak the real wire protocols: the official openai and anthropic SDKs
drive them over real HTTP (upload, create, poll, download, list, cancel, validation, errors)."""

import json

import anthropic
import openai
import pytest
from anthropic.types.messages import MessageBatchIndividualResponse
from openai.types.chat import ChatCompletion

from tests.fakes.batch_server import FakeBatchProvider


def outcome(api, cid, params):
    return {"b": "errored", "c": "expired", "d": "malformed"}.get(cid, "succeeded")


@pytest.fixture
def fake():
    with FakeBatchProvider(outcome=outcome, responder=lambda api, body: body["messages"][-1]["content"].upper()) as f:
        yield f


def openai_line(cid, text, model="gpt-x"):
    return json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": model, "messages": [{"role": "user", "content": text}]}})


def test_openai_sdk_runs_a_batch_through_the_fake(fake):
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-x", max_retries=0)
    content = "\n".join(openai_line(c, f"row {c}") for c in "abcde").encode() + b"\n"
    uploaded = client.files.create(file=("in.jsonl", content), purpose="batch")
    assert uploaded.object == "file" and uploaded.purpose == "batch" and uploaded.bytes == len(content)
    assert fake.files[uploaded.id]["content"] == content
    made = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                                 metadata={"taskc_key": "k1"})
    assert made.status == "validating" and made.input_file_id == uploaded.id and made.metadata == {"taskc_key": "k1"}
    done = client.batches.retrieve(made.id)
    assert done.status == "expired"  # item c expired: the batch ends as expired, with both files
    assert done.request_counts.total == 5 and done.output_file_id and done.error_file_id
    out = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in out) == ["a", "d", "e"] and [o["custom_id"] for o in out] != ["a", "d", "e"]
    by_id = {o["custom_id"]: o for o in out}
    completion = ChatCompletion.model_validate(by_id["a"]["response"]["body"])
    assert completion.choices[0].message.content == "ROW A" and by_id["a"]["response"]["status_code"] == 200
    assert by_id["d"]["response"]["body"]["choices"] == []  # the malformed item
    errors = {e["custom_id"]: e for e in map(json.loads, client.files.content(done.error_file_id).text.splitlines())}
    assert errors["b"]["response"]["status_code"] == 400 and errors["b"]["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert errors["c"]["response"] is None and errors["c"]["error"]["code"] == "batch_expired"
    assert [b.id for b in client.batches.list(limit=10).data] == [made.id]


def test_openai_sdk_sees_validation_failure_cancel_and_not_found(fake):
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-x", max_retries=0)
    dup = (openai_line("a", "x") + "\n" + openai_line("a", "y") + "\n").encode()
    bad = client.batches.create(input_file_id=client.files.create(file=("d.jsonl", dup), purpose="batch").id,
                                endpoint="/v1/chat/completions", completion_window="24h")
    assert bad.status == "failed" and bad.errors.data[0].code == "duplicate_custom_id" and bad.errors.data[0].line == 2
    fake.hold = True
    ok = client.batches.create(input_file_id=client.files.create(file=("o.jsonl", openai_line("z", "q").encode()),
                                                                 purpose="batch").id,
                               endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.retrieve(ok.id).status == "in_progress"
    assert client.batches.cancel(ok.id).status == "cancelling"
    cancelled = client.batches.retrieve(ok.id)
    assert cancelled.status == "cancelled"
    line = json.loads(client.files.content(cancelled.error_file_id).text)
    assert line["error"]["code"] == "batch_cancelled"
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


def test_anthropic_sdk_runs_a_batch_through_the_fake(fake):
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-x", max_retries=0)
    params = lambda text: {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}  # noqa: E731
    made = client.messages.batches.create(requests=[{"custom_id": c, "params": params(f"row {c}")} for c in "abcde"])
    assert made.type == "message_batch" and made.processing_status == "in_progress"
    assert made.request_counts.processing == 5 and made.results_url is None
    ended = client.messages.batches.retrieve(made.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert "/fake-results/" in ended.results_url  # not {id}/results: the SDK follows the URL given
    results = list(client.messages.batches.results(made.id))
    assert all(isinstance(r, MessageBatchIndividualResponse) for r in results)
    by_id = {r.custom_id: r.result for r in results}
    assert sorted(by_id) == list("abcde") and [r.custom_id for r in results] != list("abcde")
    assert by_id["a"].type == "succeeded" and by_id["a"].message.content[0].text == "ROW A"
    assert by_id["b"].type == "errored" and by_id["b"].error.error.type == "invalid_request_error"
    assert by_id["c"].type == "expired" and by_id["e"].type == "succeeded"
    assert ended.request_counts.expired == 1 and ended.request_counts.errored == 1
    assert fake.results_fetches == [f"/fake-results/{made.id}/download.jsonl?sig=x1"]
    assert [b.id for b in client.messages.batches.list(limit=5).data] == [made.id]


def test_anthropic_sdk_sees_cancel_bad_custom_id_and_not_found(fake):
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-x", max_retries=0)
    params = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.create(requests=[{"custom_id": "has space", "params": params}])
    assert "custom_id" in str(info.value)
    fake.hold = True
    made = client.messages.batches.create(requests=[{"custom_id": "x", "params": params}])
    assert client.messages.batches.cancel(made.id).processing_status == "canceling"
    assert client.messages.batches.retrieve(made.id).request_counts.canceled == 1
    assert [r.result.type for r in client.messages.batches.results(made.id)] == ["canceled"]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")
