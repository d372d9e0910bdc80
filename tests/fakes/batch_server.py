"""A local fake of the OpenAI Batch API and the Anthropic Message Batches API, over real HTTP.

`FakeBatchProvider` is a `FakeProvider` (tests/fakes/provider_server.py: the synchronous
endpoints, scripting with `script`/`fail_next`, which apply to the batch routes too) that also
serves:

OpenAI (base `fake.openai_base_url`):
    POST /v1/files (multipart, purpose=batch)      -> a `file` object
    GET  /v1/files/{id}, /v1/files/{id}/content    -> the object, the bytes
    POST /v1/batches                                -> a `batch` object (status validating)
    GET  /v1/batches/{id}, GET /v1/batches          -> the batch (advanced one step per poll), a list
    POST /v1/batches/{id}/cancel                    -> cancelling (cancelled at the next poll)
Anthropic (base `fake.anthropic_base_url`):
    POST /v1/messages/batches                       -> a `message_batch` (in_progress)
    GET  /v1/messages/batches/{id}, GET .../batches -> the batch, a list
    POST /v1/messages/batches/{id}/cancel           -> canceling (ended at the next poll)
    GET  <results_url>                              -> JSONL results; the URL is deliberately NOT
                                                       {id}/results, so a client must follow it

Both validate what the real APIs validate (custom_id unique, and for Anthropic
`^[a-zA-Z0-9_-]{1,64}$`; method/url/body.model; one model per OpenAI file; completion_window
24h; `max_requests` and `max_bytes` limits: an OpenAI batch over them fails validation with
`errors.data`, an Anthropic one is refused with HTTP 413/400). A batch ends after `polls_to_end`
polls (never while `hold` is True). Output lines come back in a shuffled order (`seed`).

Per-item outcomes: `outcome(api, custom_id, params)` returns "succeeded" (default), "errored"
(an HTTP 400 answer in OpenAI's error file / an `errored` result), "expired" (the batch itself
then ends as `expired` on OpenAI; an `expired` result on Anthropic), or "malformed" (a
succeeded line whose body has no choices/content). `garbage_lines` appends unreadable lines;
`malformed_batch` makes GET batch answer an object without its status field.

Recorded: `raw_bodies` (path, bytes of every synchronous POST), `batches` (id -> the fake's own
record: the input entries' bytes and parsed bodies, status), `created` (how many batches were
created), `polls` (every GET of a batch), `results_fetches` (paths of every results download).
The routes live in tests/fakes/batch_openai.py and tests/fakes/batch_anthropic.py.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from tests.fakes.batch_anthropic import AnthropicBatchRoutes
from tests.fakes.batch_openai import OpenAIBatchRoutes
from tests.fakes.provider_server import FakeProvider


@dataclass
class FakeBatch:
    """The fake's record of one batch."""

    id: str
    api: str
    lines: list[bytes]  # the raw input entries (OpenAI: file lines; Anthropic: each request)
    items: list[dict[str, Any]]  # parsed
    created_at: float
    status: str
    polls: int = 0
    input_file_id: str | None = None
    metadata: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: bytes | None = None
    cancel_requested: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    times: dict[str, int | None] = field(default_factory=dict)


