"""A local fake of the OpenAI Chat Completions and Anthropic Messages APIs, over real HTTP.

`FakeProvider` runs an aiohttp server on 127.0.0.1 (a free port) in a background thread:

    with FakeProvider(answers={"hi": "hello"}) as fake:
        fake.openai_base_url      # http://127.0.0.1:P/v1  (openai SDK, taskc openai backend)
        fake.anthropic_base_url   # http://127.0.0.1:P     (anthropic SDK, taskc anthropic backend)
        fake.fail_next(2, status=429, retry_after="1")
        ...
        fake.requests             # every request: path, headers (keys REDACTED), body

Bodies follow the real APIs field for field (see `openai_body`, `anthropic_body`). The answer
is `responder(api, body)` when given, else `answers[last user message]`, else `default_answer`.
With tools and a forced choice (`tool_choice: "required"`/a named function, or Anthropic's
`{"type": "any"|"tool"}`) it answers with a tool call: the answer when it is a
`{"name","parameters"}` object (or JSON text of one), else the first allowed tool with `{}`.
A response_format / output_config JSON Schema that wraps one string property wraps a plain
answer in it, as a model following the schema would.

Scripting: `script(*actions)` queues one action per coming request: `{"status": 429,
"retry_after": "1"}`, `{"status": 500}`, `{"delay": 2.0}`, `{"status": 401, "echo_key": True}`
(the error message repeats the key received, like OpenAI's invalid-key message).
`delay_s` slows every reply. Command line (for benches):
`python -m tests.fakes.provider_server --port P [--workers N] [--delay S] [--no-record]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

Answer = Any  # str, or a {"name","parameters"} dict for tool calls
REDACTED = "REDACTED"
_SECRET_HEADERS = ("authorization", "x-api-key", "api-key")
_OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
}

_ANTHROPIC_MESSAGES = {
    "rate_limit_error": "This request would exceed the rate limit for your organization. Please try again later.",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
    "authentication_error": "invalid x-api-key",
}


@dataclass(frozen=True)
class Recorded:
    """One request as the fake saw it (header names lower-cased, credential headers REDACTED)."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float


def _words(text: Any) -> int:
    if isinstance(text, str):
        return len(text.split())
    if isinstance(text, list):
        return sum(_words(p.get("text", "")) if isinstance(p, dict) else 0 for p in text)
    return 0


def last_user(body: dict[str, Any]) -> str:
    """The text of the last user message of a request body."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""


def _as_call(answer: Answer, allowed: list[str]) -> tuple[str, dict[str, Any]]:
    value = answer
    if isinstance(answer, str):
        try:
            value = json.loads(answer)
        except ValueError:
            value = None
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"] in allowed:
        return value["name"], value.get("parameters") or value.get("arguments") or {}
    return allowed[0], {}


def _wrap_for_schema(answer: str, schema: dict[str, Any] | None) -> str:
    """A plain answer wrapped in the single string property of `schema`, when it has one."""
    if not isinstance(schema, dict) or not isinstance(answer, str):
        return answer
    props = schema.get("properties") or {}
    if len(props) == 1:
        (name, sub), = props.items()
        if isinstance(sub, dict) and sub.get("type") == "string":
            try:
                json.loads(answer)
                return answer
            except ValueError:
                return json.dumps({name: answer}, separators=(",", ":"))
    return answer


def openai_body(body: dict[str, Any], answer: Answer, seq: int, cached_tokens: int = 0) -> dict[str, Any]:
    """A `chat.completion` object as the OpenAI API returns it."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    forced = tools and (choice == "required" or (isinstance(choice, dict) and choice.get("type") == "function"))
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if forced:
        allowed = [t["function"]["name"] for t in tools]
        if isinstance(choice, dict):
            allowed = [choice["function"]["name"]]
        name, params = _as_call(answer, allowed)
        message["tool_calls"] = [{"id": f"call_{seq:024x}", "type": "function",
                                  "function": {"name": name, "arguments": json.dumps(params)}}]
        finish, text = "tool_calls", message["tool_calls"][0]["function"]["arguments"]
    else:
        text = answer if isinstance(answer, str) else json.dumps(answer)
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema":
            text = _wrap_for_schema(text, (rf.get("json_schema") or {}).get("schema"))
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit and _words(text) > limit:
            text, finish = " ".join(text.split()[:limit]), "length"
        message["content"] = text
    prompt = sum(_words(m.get("content")) for m in body.get("messages") or []) + 3
    completion = max(1, _words(text))
    return {
        "id": f"chatcmpl-{seq:029x}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        },
        "service_tier": "default", "system_fingerprint": "fp_fake0001",
    }


