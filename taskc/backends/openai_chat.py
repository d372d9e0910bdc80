"""The `openai` backend: Chat Completions against any OpenAI-compatible endpoint.

Settings: `model`, `base_url` (default https://api.openai.com/v1), `api_key_env` (default
OPENAI_API_KEY; the key is optional for localhost), `mode` (see below; default chosen from the
host), `extra_body` (merged into every payload last), `drop_unsupported` (default True: on
api.openai.com, omit temperature/top_p for reasoning models (o1/o3/o4/gpt-5*), which reject any
value but the default).

How each output kind's constraint is lowered, per `mode`:

| mode        | used for (default by host)        | label                          | object                              | tool_call                                   | sql / text |
|-------------|-----------------------------------|--------------------------------|-------------------------------------|---------------------------------------------|------------|
| openai      | api.openai.com                    | response_format json_schema, strict, `{"<name>": enum}` (unwrapped on parse) | response_format json_schema strict, `request.strict_schema` | `tools` with `strict: true`, strict parameters, `tool_choice: "required"`, `parallel_tool_calls: false` | none |
| vllm        | any other host (vLLM, SGLang ...) | `structured_outputs: {"choice": [...]}` | `structured_outputs: {"json": schema}` | `structured_outputs: {"json": schema}` of the `{"name","parameters"}` output (no `tools`) | sql: `{"grammar": lark}`; regex: `{"regex": ...}`; text: none |
| json_schema | api.x.ai, Gemini, Together        | as openai, `strict: false`     | response_format json_schema, `strict: false`, the contract schema | `tools` (not strict), `tool_choice: "required"` | none |
| json_object | providers with JSON mode only     | none                           | `response_format: {"type": "json_object"}` | as json_schema                       | none |
| none        | prompt-only                       | none                           | none                                | none                                        | none |

The removed vLLM `guided_*` fields are never emitted (vLLM >= 0.12 ignores them silently).
`parse` returns the message content, or the first tool call as compact
`{"name":...,"parameters":{...}}` JSON; strict-mode nulls for optional tool parameters are dropped.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from taskc.backends.base import (
    BackendUnavailable,
    HttpBackend,
    MissingKey,
    schema_name,
    tool_call_text,
    unwrap_label,
    wrap_label_schema,
)
from taskc.backends.openai_batch import OpenAIBatch
from taskc.common.encoding import loads
from taskc.common.endpoints import is_local, join_url, redact_url
from taskc.compiler.schemas import drop_strict_nulls, to_strict
from taskc.constraints.lower import to_vllm_structured_outputs
from taskc.runner.types import Request, Usage

OPENAI_URL = "https://api.openai.com/v1"
MODES = ("openai", "vllm", "json_schema", "json_object", "none")
_JSON_SCHEMA_HOSTS = ("api.x.ai", "generativelanguage.googleapis.com", "api.together.xyz", "api.together.ai")
_REASONING = re.compile(r"^(o\d|gpt-5)")
_COMMON_PARAMS = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty",
                  "logit_bias", "reasoning_effort", "verbosity", "service_tier", "user")
_VLLM_PARAMS = ("top_k", "min_p", "repetition_penalty", "min_tokens")


def default_mode(base_url: str) -> str:
    """The lowering mode for an endpoint: `openai` for api.openai.com, `json_schema` for the
    hosted providers listed above, `vllm` otherwise (a self-hosted server)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "api.openai.com":
        return "openai"
    if any(host == h or host.endswith("." + h) for h in _JSON_SCHEMA_HOSTS):
        return "json_schema"
    return "vllm"


def _tool(tool: dict[str, Any], strict: bool) -> dict[str, Any]:
    params = tool.get("parameters") or {"type": "object", "properties": {}}
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = to_strict(params) if strict else params
    if strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def usage_of(raw: dict[str, Any] | None) -> Usage:
    """Token counts of a Chat Completions `usage` object (zeros where it has none)."""
    raw = raw or {}
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_input_tokens=int(details.get("cached_tokens") or 0),
    )


def read_completion(body: dict[str, Any]) -> tuple[str, Usage, dict[str, Any]]:
    """(raw text, usage, extra) of a Chat Completions response: the first choice's content, or
    its first tool call as compact `{"name","parameters"}` JSON; extra holds the finish reason
    and any refusal."""
    choice = body["choices"][0]
    message = choice["message"]
    calls = message.get("tool_calls") or []
    if calls:
        function = calls[0]["function"]
        raw = tool_call_text(function["name"], function.get("arguments") or "{}")
    else:
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        raw = content or ""
    extra: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
    if message.get("refusal"):
        extra["refusal"] = message["refusal"]
    return raw, usage_of(body.get("usage")), extra


