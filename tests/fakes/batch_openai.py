"""The OpenAI Batch API routes of the fake batch provider (see tests/fakes/batch_server.py)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.provider_server import openai_body

if TYPE_CHECKING:
    from tests.fakes.batch_server import FakeBatch

OPENAI_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions")


class OpenAIBatchRoutes:
    """/v1/files and /v1/batches, as mixed into `FakeBatchProvider`."""

    def _store_file(self, content: bytes, purpose: str, filename: str) -> str:
        file_id = self._id("file-")
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed", "expires_at": None,
                               "status_details": None, "content": content}
        return file_id

    def _file_object(self, file_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.files[file_id].items() if k != "content"}

    async def _upload(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "openai")) is not None:
            return early
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") is None or upload is None or not hasattr(upload, "file"):
            return self._error("openai", 400, "'file' and 'purpose' are required.", {})
        content = upload.file.read()
        return web.json_response(self._file_object(self._store_file(content, str(form["purpose"]), upload.filename)))

    async def _file(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "openai")) is not None:
            return early
        file_id = request.match_info["id"]
        if file_id not in self.files:
            return self._error("openai", 404, f"No such File object: {file_id}", {})
        return web.json_response(self._file_object(file_id))

    async def _file_content(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "openai")) is not None:
            return early
        file_id = request.match_info["id"]
        if file_id not in self.files:
            return self._error("openai", 404, f"No such File object: {file_id}", {})
        self.results_fetches.append(request.path)
        return web.Response(body=self.files[file_id]["content"], content_type="application/octet-stream")

    def _validate_openai(self, content: bytes, endpoint: str) -> tuple[list[bytes], list[dict[str, Any]], list[dict[str, Any]]]:
        lines = [line for line in content.split(b"\n") if line.strip()]
        items, errors, seen, models = [], [], set(), set()
        if len(lines) > self.max_requests:
            errors.append({"code": "too_many_requests", "line": None, "param": None,
                           "message": f"The batch input file has {len(lines)} requests; the limit is {self.max_requests}."})
        if len(content) > self.max_bytes:
            errors.append({"code": "file_too_large", "line": None, "param": None,
                           "message": f"The batch input file is {len(content)} bytes; the limit is {self.max_bytes}."})
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
            except ValueError:
                errors.append({"code": "invalid_json_line", "line": number, "param": None,
                               "message": "This line is not parseable as valid JSON."})
                continue
            problem = None
            if not isinstance(item.get("custom_id"), str):
                problem = ("missing_required_parameter", "custom_id", "Missing required parameter: 'custom_id'.")
            elif item["custom_id"] in seen:
                problem = ("duplicate_custom_id", "custom_id", "The custom_id for this request is a duplicate of another request.")
            elif item.get("method") != "POST":
                problem = ("invalid_method", "method", "Only POST is supported.")
            elif item.get("url") != endpoint:
                problem = ("mismatched_endpoint", "url", f"The url for this request does not match the batch endpoint {endpoint}.")
            elif not isinstance(item.get("body"), dict) or not item["body"].get("model"):
                problem = ("missing_required_parameter", "body.model", "Missing required parameter: 'body.model'.")
            if problem:
                errors.append({"code": problem[0], "line": number, "param": problem[1], "message": problem[2]})
                continue
            seen.add(item["custom_id"])
            models.add(item["body"]["model"])
            items.append(item)
        if len(models) > 1:
            errors.append({"code": "mismatched_model", "line": None, "param": "body.model",
                           "message": "All requests in a batch must use the same model."})
        return lines, items, errors

    async def _openai_create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if (early := await self._begin(request, "openai", body)) is not None:
            return early
        if not isinstance(body, dict):
            return self._error("openai", 400, "We could not parse the JSON body of your request.", {})
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in body:
                return self._error("openai", 400, f"Missing required parameter: '{name}'.", {})
        if body["completion_window"] != "24h":
            return self._error("openai", 400, "Invalid value for 'completion_window': only '24h' is supported.", {})
        if body["endpoint"] not in OPENAI_ENDPOINTS:
            return self._error("openai", 400, f"Invalid value for 'endpoint': {body['endpoint']}", {})
        file = self.files.get(body["input_file_id"])
        if file is None:
            return self._error("openai", 404, f"No such File object: {body['input_file_id']}", {})
        if file["purpose"] != "batch":
            return self._error("openai", 400, "The input file must be uploaded with purpose 'batch'.", {})
        lines, items, errors = self._validate_openai(file["content"], body["endpoint"])
        now = time.time()
        from tests.fakes.batch_server import FakeBatch

        batch = FakeBatch(self._id("batch_"), "openai", lines, items, now, "validating",
                          input_file_id=body["input_file_id"], metadata=body.get("metadata"))
        batch.endpoint = body["endpoint"]  # type: ignore[attr-defined]
        if errors:
            batch.status, batch.errors, batch.times["failed_at"] = "failed", errors, int(now)
        with self._lock:
            self.batches[batch.id] = batch
            self.created += 1
        return web.json_response(self._openai_object(batch))

    def _openai_object(self, batch: FakeBatch) -> dict[str, Any]:
        total = len(batch.lines)
        done = batch.counts.get("succeeded", 0)
        obj = {
            "id": batch.id, "object": "batch", "endpoint": getattr(batch, "endpoint", "/v1/chat/completions"),
            "model": batch.items[0]["body"]["model"] if batch.items else None,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id, "completion_window": "24h", "status": batch.status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "created_at": int(batch.created_at), "in_progress_at": None, "expires_at": int(batch.created_at) + 86400,
            "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
            "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": total, "completed": done, "failed": total - done if batch.counts else 0},
            "usage": None, "metadata": batch.metadata,
        }
        obj.update({k: v for k, v in batch.times.items()})
        if self.malformed_batch:
            del obj["status"]
        return obj

    async def _openai_get(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "openai")) is not None:
            return early
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.api != "openai":
            return self._error("openai", 404, f"No batch found with id '{request.match_info['id']}'.", {})
        self.polls.append((batch.id, time.time()))
        self._advance(batch)
        return web.json_response(self._openai_object(batch))

    async def _openai_list(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "openai")) is not None:
            return early
        limit = int(request.query.get("limit", "20"))
        data = [self._openai_object(b) for b in reversed(list(self.batches.values())) if b.api == "openai"][:limit]
        return web.json_response({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None, "has_more": False})

    async def _openai_cancel(self, request: web.Request) -> web.Response:
        if (early := await self._begin(request, "openai")) is not None:
            return early
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.api != "openai":
            return self._error("openai", 404, f"No batch found with id '{request.match_info['id']}'.", {})
        if batch.status in ("validating", "in_progress", "finalizing"):
            batch.cancel_requested = True
            batch.status, batch.times["cancelling_at"] = "cancelling", int(time.time())
        return web.json_response(self._openai_object(batch))

    def _openai_line(self, cid: str, body: dict[str, Any], kind: str, seq: int) -> bytes:
        rid = f"req_{seq:032x}"
        if kind in ("succeeded", "malformed"):
            answer = openai_body(body, self._answer("openai", body), seq, self.cached_tokens)
            if kind == "malformed":
                answer["choices"] = []
            response, error = {"status_code": 200, "request_id": rid, "body": answer}, None
        elif kind == "errored":
            response = {"status_code": 400, "request_id": rid, "body": {"error": {
                "message": "Invalid 'messages': the conversation is too long.", "type": "invalid_request_error",
                "param": "messages", "code": None}}}
            error = None
        elif kind == "expired":
            response, error = None, {"code": "batch_expired",
                                     "message": "This request could not be executed before the completion window expired."}
        else:
            response, error = None, {"code": "batch_cancelled",
                                     "message": "This request was not executed because the batch was cancelled."}
        return json.dumps({"id": f"batch_req_{seq:024x}", "custom_id": cid, "response": response, "error": error}).encode()