def anthropic_body(body: dict[str, Any], answer: Answer, seq: int, cached_tokens: int = 0) -> dict[str, Any]:
    """A `message` object as the Anthropic Messages API returns it."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if tools and choice.get("type") in ("any", "tool"):
        allowed = [choice["name"]] if choice.get("type") == "tool" else [t["name"] for t in tools]
        name, params = _as_call(answer, allowed)
        content = [{"type": "tool_use", "id": f"toolu_{seq:024x}", "name": name, "input": params}]
        stop, out_words = "tool_use", _words(json.dumps(params)) + 1
    else:
        text = answer if isinstance(answer, str) else json.dumps(answer)
        fmt = (body.get("output_config") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            text = _wrap_for_schema(text, fmt.get("schema"))
        stop = "end_turn"
        if _words(text) > body["max_tokens"]:
            text, stop = " ".join(text.split()[: body["max_tokens"]]), "max_tokens"
        content = [{"type": "text", "text": text}]
        out_words = max(1, _words(text))
    system = body.get("system")
    prompt = sum(_words(m.get("content")) for m in body["messages"]) + _words(system) + 3
    return {
        "id": f"msg_{seq:024x}", "type": "message", "role": "assistant", "model": body.get("model", ""),
        "content": content, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": out_words,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached_tokens,
                  "service_tier": "standard"},
    }


@dataclass
class FakeProvider:
    """The fake server (see the module docstring). Start with `start()` or `with`."""

    answers: dict[str, Answer] = field(default_factory=dict)
    default_answer: Answer = "ok"
    responder: Callable[[str, dict[str, Any]], Answer] | None = None
    delay_s: float = 0.0
    cached_tokens: int = 0
    record: bool = True
    port: int = 0

    def __post_init__(self) -> None:
        self.requests: list[Recorded] = []
        self.count = 0
        self._script: deque[dict[str, Any]] = deque()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    # --- scripting -----------------------------------------------------------------------
    def script(self, *actions: dict[str, Any]) -> None:
        """Queue one action per coming request (see the module docstring)."""
        with self._lock:
            self._script.extend(actions)

    def fail_next(self, n: int, status: int = 429, retry_after: str | None = None, **extra: Any) -> None:
        """The next `n` requests fail with `status` (and a Retry-After header when given)."""
        self.script(*({"status": status, "retry_after": retry_after, **extra} for _ in range(n)))

    def reset(self) -> None:
        """Forget recorded requests, the count and any queued actions."""
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self.count = 0

    # --- the app ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        return app

    def _take(self, request: web.Request, body: Any) -> dict[str, Any] | None:
        with self._lock:
            self.count += 1
            if self.record:
                headers = {k.lower(): (REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in request.headers.items()}
                self.requests.append(Recorded(request.path, headers, body, time.time()))
            return self._script.popleft() if self._script else None

    def _answer(self, api: str, body: dict[str, Any]) -> Answer:
        if self.responder is not None:
            return self.responder(api, body)
        return self.answers.get(last_user(body), self.default_answer)

    async def _prelude(self, request: web.Request, api: str):
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        action = self._take(request, body)
        delay = self.delay_s + float((action or {}).get("delay", 0))
        if delay:
            await asyncio.sleep(delay)
        if body is None or not isinstance(body, dict):
            return None, self._error(api, 400, "Could not parse the JSON body of your request.", {})
        if action and action.get("status"):
            message = action.get("message")
            if action.get("echo_key"):
                key = request.headers.get("x-api-key") or request.headers.get("authorization", "")[7:]
                message = f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid."
            return None, self._error(api, int(action["status"]), message, action)
        return body, None

    def _error(self, api: str, status: int, message: str | None, action: dict[str, Any]) -> web.Response:
        headers = {}
        if action.get("retry_after") is not None:
            headers["retry-after"] = str(action["retry_after"])
        if action.get("retry_after_ms") is not None:
            headers["retry-after-ms"] = str(action["retry_after_ms"])
        if api == "openai":
            kind, code, default = _OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error."))
            payload: dict[str, Any] = {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
        else:
            kind = _ANTHROPIC_ERRORS.get(status, "api_error")
            default = _ANTHROPIC_MESSAGES.get(kind, kind.replace("_", " "))
            payload = {"type": "error", "error": {"type": kind, "message": message or default},
                       "request_id": f"req_{next(self._seq):024x}"}
        return web.json_response(payload, status=status, headers=headers)

    async def _openai(self, request: web.Request) -> web.Response:
        body, error = await self._prelude(request, "openai")
        if error is not None:
            return error
        if not body.get("model") or not isinstance(body.get("messages"), list):
            return self._error("openai", 400, "you must provide a model parameter and messages", {})
        out = openai_body(body, self._answer("openai", body), next(self._seq), self.cached_tokens)
        return web.Response(body=json.dumps(out).encode(), content_type="application/json")

    async def _anthropic(self, request: web.Request) -> web.Response:
        body, error = await self._prelude(request, "anthropic")
        if error is not None:
            return error
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return self._error("anthropic", 400, f"{name}: Field required", {})
        if any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
            return self._error("anthropic", 400, 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.', {})
        out = anthropic_body(body, self._answer("anthropic", body), next(self._seq), self.cached_tokens)
        return web.Response(body=json.dumps(out).encode(), content_type="application/json",
                            headers={"request-id": f"req_{out['id'][4:]}"})

    # --- running in a thread ----------------------------------------------------------------
    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The base URL for OpenAI clients (with /v1)."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The base URL for Anthropic clients (without /v1)."""
        return self.url

    def start(self) -> "FakeProvider":
        """Serve in a background thread; returns self once listening."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.SockSite(self._runner, sock).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"fake-provider-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground (for benches); `--workers N` forks N processes on one port."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--answer", default="ok")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    children = []
    if args.workers > 1:
        cmd = [sys.executable, "-m", "tests.fakes.provider_server", "--port", str(args.port), "--workers", "1",
               "--delay", str(args.delay), "--answer", args.answer] + (["--no-record"] if args.no_record else [])
        children = [subprocess.Popen(cmd) for _ in range(args.workers - 1)]
    try:
        import uvloop  # type: ignore[import-not-found]

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    fake = FakeProvider(default_answer=args.answer, delay_s=args.delay, record=not args.no_record)
    try:
        web.run_app(fake.app(), host="127.0.0.1", port=args.port, reuse_port=True, access_log=None,
                    print=lambda *a: print(f"fake provider pid {os.getpid()} on port {args.port}", flush=True))
    finally:
        for child in children:
            child.terminate()


if __name__ == "__main__":
    main()