class ChatStream:
    """Accumulates a streamed Chat Completions answer (`stream: true`), chunk by chunk.

    `feed(chunk)` returns True when the chunk carried output (text or a tool-call part), which is
    what time-to-first-token measures; `answer()` gives what `read_completion` gives for the same
    answer unstreamed. A chunk with an `error` makes `error` the provider's message.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.error: str | None = None

    def feed(self, chunk: Any) -> bool:
        """Take one `data:` object; True when it carried output."""
        if not isinstance(chunk, dict):
            self.error = self.error or f"malformed stream chunk: {str(chunk)[:80]}"
            return False
        if chunk.get("error"):
            err = chunk["error"]
            self.error = f"stream error: {err.get('message') if isinstance(err, dict) else err}"
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        carried = False
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                self.parts.append(text)
                carried = True
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(call.get("index", 0), {"name": "", "arguments": ""})
                fn = call.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
                carried = True
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return carried

    def answer(self) -> tuple[str, Usage, dict[str, Any]]:
        """(raw text, usage, extra) of the whole stream."""
        if self.calls:
            first = self.calls[min(self.calls)]
            raw = tool_call_text(first["name"], first["arguments"] or "{}")
        else:
            raw = "".join(self.parts)
        return raw, usage_of(self.usage), {"finish_reason": self.finish_reason}


class OpenAIChatBackend(OpenAIBatch, HttpBackend):
    """Chat Completions over the shared `JsonClient` (see the module docstring for settings);
    the Batch API with `taskc eval --batch` (taskc/backends/openai_batch.py)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = OPENAI_URL,
        api_key_env: str | None = "OPENAI_API_KEY",
        mode: str | None = None,
        extra_body: dict[str, Any] | None = None,
        drop_unsupported: bool = True,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._check_endpoint(self.base_url, api_key_env)
        self.mode = mode or default_mode(self.base_url)
        if self.mode not in MODES:
            raise BackendUnavailable(f"unknown --mode '{self.mode}' for the openai backend (known: {', '.join(MODES)})")
        self.extra_body = dict(extra_body or {})
        self.drop_unsupported = drop_unsupported
        self.api_key_env = api_key_env
        self.url = join_url(self.base_url, "/chat/completions")
        self._official = (urlsplit(self.base_url).hostname or "") == "api.openai.com"
        key = os.environ.get(api_key_env) if api_key_env else None
        if not key and not is_local(self.base_url):
            raise MissingKey("openai", redact_url(self.base_url), api_key_env)
        self._key = key or ""
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    @classmethod
    def from_config(cls, config, contract) -> "OpenAIChatBackend":
        """From models.yaml / the command line: model, base_url, api_key_env, mode."""
        return cls(model=config.model, base_url=config.base_url or OPENAI_URL,
                   api_key_env=config.api_key_env or "OPENAI_API_KEY", mode=config.mode)

    def __repr__(self) -> str:
        return f"OpenAIChatBackend(model={self.model!r}, base_url={redact_url(self.base_url)!r}, mode={self.mode!r})"

    @property
    def constrained(self) -> bool:
        """Whether the provider is sent a constraint it promises to enforce (the summary flags
        invalid outputs from such a backend as a dropped grammar)."""
        return self.mode in ("openai", "vllm")

    def render(self, request: Request) -> dict[str, Any]:
        """The Chat Completions payload for `request` (pure; no key)."""
        gen = request.generation.as_dict()
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in request.messages]}
        names = _COMMON_PARAMS + (_VLLM_PARAMS if self.mode == "vllm" else ())
        drop = self.drop_unsupported and self._official and _REASONING.match(self.model)
        for key in names:
            if gen.get(key) is not None and not (drop and key in ("temperature", "top_p") and gen[key] != 1):
                body[key] = gen[key]
        if gen.get("max_tokens") is not None:
            body["max_completion_tokens" if self._official else "max_tokens"] = gen["max_tokens"]
        body.update(self._constraint_fields(request))
        body.update(self.extra_body)
        return body

    def _constraint_fields(self, request: Request) -> dict[str, Any]:
        kind, mode, c = request.output_kind, self.mode, request.constraint
        if mode == "none":
            return {}
        if mode == "vllm":  # the server flags the contract gives (see requests/vllm_server.json)
            so = to_vllm_structured_outputs(c)
            return {"structured_outputs": so} if so is not None else {}
        strict = mode == "openai"
        if kind == "tool_call" and request.tools:
            out: dict[str, Any] = {"tools": [_tool(t, strict) for t in request.tools], "tool_choice": "required"}
            if strict:
                out["parallel_tool_calls"] = False
            return out
        if kind == "label" and c is not None and c.type == "choice" and mode != "json_object":
            schema = wrap_label_schema(request.name, c.choices or ())
            return {"response_format": {"type": "json_schema", "json_schema": {
                "name": schema_name(request.name), "strict": strict, "schema": schema}}}
        if kind == "object":
            if mode == "json_object":
                return {"response_format": {"type": "json_object"}}
            contract = c.schema if c is not None and c.schema_json else None
            schema = (request.strict_schema or contract) if strict else (contract or request.strict_schema)
            if schema is not None:
                return {"response_format": {"type": "json_schema", "json_schema": {
                    "name": schema_name(request.name), "strict": strict, "schema": schema}}}
        return {}

    def postprocess(self, raw: str, request: Request) -> str:
        """Undo the provider-side wrapping: unwrap a label object, drop strict-mode nulls from
        a tool call's optional parameters."""
        if self.mode in ("openai", "json_schema") and request.output_kind == "label" and request.constraint is not None:
            return unwrap_label(raw, request.name)
        if self.mode == "openai" and request.output_kind == "tool_call" and request.tools:
            try:
                call = loads(raw)
            except ValueError:
                return raw
            if isinstance(call, dict) and isinstance(call.get("parameters"), dict):
                tool = next((t for t in request.tools if t["name"] == call.get("name")), None)
                if tool is not None:
                    params = drop_strict_nulls(call["parameters"], tool.get("parameters") or {})
                    return tool_call_text(call["name"], params)
        return raw

    def read_answer(self, body: Any) -> tuple[str, Usage, dict[str, Any]]:
        """Text and usage of the first choice, its finish reason and any refusal."""
        return read_completion(body)
