"""render() of the openai backend: golden payloads per output kind and mode, no network."""

import json

import pytest

from taskc.backends import BackendUnavailable, get_backend
from taskc.backends.openai_chat import default_mode, read_completion
from tests.fakes.requests import LABELS, OBJECT_SCHEMA, SQL_GRAMMAR, SYSTEM, TOOL_SCHEMA, TOOLS, make_request

MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hello"}]
LABEL_SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string", "enum": list(LABELS)}},
    "required": ["intent"],
    "additionalProperties": False,
}
STRICT_TOOLS = [
    {"type": "function", "function": {
        "name": "toggle_lights", "description": "Turn lights on or off in a room.",
        "parameters": {"type": "object", "properties": {
            "room": {"type": ["string", "null"], "enum": ["kitchen", "bedroom", None]},
            "state": {"type": "string", "enum": ["on", "off"]}},
            "required": ["room", "state"], "additionalProperties": False},
        "strict": True}},
    {"type": "function", "function": {
        "name": "set_thermostat", "description": "Set the target temperature.",
        "parameters": {"type": "object", "properties": {
            "temperature": {"type": "integer"},  # the strict subset every provider accepts
            "mode": {"type": ["string", "null"], "enum": ["heat", "cool", "auto", None]}},
            "required": ["temperature", "mode"], "additionalProperties": False},
        "strict": True}},
]


@pytest.fixture
def official(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-official")
    return get_backend("openai", model="gpt-4.1-mini")


@pytest.fixture
def vllm():
    return get_backend("openai", model="qwen", base_url="http://localhost:8000/v1", api_key_env="TASKC_NO_SUCH_KEY")


def test_default_modes():
    assert default_mode("https://api.openai.com/v1") == "openai"
    assert default_mode("http://localhost:8000/v1") == "vllm"
    assert default_mode("https://api.x.ai/v1") == "json_schema"
    assert default_mode("https://generativelanguage.googleapis.com/v1beta/openai") == "json_schema"


def test_openai_label(official):
    assert official.render(make_request("label")) == {
        "model": "gpt-4.1-mini", "messages": MESSAGES, "temperature": 0, "max_completion_tokens": 64,
        "response_format": {"type": "json_schema", "json_schema": {"name": "intent", "strict": True, "schema": LABEL_SCHEMA}},
    }


def test_openai_object(official):
    assert official.render(make_request("object", seed=7, top_p=0.9, stop=["\n\n"])) == {
        "model": "gpt-4.1-mini", "messages": MESSAGES, "temperature": 0, "top_p": 0.9, "seed": 7, "stop": ["\n\n"],
        "max_completion_tokens": 64,
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "strict": True, "schema": OBJECT_SCHEMA}},
    }


def test_openai_tool_call(official):
    assert official.render(make_request("tool_call")) == {
        "model": "gpt-4.1-mini", "messages": MESSAGES, "temperature": 0, "max_completion_tokens": 64,
        "tools": STRICT_TOOLS, "tool_choice": "required", "parallel_tool_calls": False,
    }
    assert "default" not in json.dumps(STRICT_TOOLS)
    assert TOOLS[1]["parameters"]["properties"]["mode"]["default"] == "auto"  # input left untouched


@pytest.mark.parametrize("kind", ["sql", "text"])
def test_openai_unconstrained(official, kind):
    assert official.render(make_request(kind)) == {
        "model": "gpt-4.1-mini", "messages": MESSAGES, "temperature": 0, "max_completion_tokens": 64}


def test_openai_reasoning_models_drop_temperature(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    body = get_backend("openai", model="gpt-5-nano").render(make_request("text"))
    assert "temperature" not in body and body["max_completion_tokens"] == 64


@pytest.mark.parametrize("kind, expected", [
    ("label", {"choice": list(LABELS)}),
    ("object", {"json": OBJECT_SCHEMA}),
    ("tool_call", {"json": TOOL_SCHEMA}),
    ("sql", {"grammar": SQL_GRAMMAR}),
    ("regex", {"regex": "[0-9]{3}"}),
])
def test_vllm_structured_outputs(vllm, kind, expected):
    assert vllm.render(make_request(kind, top_k=5)) == {
        "model": "qwen", "messages": MESSAGES, "temperature": 0, "top_k": 5, "max_tokens": 64,
        "structured_outputs": expected,
    }


def test_vllm_text_has_no_constraint(vllm):
    assert vllm.render(make_request("text")) == {"model": "qwen", "messages": MESSAGES, "temperature": 0, "max_tokens": 64}


@pytest.mark.parametrize("mode", ["openai", "vllm", "json_schema", "json_object", "none"])
@pytest.mark.parametrize("kind", ["label", "object", "tool_call", "sql", "regex", "text"])
def test_no_guided_fields_anywhere(kind, mode):
    backend = get_backend("openai", model="m", base_url="http://127.0.0.1:9/v1", mode=mode)
    assert "guided" not in json.dumps(backend.render(make_request(kind)))


def test_json_schema_mode_is_not_strict():
    backend = get_backend("openai", model="grok", base_url="http://127.0.0.1:9/v1", mode="json_schema")
    assert backend.render(make_request("label"))["response_format"]["json_schema"]["strict"] is False
    tools = backend.render(make_request("tool_call"))
    assert tools["tool_choice"] == "required"
    assert tools["tools"][0] == {"type": "function", "function": {
        "name": "toggle_lights", "description": "Turn lights on or off in a room.", "parameters": TOOLS[0]["parameters"]}}
    obj = get_backend("openai", model="m", base_url="http://127.0.0.1:9/v1", mode="json_object").render(make_request("object"))
    assert obj["response_format"] == {"type": "json_object"}


def test_render_is_pure_and_keyless(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-4242")
    backend = get_backend("openai", model="gpt-4.1-mini")
    request = make_request("tool_call")
    first = backend.render(request)
    assert backend.render(request) == first
    assert "sk-test-SECRET-4242" not in json.dumps(first) and "sk-test-SECRET-4242" not in repr(backend)


def test_remote_endpoint_without_key_is_unavailable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendUnavailable, match=r"\$OPENAI_API_KEY"):
        get_backend("openai", model="gpt-4.1-mini")


def test_parse_content_tool_calls_and_usage():
    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "refund_request"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 8}}}
    raw, usage, _ = read_completion(body)
    assert raw == "refund_request"
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (12, 3, 8)
    call = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "toggle_lights", "arguments": '{"state": "on"}'}},
                           {"id": "c2", "type": "function", "function": {"name": "other", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None}}
    raw, usage, _ = read_completion(call)
    assert raw == '{"name":"toggle_lights","parameters":{"state":"on"}}'
    assert usage.cached_input_tokens == 0
    broken = {"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": '{"a": '}}]}}]}
    assert read_completion(broken)[0] == '{"name":"f","parameters":{"a": }'


def test_postprocess_unwraps_label_and_drops_strict_nulls(official):
    assert official.postprocess('{"intent":"card_lost"}', make_request("label")) == "card_lost"
    raw = '{"name":"toggle_lights","parameters":{"room":null,"state":"on"}}'
    assert official.postprocess(raw, make_request("tool_call")) == '{"name":"toggle_lights","parameters":{"state":"on"}}'
