"""render() and read_message() of the anthropic backend: golden payloads, no network."""

import json

import pytest

from taskc.backends import get_backend
from taskc.backends.anthropic_messages import read_message
from tests.fakes.requests import LABELS, OBJECT_SCHEMA, SYSTEM, TOOLS, make_request

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def claude(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    return get_backend("anthropic", model="claude-haiku-4-5")


def test_label_uses_output_config(claude):
    assert claude.render(make_request("label")) == {
        "model": "claude-haiku-4-5", "max_tokens": 64, "messages": USER, "system": SYSTEM, "temperature": 0,
        "output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"intent": {"type": "string", "enum": list(LABELS)}},
            "required": ["intent"], "additionalProperties": False}}},
    }


def test_object(claude):
    body = claude.render(make_request("object", stop="###", top_k=4, seed=3))
    assert body == {
        "model": "claude-haiku-4-5", "max_tokens": 64, "messages": USER, "system": SYSTEM, "temperature": 0,
        "top_k": 4, "stop_sequences": ["###"],
        "output_config": {"format": {"type": "json_schema", "schema": OBJECT_SCHEMA}},
    }


def test_tool_call(claude):
    assert claude.render(make_request("tool_call")) == {
        "model": "claude-haiku-4-5", "max_tokens": 64, "messages": USER, "system": SYSTEM, "temperature": 0,
        "tools": [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in TOOLS],
        "tool_choice": {"type": "any"},
    }


@pytest.mark.parametrize("kind", ["sql", "text"])
def test_unconstrained(claude, kind):
    assert claude.render(make_request(kind)) == {
        "model": "claude-haiku-4-5", "max_tokens": 64, "messages": USER, "system": SYSTEM, "temperature": 0}


def test_system_never_a_message_and_no_guided(claude):
    for kind in ("label", "object", "tool_call", "sql", "text"):
        body = claude.render(make_request(kind))
        assert all(m["role"] != "system" for m in body["messages"])
        assert "guided" not in json.dumps(body)


def test_base_url_with_or_without_v1():
    a = get_backend("anthropic", model="m", base_url="http://127.0.0.1:8000/v1", api_key_env=None)
    b = get_backend("anthropic", model="m", base_url="http://127.0.0.1:8000", api_key_env=None)
    assert a.url == b.url == "http://127.0.0.1:8000/v1/messages"


def test_parse_text_tool_use_and_usage():
    body = {"content": [{"type": "text", "text": "card_"}, {"type": "text", "text": "lost"}],
            "usage": {"input_tokens": 10, "output_tokens": 2, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}}
    raw, usage, _ = read_message(body)
    assert raw == "card_lost"
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (115, 2, 100)
    body = {"content": [{"type": "text", "text": "Sure."},
                        {"type": "tool_use", "id": "toolu_1", "name": "set_thermostat", "input": {"temperature": 72}}],
            "usage": {"input_tokens": 3, "output_tokens": 9}}
    raw, usage, _ = read_message(body)
    assert raw == '{"name":"set_thermostat","parameters":{"temperature":72}}'
    assert (usage.input_tokens, usage.cached_input_tokens) == (3, 0)
