"""What a backend is: a pure `render` and an async `generate_one` (or batched `generate`).

Retries, caching, concurrency and progress live once in `taskc.runner.engine`; a backend only
turns a `Request` into a provider payload and a provider answer into a `Result`.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from taskc.runner.http import JsonClient
from taskc.runner.types import Request, Result, Usage


class BackendUnavailable(RuntimeError):
    """A backend cannot be used here: a missing optional dependency or missing configuration.
    The message says how to fix it and never holds a secret."""


class Backend:
    """Base class of every backend.

    Class attributes a subclass sets:
    - `name`: the registry name (`openai`, `anthropic`, `replay`, ...);
    - `batched`: True when `generate(requests, client)` takes the whole list at once (in-process
      engines, replay, baselines), False when the runner calls `generate_one` per request with
      bounded concurrency;
    - `cacheable`: whether results go through the on-disk cache;
    - `needs_http`: whether the runner must hand it a `JsonClient`.
    """

    name: str = "backend"
    batched: bool = False
    cacheable: bool = True
    needs_http: bool = False
    model: str = ""

    def render(self, request: Request) -> dict[str, Any]:
        """The exact payload this backend would send for `request` (pure; no secrets)."""
        raise NotImplementedError

    async def generate_one(self, request: Request, client: JsonClient | None) -> Result:
        """Answer one request (per-request backends)."""
        raise NotImplementedError

    async def generate(self, requests: Sequence[Request], client: JsonClient | None) -> list[Result]:
        """Answer all requests at once, in order (batched backends)."""
        return [await self.generate_one(r, client) for r in requests]

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in an error message (API keys)."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


class HttpBackend(Backend):
    """A provider API reached through the runner's `JsonClient`: `generate_one` POSTs
    `render(request)` to `url` with `_headers`, turns an HTTP failure into `Result.error`, reads
    a 2xx body with `read_answer` (a body it cannot read is a "malformed response" error, never
    an exception) and applies `postprocess` to the text."""

    needs_http = True
    url: str = ""
    _headers: dict[str, str] = {}

    def read_answer(self, body: Any) -> tuple[str, Usage, dict[str, Any]]:
        """(raw text, usage, extra fields for the result) from a 2xx response body."""
        raise NotImplementedError

    def postprocess(self, raw: str, request: Request) -> str:
        """Undo provider-side wrapping of the answer (none by default)."""
        return raw

    async def generate_one(self, request: Request, client: JsonClient | None) -> Result:
        """Send one request through the shared client and parse the answer."""
        assert client is not None, f"the {self.name} backend needs the runner's JsonClient"
        resp = await client.post_json(self.url, self.render(request), self._headers)
        base = dict(index=request.index, repeat=request.repeat, attempts=resp.attempts, latency_s=resp.latency_s)
        if not resp.ok:
            return Result(raw=None, error=resp.error, **base)
        try:
            raw, usage, extra = self.read_answer(resp.body)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            return Result(raw=None, error=f"malformed response: {type(exc).__name__}: {exc}", **base)
        return Result(raw=self.postprocess(raw, request), usage=usage, extra=extra, **base)


def compact_json(value: Any) -> str:
    """JSON text without spaces, keys in the order given, UTF-8 kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def tool_call_text(name: str, arguments: Any) -> str:
    """A tool call as the contract's raw output: `{"name":...,"parameters":{...}}`, compact.

    `arguments` may be a dict or a JSON string (OpenAI sends a string); a string that is not
    JSON is spliced in as it came, so the output stays invalid rather than being repaired.
    """
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return '{"name":' + compact_json(name) + ',"parameters":' + arguments + "}"
    return compact_json({"name": name, "parameters": arguments})


def last_user_text(request: Request) -> str:
    """The content of the last user message (the rendered test row)."""
    for message in reversed(request.messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else compact_json(content)
    return ""


def wrap_label_schema(property_name: str, labels: Sequence[str]) -> dict[str, Any]:
    """The object schema a label is wrapped in where providers only take objects:
    `{"<property_name>": one of labels}`."""
    return {
        "type": "object",
        "properties": {property_name: {"type": "string", "enum": list(labels)}},
        "required": [property_name],
        "additionalProperties": False,
    }


def unwrap_label(raw: str, property_name: str) -> str:
    """The label inside `{"<property_name>": "..."}`; the text unchanged when it is not that."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, dict) and isinstance(value.get(property_name), str):
        return value[property_name]
    return raw


def schema_name(name: str) -> str:
    """A name OpenAI accepts for a json_schema (`^[a-zA-Z0-9_-]{1,64}$`)."""
    cleaned = "".join(ch if ch.isalnum() and ch.isascii() or ch in "_-" else "_" for ch in name)
    return (cleaned or "output")[:64]
