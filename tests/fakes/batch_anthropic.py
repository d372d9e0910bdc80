"""The Anthropic Message Batches routes of the fake batch provider (see tests/fakes/batch_server.py)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.provider_server import anthropic_body

if TYPE_CHECKING:
    from tests.fakes.batch_server import FakeBatch

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


class AnthropicBatchRoutes:
    """/v1/messages/batches and the results URL, as mixed into `FakeBatchProvider`."""

    async def _anthropic_create(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if (early := await self._begin(request, "anthropic", body)) is not None:
            return early
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list) or not body["requests"]:
            return self._error("anthropic", 400, "requests: Field required", {})
        if len(raw) > self.max_bytes:
            return self._error("anthropic", 413, f"Request exceeds the maximum size of {self.max_bytes} bytes.", {})
        if len(body["requests"]) > self.max_requests:
            return self._error("anthropic", 400, f"requests: a batch holds at most {self.max_requests} requests", {})
        seen = set()
        for n, item in enumerate(body["requests"]):
            cid = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                return self._error("anthropic", 400, f"requests.{n}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'", {})
            if cid in seen:
                return self._error("anthropic", 400, f"Duplicate custom_id: {cid}", {})
            seen.add(cid)
            params = item.get("params")
            for name in ("model", "max_tokens", "messages"):
                if not isinstance(params, dict) or name not in params:
                    return self._error("anthropic", 400, f"requests.{n}.params.{name}: Field required", {})
        lines = [json.dumps(item).encode() for item in body["requests"]]
        from tests.fakes.batch_server import FakeBatch

        batch = FakeBatch(self._id("msgbatch_"), "anthropic", lines, body["requests"], time.time(), "in_progress")
        batch.raw_body = raw  # type: ignore[attr-defined]
        with self._lock:
            self.batches[batch.id] = batch
            self.created += 1
        return web.json_response(self._anthropic_object(batch))

    def _anthropic_object(self, batch: FakeBatch) -> dict[str, Any]:
        n = len(batch.items)
        ended = batch.status == "ended"
        counts = {"processing": 0 if ended else n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            counts.update(batch.counts)
        obj = {
            "id": batch.id, "type": "message_batch", "processing_status": batch.status, "request_counts": counts,
            "ended_at": _rfc3339(batch.times["ended_at"]) if ended else None,  # type: ignore[arg-type]
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + 86400), "archived_at": None,
            "cancel_initiated_at": _rfc3339(batch.times["cancel_at"]) if batch.times.get("cancel_at") else None,  # type: ignore[arg-type]
            "results_url": f"{self.url}/fake-results/{batch.id}/download.jsonl?sig=x1" if ended else None,
        }
        if self.malformed_batch:
            del obj["processing_status"]
        return obj

    async def _anthropic_get(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "anthropic")) is not None:
            return early
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.api != "anthropic":
            return self._error("anthropic", 404, f"message_batch {request.match_info['id']} not found", {})
        self.polls.append((batch.id, time.time()))
        self._advance(batch)
        return web.json_response(self._anthropic_object(batch))

    async def _anthropic_list(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "anthropic")) is not None:
            return early
        limit = int(request.query.get("limit", "20"))
        data = [self._anthropic_object(b) for b in reversed(list(self.batches.values())) if b.api == "anthropic"][:limit]
        return web.json_response({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    async def _anthropic_cancel(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "anthropic")) is not None:
            return early
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.api != "anthropic":
            return self._error("anthropic", 404, f"message_batch {request.match_info['id']} not found", {})
        if batch.status == "in_progress":
            batch.cancel_requested = True
            batch.status, batch.times["cancel_at"] = "canceling", int(time.time())
        return web.json_response(self._anthropic_object(batch))

    async def _anthropic_results(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "anthropic")) is not None:
            return early
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.results is None or request.query.get("sig") != "x1":
            return self._error("anthropic", 404, "results not found", {})
        self.results_fetches.append(str(request.rel_url))
        return web.Response(body=batch.results, content_type="application/binary")

    def _anthropic_line(self, cid: str, params: dict[str, Any], kind: str, seq: int) -> bytes:
        if kind in ("succeeded", "malformed"):
            message = anthropic_body(params, self._answer("anthropic", params), seq, self.cached_tokens)
            if kind == "malformed":
                del message["content"]
            result: dict[str, Any] = {"type": "succeeded", "message": message}
        elif kind == "errored":
            result = {"type": "errored", "error": {"type": "error", "error": {
                "type": "invalid_request_error", "message": "prompt is too long: 250000 tokens > 200000 maximum"},
                "request_id": f"req_{seq:024x}"}}
        else:
            result = {"type": kind}
        return json.dumps({"custom_id": cid, "result": result}).encode()
