"""The `anthropic` backend: the Messages API (`POST {base_url}/v1/messages`).

Settings: `model`, `base_url` (default https://api.anthropic.com; a trailing `/v1` is accepted),
`api_key_env` (default ANTHROPIC_API_KEY; optional for localhost, e.g. a vLLM server, which
also speaks this API), `extra_body` (merged last), `default_max_tokens` (1024; the API requires
max_tokens).

Lowering:
- the system prompt goes to the top-level `system` field, never into `messages`;
- label: `output_config: {"format": {"type": "json_schema", "schema": {"<name>": enum}}}`,
  unwrapped back to the bare label on parse;
- object: `output_config.format` json_schema with `request.strict_schema` (else the contract's);
- tool_call: `tools: [{"name","description","input_schema"}]`, `tool_choice: {"type": "any"}`;
- sql / text: none.
`parse` joins the text blocks, or returns the first `tool_use` block as compact
`{"name":...,"parameters":{...}}` JSON. Usage: `input_tokens` is the whole prompt
(input + cache read + cache creation, as OpenAI counts it), `cached_input_tokens` the cache read.
"""

from __future__ import annotations

import os
from typing import Any

from taskc.backends.base import (
    HttpBackend,
    MissingKey,
    tool_call_text,
    unwrap_label,
    wrap_label_schema,
)
from taskc.backends.anthropic_batch import AnthropicBatch
from taskc.common.encoding import compact_json
from taskc.common.endpoints import is_local, join_url, redact_url
from taskc.runner.types import Request, Usage

ANTHROPIC_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
_PARAMS = ("temperature", "top_p", "top_k")


def read_message(body: dict[str, Any]) -> tuple[str, Usage, dict[str, Any]]:
    """(raw text, usage, extra) of a Messages response: the first tool_use block as compact
    `{"name","parameters"}` JSON, else the text blocks joined; extra holds the stop reason."""
    blocks = body["content"]
    tool = next((b for b in blocks if b.get("type") == "tool_use"), None)
    if tool is not None:
        raw = tool_call_text(tool["name"], tool.get("input") or {})
    else:
        raw = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    usage = body.get("usage") or {}
    read = int(usage.get("cache_read_input_tokens") or 0)
    created = int(usage.get("cache_creation_input_tokens") or 0)
    return raw, Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + read + created,
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=read,
    ), {"finish_reason": body.get("stop_reason")}


class AnthropicMessagesBackend(AnthropicBatch, HttpBackend):
    """Anthropic Messages over the shared `JsonClient` (settings in the module docstring); the
    Message Batches API with `taskc eval --batch` (taskc/backends/anthropic_batch.py)."""

    name = "anthropic"
    constrained = True  # output_config json_schema and forced tool_choice are enforced

    def __init__(
        self,
        model: str,
        base_url: str = ANTHROPIC_URL,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        extra_body: dict[str, Any] | None = None,
        default_max_tokens: int = 1024,
    ) -> None:
        self.model = model
        base = base_url.rstrip("/")
        self.base_url = base[: -len("/v1")] if base.endswith("/v1") else base
        self._check_endpoint(self.base_url, api_key_env)
        self.url = join_url(self.base_url, "/v1/messages")
        self.extra_body = dict(extra_body or {})
        self.default_max_tokens = default_max_tokens
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env) if api_key_env else None
        if not key and not is_local(self.base_url):
            raise MissingKey("anthropic", redact_url(self.base_url), api_key_env)
        self._key = key or ""
        self._headers = {"anthropic-version": API_VERSION}
        if key:
            self._headers["x-api-key"] = key

    @classmethod
    def from_config(cls, config, contract) -> "AnthropicMessagesBackend":
        """From models.yaml / the command line: model, base_url, api_key_env."""
        return cls(model=config.model, base_url=config.base_url or ANTHROPIC_URL,
                   api_key_env=config.api_key_env or "ANTHROPIC_API_KEY")

    def __repr__(self) -> str:
        return f"AnthropicMessagesBackend(model={self.model!r}, base_url={redact_url(self.base_url)!r})"

    def render(self, request: Request) -> dict[str, Any]:
        """The Messages payload for `request` (pure; no key)."""
        gen = request.generation.as_dict()
        system = [m["content"] for m in request.messages if m.get("role") == "system"]
        messages = [{"role": m["role"], "content": m["content"]} for m in request.messages if m.get("role") != "system"]
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": gen.get("max_tokens") or self.default_max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = "\n\n".join(s if isinstance(s, str) else compact_json(s) for s in system)
        for key in _PARAMS:
            if gen.get(key) is not None:
                body[key] = gen[key]
        stop = gen.get("stop")
        if stop:
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        body.update(self._constraint_fields(request))
        body.update(self.extra_body)
        return body

    def _constraint_fields(self, request: Request) -> dict[str, Any]:
        kind, c = request.output_kind, request.constraint
        if kind == "tool_call" and request.tools:
            tools = []
            for t in request.tools:
                tool: dict[str, Any] = {"name": t["name"]}
                if t.get("description"):
                    tool["description"] = t["description"]
                tool["input_schema"] = t.get("parameters") or {"type": "object", "properties": {}}
                tools.append(tool)
            return {"tools": tools, "tool_choice": {"type": "any"}}
        schema = None
        if kind == "label" and c is not None and c.type == "choice":
            schema = wrap_label_schema(request.name, c.choices or ())
        elif kind == "object":
            schema = request.strict_schema or (c.schema if c is not None and c.schema_json else None)
        if schema is None:
            return {}
        return {"output_config": {"format": {"type": "json_schema", "schema": schema}}}

    def postprocess(self, raw: str, request: Request) -> str:
        """Unwrap a label from its `{"<name>": ...}` object."""
        if request.output_kind == "label" and request.constraint is not None:
            return unwrap_label(raw, request.name)
        return raw

    def read_answer(self, body: Any) -> tuple[str, Usage, dict[str, Any]]:
        """Text (or the forced tool call) and usage, with the stop reason."""
        return read_message(body)