class FakeBatchProvider(OpenAIBatchRoutes, AnthropicBatchRoutes, FakeProvider):
    """The synchronous fake plus both batch APIs (see the module docstring)."""

    def __init__(self, *args: Any, polls_to_end: int = 1, max_requests: int = 50_000,
                 max_bytes: int = 200 * 1024 * 1024, seed: int = 0,
                 outcome: Callable[[str, str, dict[str, Any]], str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.polls_to_end = polls_to_end
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.outcome = outcome
        self.hold = False
        self.garbage_lines = 0
        self.malformed_batch = False
        self.batches: dict[str, FakeBatch] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.created = 0
        self.polls: list[tuple[str, float]] = []
        self.results_fetches: list[str] = []
        self.raw_bodies: list[tuple[str, bytes]] = []  # the bytes of every synchronous POST
        self._rng = random.Random(seed)
        self._ids = 0

    def _id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}{self._ids:024x}"

    def app(self) -> web.Application:
        app = super().app()

        @web.middleware
        async def keep_raw(request: web.Request, handler):
            if request.method == "POST" and request.path in ("/v1/chat/completions", "/v1/messages"):
                self.raw_bodies.append((request.path, await request.read()))  # read() is cached for the handler
            return await handler(request)

        app.middlewares.append(keep_raw)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}", self._file)
        app.router.add_get("/v1/files/{id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._openai_create)
        app.router.add_get("/v1/batches", self._openai_list)
        app.router.add_get("/v1/batches/{id}", self._openai_get)
        app.router.add_post("/v1/batches/{id}/cancel", self._openai_cancel)
        app.router.add_post("/v1/messages/batches", self._anthropic_create)
        app.router.add_get("/v1/messages/batches", self._anthropic_list)
        app.router.add_get("/v1/messages/batches/{id}", self._anthropic_get)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self._anthropic_cancel)
        app.router.add_get("/fake-results/{id}/download.jsonl", self._anthropic_results)
        return app

    # --- shared -------------------------------------------------------------------------------
    async def _begin(self, request: web.Request, api: str, body: Any = None) -> web.Response | None:
        """Record the request and apply a scripted action; a response to send instead, or None."""
        action = self._take(request, body)
        if action and action.get("delay"):
            import asyncio

            await asyncio.sleep(float(action["delay"]))
        if action and action.get("status"):
            message = action.get("message")
            if action.get("echo_key"):  # as OpenAI's invalid-key message does
                key = request.headers.get("x-api-key") or request.headers.get("authorization", "")[7:]
                message = f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid."
            return self._error(api, int(action["status"]), message, action)
        return None

    def _outcome(self, api: str, item: dict[str, Any]) -> str:
        params = item.get("body") if api == "openai" else item.get("params")
        return self.outcome(api, item["custom_id"], params or {}) if self.outcome else "succeeded"

    def _advance(self, batch: FakeBatch) -> None:
        """One poll's worth of progress."""
        batch.polls += 1
        if batch.status in ("failed", "completed", "expired", "cancelled", "ended"):
            return
        if batch.cancel_requested:
            self._finish(batch, cancelled=True)
            return
        if batch.api == "openai" and batch.status == "validating":
            batch.status, batch.times["in_progress_at"] = "in_progress", int(time.time())
        if self.hold:
            return
        if batch.polls >= self.polls_to_end:
            self._finish(batch)

    def _finish(self, batch: FakeBatch, cancelled: bool = False) -> None:
        outputs: list[bytes] = []
        errors: list[bytes] = []
        counts = {"succeeded": 0, "errored": 0, "expired": 0, "canceled": 0}
        any_expired = False
        for item in batch.items:
            cid = item["custom_id"]
            kind = "canceled" if cancelled else self._outcome(batch.api, item)
            any_expired |= kind == "expired"
            seq = next(self._seq)
            if batch.api == "openai":
                line = self._openai_line(cid, item["body"], kind, seq)
                (outputs if kind in ("succeeded", "malformed") else errors).append(line)
            else:
                outputs.append(self._anthropic_line(cid, item["params"], kind, seq))
            counts["succeeded" if kind == "malformed" else kind] += 1
        self._rng.shuffle(outputs)
        self._rng.shuffle(errors)
        outputs += [b'{"custom_id": "broken' for _ in range(self.garbage_lines)]
        now = int(time.time())
        batch.counts = counts
        if batch.api == "openai":
            if outputs:
                batch.output_file_id = self._store_file(b"\n".join(outputs) + b"\n", "batch_output", f"{batch.id}_output.jsonl")
            if errors:
                batch.error_file_id = self._store_file(b"\n".join(errors) + b"\n", "batch_output", f"{batch.id}_error.jsonl")
            if cancelled:
                batch.status, batch.times["cancelled_at"] = "cancelled", now
            elif any_expired:
                batch.status, batch.times["expired_at"] = "expired", now
            else:
                batch.status, batch.times["completed_at"] = "completed", now
                batch.times["finalizing_at"] = now
        else:
            batch.results = b"\n".join(outputs) + b"\n"
            batch.status, batch.times["ended_at"] = "ended", now
