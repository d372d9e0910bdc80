"""What a backend is: a pure `render` and an async `generate_one` (or batched `generate`).

Retries, caching, concurrency and progress live once in `taskc.runner.engine`; a backend only
turns a `Request` into a provider payload and a provider answer into a `Result`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

from taskc.common.encoding import compact_json
from taskc.common.endpoints import has_credentials, is_local, redact_url, url_secrets
from taskc.runner.http import JsonClient
from taskc.runner.types import Request, Result, Usage

if TYPE_CHECKING:
    from taskc.backends.config import ModelConfig


class BackendUnavailable(RuntimeError):
    """A backend cannot be used here: a missing optional dependency or missing configuration.
    The message says how to fix it and never holds a secret."""


class MissingKey(BackendUnavailable):
    """No API key for a remote endpoint: `env` names the variable that should hold it."""

    def __init__(self, backend: str, url: str, env: str | None) -> None:
        self.env = env
        where = f"set ${env}" if env else "name the variable holding it with --api-key-env"
        super().__init__(f"the {backend} backend needs an API key for {url}: {where}")


class Backend:
    """Base class of every backend.

    Class attributes a subclass sets:
    - `name`: the registry name (`openai`, `anthropic`, `replay`, ...);
    - `batched`: True when `generate(requests, client)` takes the whole list at once (in-process
      engines, replay, baselines), False when the runner calls `generate_one` per request with
      bounded concurrency;
    - `cacheable`: whether results go through the on-disk cache;
    - `needs_http`: whether the runner must hand it a `JsonClient`;
    - `constrained`: whether the provider is sent a constraint it promises to enforce (a run
      whose outputs break the contract anyway is flagged as a dropped grammar);
    - `remote`: whether answers come from a paid endpoint off this machine (each answer is then
      committed to the cache as it arrives);
    - `supports_batch`: whether the provider has a batch API (`taskc eval --batch`, see
      `taskc.runner.batch`);
    - `chunk_size`: a batched backend is handed at most this many requests per `generate` call
      (None: all), so that results are delivered, cached and written as each chunk ends and a
      Ctrl-C stops after the chunk in flight.

    The runner renders each request once (`render`) for its cache key and hands that payload
    back to `generate_one` / `generate`, so what is cached is exactly what is sent.
    """

    name: str = "backend"
    batched: bool = False
    cacheable: bool = True
    needs_http: bool = False
    constrained: bool = False
    remote: bool = False
    supports_batch: bool = False
    chunk_size: int | None = None
    model: str = ""

    @classmethod
    def from_config(cls, config: ModelConfig, contract: Any) -> "Backend":
        """The backend for one configured model (each class reads the fields it uses)."""
        return cls(model=config.model)  # type: ignore[call-arg]

    def render(self, request: Request) -> dict[str, Any]:
        """The exact payload this backend would send for `request` (pure; no secrets)."""
        raise NotImplementedError

    async def generate_one(self, request: Request, client: JsonClient | None, payload: Any = None) -> Result:
        """Answer one request (per-request backends); `payload` is `render(request)` when the
        caller has it already."""
        raise NotImplementedError

    async def generate(self, requests: Sequence[Request], client: JsonClient | None,
                       payloads: Sequence[Any] | None = None) -> list[Result]:
        """Answer all requests at once, in order (batched backends); `payloads` as in
        `generate_one`."""
        if payloads is None:
            return [await self.generate_one(r, client) for r in requests]
        return [await self.generate_one(r, client, p) for r, p in zip(requests, payloads)]

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in an error message (API keys)."""
        return ()

    @property
    def cache_identity(self) -> str:
        """What names the model in the result cache's keys: the model id; for a model folder on
        this machine also its files' sizes and times, so a folder trained again is a new model."""
        return self.model

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
    _key: str = ""

    def _check_endpoint(self, base_url: str, api_key_env: str | None) -> None:
        """Refuse a base URL with `user:password@` once, with the fix, rather than failing every
        request (the key travels as a header, from an environment variable)."""
        if has_credentials(base_url):
            raise BackendUnavailable(
                f"--base-url {redact_url(base_url)} carries credentials (user:password@ in the URL); taskc sends the "
                f"API key as a header: put it in an environment variable and name it with --api-key-env "
                f"(or api_key_env: in models.yaml){f', e.g. ${api_key_env}' if api_key_env else ''}")

    def secrets(self) -> tuple[str, ...]:
        """The API key and any credential in the endpoint's URL, for scrubbing error text."""
        return tuple(s for s in ((self._key,) if self._key else ()) + url_secrets(self.url) if s)

    @property
    def headers(self) -> dict[str, str]:
        """The request headers (credentials included: never write them anywhere)."""
        return dict(self._headers)

    @property
    def remote(self) -> bool:  # type: ignore[override]
        """True unless the endpoint is on this machine (loopback)."""
        return not is_local(self.url)

    def read_answer(self, body: Any) -> tuple[str, Usage, dict[str, Any]]:
        """(raw text, usage, extra fields for the result) from a 2xx response body."""
        raise NotImplementedError

    def postprocess(self, raw: str, request: Request) -> str:
        """Undo provider-side wrapping of the answer (none by default)."""
        return raw

    async def generate_one(self, request: Request, client: JsonClient | None, payload: Any = None) -> Result:
        """Send one request through the shared client and parse the answer."""
        assert client is not None, f"the {self.name} backend needs the runner's JsonClient"
        resp = await client.post_json(self.url, self.render(request) if payload is None else payload, self._headers)
        base = dict(index=request.index, repeat=request.repeat, attempts=resp.attempts, latency_s=resp.latency_s)
        if not resp.ok:
            return Result(raw=None, error=resp.error, **base)
        return self.result_from_body(request, resp.body, **base)

    def result_from_body(self, request: Request, body: Any, **base: Any) -> Result:
        """The Result of a 2xx response body (a synchronous answer or a batch item): read by
        `read_answer` and `postprocess`; a body it cannot read is a "malformed response" error."""
        try:
            raw, usage, extra = self.read_answer(body)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            return Result(raw=None, error=f"malformed response: {type(exc).__name__}: {exc}", **base)
        return Result(raw=self.postprocess(raw, request), usage=usage, extra=extra, **base)


def folder_fingerprint(path: str) -> str:
    """`path` itself for a model id; for a local model folder, `path@<12 hex>` of its top-level
    files' names, sizes and modification times (cheap: no file is read)."""
    import hashlib
    import os

    if not os.path.isdir(path):
        return path
    h = hashlib.sha256()
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_file():
            stat = entry.stat()
            h.update(f"{entry.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"{path}@{h.hexdigest()[:12]}"


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
