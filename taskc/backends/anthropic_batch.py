"""The Message Batches API for the `anthropic` backend (`taskc eval --batch`).

Wire protocol (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing):
- `POST {base}/v1/messages/batches` `{"requests": [{"custom_id", "params": <payload>}, ...]}`;
  each `params` is exactly `render(request)` as the synchronous path POSTs it, byte for byte;
- `GET {base}/v1/messages/batches/{id}`: `processing_status` in_progress | canceling | ended,
  `request_counts` {processing, succeeded, errored, canceled, expired}, and once ended a
  `results_url`, which is followed exactly as returned;
- the results: JSONL lines `{"custom_id", "result": {"type": "succeeded", "message"} |
  {"type": "errored", "error": {"type": "error", "error": {"type", "message"}}} |
  {"type": "canceled"} | {"type": "expired"}}` in any order.
The API has no metadata on batches: a run killed between the create call and its answer looks
for a batch created since with the same number of requests (`batch_find`); only one such
batch is taken, and its custom ids (which name each payload) make a wrong match harmless.
Limits: 100,000 requests and 256 MB per batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from taskc.backends.batch_api import BatchApi, checked, counts_of, download_failed, field_of, with_query
from taskc.common.encoding import dumps, loads
from taskc.common.endpoints import join_url
from taskc.runner.batch_types import BatchError, BatchItem, BatchStatus
from taskc.runner.http import JsonClient
from taskc.runner.types import Request

RUNNING = ("in_progress", "canceling")
OUTCOMES = ("succeeded", "errored", "canceled", "expired")


class AnthropicBatch(BatchApi):
    """Batch methods of `AnthropicMessagesBackend` (see taskc.runner.batch)."""

    batch_max_requests = 100_000
    batch_max_bytes = 256 * 1024 * 1024

    def _batch_url(self, suffix: str) -> str:
        return join_url(self.base_url, "/v1/messages/batches" + suffix)  # type: ignore[attr-defined]

    def batch_line(self, request: Request, payload: Any, custom_id: str) -> bytes:
        """One entry of `requests`; `params` is the synchronous payload's own bytes."""
        return b'{"custom_id":' + dumps(custom_id) + b',"params":' + dumps(payload) + b"}"

    async def batch_submit(self, client: JsonClient, lines: list[bytes], key: str) -> dict[str, Any]:
        """Create the batch; `{"id"}`."""
        body = b'{"requests":[' + b",".join(lines) + b"]}"
        made = checked(await client.post_json(self._batch_url(""), body, self._headers), "creating the batch")  # type: ignore[attr-defined]
        return {"id": field_of(made, "id", "the created batch")}

    async def batch_find(self, client: JsonClient, key: str, n: int, since: str) -> str | None:
        """The one batch created since `since` (less a minute) holding `n` requests, if any."""
        listed = checked(await client.get_json(with_query(self._batch_url(""), "limit=100"), self._headers), "listing batches")  # type: ignore[attr-defined]
        try:
            start = datetime.fromisoformat(since) - timedelta(minutes=1)
        except (TypeError, ValueError):
            return None
        found = []
        for batch in listed.get("data") or ():
            if not isinstance(batch, dict):
                continue
            try:
                created = datetime.fromisoformat(str(batch.get("created_at")).replace("Z", "+00:00"))
            except ValueError:
                continue
            if created >= start and sum(counts_of(batch.get("request_counts")).values()) == n:
                found.append(field_of(batch, "id", "a listed batch"))
        return found[0] if len(found) == 1 else None

    def _status(self, obj: dict[str, Any], what: str) -> BatchStatus:
        batch_id = field_of(obj, "id", what)
        status = field_of(obj, "processing_status", f"batch {batch_id}")
        if status in RUNNING:
            state = "running"
        elif status == "ended":
            state = "ended"
            field_of(obj, "results_url", f"batch {batch_id} (ended)")
        else:
            raise BatchError(f"batch {batch_id}: malformed batch object: unknown processing_status {status!r}")
        return BatchStatus(batch_id, state, status, counts_of(obj.get("request_counts")), None, obj)

    async def batch_results(self, client: JsonClient, status: BatchStatus,
                            on_item: Callable[[BatchItem], None]) -> list[str]:
        """Stream `results_url` (exactly as returned); problems with lines that name no request."""
        problems: list[str] = []

        def on_line(number: int, line: bytes) -> None:
            item = read_result_line(line)
            if isinstance(item, str):
                problems.append(f"results line {number}: malformed result line: {item}")
            else:
                on_item(item)

        resp = await client.get_lines(status.raw["results_url"], self._headers, on_line)  # type: ignore[attr-defined]
        if not resp.ok:
            raise download_failed(resp, "downloading the results")
        return problems


def read_result_line(line: bytes) -> BatchItem | str:
    """One results line as a `BatchItem`, or what is wrong with it (a readable `custom_id` with
    a broken rest is a `malformed` item, so it is retried)."""
    try:
        obj = loads(line)
    except ValueError as exc:
        return f"not JSON ({exc}): {line[:80]!r}"
    if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
        return f"no custom_id: {line[:80]!r}"
    cid, result = obj["custom_id"], obj.get("result")
    kind = result.get("type") if isinstance(result, dict) else None
    if kind not in OUTCOMES:
        return BatchItem(cid, "malformed", error=f"unknown result type {kind!r}")
    if kind == "succeeded":
        return BatchItem(cid, "succeeded", body=result.get("message"))
    if kind == "errored":
        err = result.get("error")
        inner = err.get("error") if isinstance(err, dict) and isinstance(err.get("error"), dict) else err
        if isinstance(inner, dict):
            return BatchItem(cid, "errored", error=f"{inner.get('type') or 'error'}: {inner.get('message') or ''}".strip())
        return BatchItem(cid, "errored", error=str(err)[:200])
    return BatchItem(cid, kind)
