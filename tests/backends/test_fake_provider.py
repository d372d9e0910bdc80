"""The fake provider speaks the real wire formats: the official SDKs parse it over real HTTP,
and taskc's backends round-trip through it."""

import asyncio
import json

import anthropic
import openai
import pytest

from taskc.backends import get_backend
from taskc.runner.engine import run_requests
from tests.fakes.requests import TOOLS, make_request

TOOL = {"type": "function", "function": {"name": "toggle_lights", "parameters": TOOLS[0]["parameters"]}}


def test_openai_sdk_parses_text_and_usage(fake):
    fake.answers["hi"] = "hello there"
    fake.cached_tokens = 2
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-x", max_retries=0)
    r = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "gpt-x"
    assert r.choices[0].message.content == "hello there" and r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.refusal is None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (4, 2, 6)
    assert r.usage.prompt_tokens_details.cached_tokens == 2
    assert r.usage.completion_tokens_details.reasoning_tokens == 0


def test_openai_sdk_parses_forced_tool_call(fake):
    fake.answers["lights on"] = {"name": "toggle_lights", "parameters": {"state": "on"}}
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-x", max_retries=0)
    r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "lights on"}],
                                       tools=[TOOL], tool_choice="required")
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    assert call.type == "function" and call.function.name == "toggle_lights"
    assert json.loads(call.function.arguments) == {"state": "on"}


def test_openai_sdk_sees_error_body_and_status(fake):
    fake.fail_next(1, status=429, retry_after="1")
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 429 and info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "1"


def test_anthropic_sdk_parses_text_tool_use_and_errors(fake):
    fake.answers["hi"] = "hello"
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-x", max_retries=0)
    m = client.messages.create(model="claude", max_tokens=16, system="be brief", messages=[{"role": "user", "content": "hi"}])
    assert m.type == "message" and m.id.startswith("msg_") and m.role == "assistant"
    assert m.content[0].type == "text" and m.content[0].text == "hello"
    assert m.stop_reason == "end_turn" and m.stop_sequence is None
    assert (m.usage.input_tokens, m.usage.output_tokens, m.usage.cache_read_input_tokens) == (6, 1, 0)
    tool = {"name": "toggle_lights", "description": "d", "input_schema": TOOLS[0]["parameters"]}
    fake.answers["on"] = '{"name": "toggle_lights", "parameters": {"state": "on"}}'
    m = client.messages.create(model="claude", max_tokens=16, messages=[{"role": "user", "content": "on"}],
                               tools=[tool], tool_choice={"type": "any"})
    assert m.stop_reason == "tool_use" and m.content[0].type == "tool_use"
    assert (m.content[0].name, m.content[0].input) == ("toggle_lights", {"state": "on"})
    fake.fail_next(1, status=529)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="claude", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"


def test_fake_rejects_system_role_in_anthropic_messages(fake):
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="c", max_tokens=5, messages=[{"role": "system", "content": "s"}])


def test_fake_records_bodies_with_auth_redacted(fake):
    openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-secret-777", max_retries=0).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}])
    anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-secret-888", max_retries=0).messages.create(
        model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert fake.count == 2
    assert fake.requests[0].headers["authorization"] == "REDACTED"
    anthropic_auth = fake.requests[1].headers.get("x-api-key") or fake.requests[1].headers["authorization"]
    assert anthropic_auth == "REDACTED"  # newer SDKs send a bearer token, older ones x-api-key
    assert fake.requests[0].body["messages"] == [{"role": "user", "content": "x"}]
    dump = repr(fake.requests)
    assert "sk-secret-777" not in dump and "sk-ant-secret-888" not in dump


@pytest.mark.parametrize("name, mode", [("openai", "openai"), ("openai", "vllm"), ("openai", "json_schema"), ("anthropic", None)])
def test_backends_round_trip_every_kind(fake, monkeypatch, name, mode):
    monkeypatch.setenv("TASKC_TEST_KEY", "sk-roundtrip-1234")
    fake.answers.update({
        "lost card": "card_lost",
        "lights on": {"name": "toggle_lights", "parameters": {"state": "on"}},
        "redact": '{"redacted":"[NAME]","entities":["NAME"]}',
    })
    settings = {"model": "m", "api_key_env": "TASKC_TEST_KEY"}
    if name == "openai":
        settings.update(base_url=fake.openai_base_url, mode=mode)
    else:
        settings.update(base_url=fake.anthropic_base_url)
    backend = get_backend(name, **settings)
    requests = [make_request("label", "lost card", 0), make_request("tool_call", "lights on", 1),
                make_request("object", "redact", 2), make_request("text", "anything", 3)]
    results = asyncio.run(run_requests(backend, requests, concurrency=4, progress=False))
    assert [r.error for r in results] == [None] * 4
    assert results[0].raw == "card_lost"
    expected_call = '{"name":"toggle_lights","parameters":{"state":"on"}}'
    if mode == "vllm":  # a real vLLM would write the constrained JSON as content; the fake echoes the dict
        assert json.loads(results[1].raw) == json.loads(expected_call)
    else:
        assert results[1].raw == expected_call
    assert json.loads(results[2].raw) == {"redacted": "[NAME]", "entities": ["NAME"]}
    assert results[3].raw == "ok"
    assert all(r.usage.input_tokens > 0 and r.usage.output_tokens > 0 and r.attempts == 1 for r in results)
    assert all("guided" not in json.dumps(rec.body) for rec in fake.requests)
    assert "sk-roundtrip-1234" not in repr(fake.requests) + repr(results)
    auth = "x-api-key" if name == "anthropic" else "authorization"
    assert all(rec.headers[auth] == "REDACTED" for rec in fake.requests)
    if name == "anthropic":
        assert all(rec.headers["anthropic-version"] == "2023-06-01" for rec in fake.requests)
