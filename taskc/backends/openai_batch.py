"""The OpenAI Batch API for the `openai` backend (`taskc eval --batch`).

Wire protocol (https://platform.openai.com/docs/guides/batch):
- input: a JSONL file of `{"custom_id", "method": "POST", "url": "/v1/chat/completions",
  "body": <payload>}` lines, uploaded with `POST {base}/files` (multipart, `purpose=batch`);
  the `body` bytes are exactly `render(request)` as the synchronous path POSTs them;
- `POST {base}/batches` `{input_file_id, endpoint, completion_window: "24h", metadata}`;
  `metadata.taskc_key` identifies the submission, so that a run killed between the create call
  and its answer finds the batch again (`batch_find`) instead of creating a second one;
- `GET {base}/batches/{id}`: `status` validating | in_progress | finalizing | cancelling (still
  running), completed | expired | cancelled (ended: `output_file_id` and `error_file_id` hold
  the lines), failed (validation failed: `errors.data`);
- `GET {base}/files/{id}/content`: JSONL lines `{"id", "custom_id", "response": {"status_code",
  "request_id", "body"}, "error"}` in any order; `error.code` batch_expired / batch_cancelled
  marks items the window or a cancel left undone.
Limits: 50,000 requests and 200 MB per input file.
"""

from __future__ import annotations

from typing import Any, Callable

from taskc.backends.batch_api import BatchApi, checked, counts_of, download_failed, field_of, with_query
from taskc.common.encoding import dumps, loads
from taskc.common.endpoints import join_url
from taskc.runner.batch_types import BatchError, BatchItem, BatchStatus
from taskc.runner.http import JsonClient
from taskc.runner.types import Request

ENDPOINT = "/v1/chat/completions"
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
ENDED = ("completed", "expired", "cancelled")
_ITEM_CODES = {"batch_expired": "expired", "batch_cancelled": "canceled"}


class OpenAIBatch(BatchApi):
    """Batch methods of `OpenAIChatBackend` (see taskc.runner.batch for how they are used)."""

    batch_max_requests = 50_000
    batch_max_bytes = 200 * 1024 * 1024
    cancel_body: Any = {}

    def _batch_url(self, suffix: str) -> str:
        return join_url(self.base_url, "/batches" + suffix)  # type: ignore[attr-defined]

    def batch_line(self, request: Request, payload: Any, custom_id: str) -> bytes:
        """One input line; `body` is the synchronous payload's own bytes."""
        return (b'{"custom_id":' + dumps(custom_id) + b',"method":"POST","url":' + dumps(ENDPOINT)
                + b',"body":' + dumps(payload) + b"}")

    async def batch_submit(self, client: JsonClient, lines: list[bytes], key: str) -> dict[str, Any]:
        """Upload the input file and create the batch; `{"id", "input_file_id"}`."""
        content = b"\n".join(lines) + b"\n"
        up = await client.post_multipart(join_url(self.base_url, "/files"), {"purpose": "batch"}, "file",  # type: ignore[attr-defined]
                                         f"taskc-{key[:16]}.jsonl", content, self._headers)  # type: ignore[attr-defined]
        file_id = field_of(checked(up, "uploading the batch input file"), "id", "uploaded file")
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h",
                "metadata": {"taskc_key": key[:64]}}
        made = checked(await client.post_json(join_url(self.base_url, "/batches"), body, self._headers),  # type: ignore[attr-defined]
                       f"creating the batch for file {file_id}")
        return {"id": field_of(made, "id", "the created batch"), "input_file_id": file_id}

    async def batch_find(self, client: JsonClient, key: str, n: int, since: str) -> str | None:
        """The id of a recent batch whose metadata carries `key`, if the provider has one."""
        listed = checked(await client.get_json(with_query(self._batch_url(""), "limit=100"), self._headers),  # type: ignore[attr-defined]
                         "listing batches")
        for batch in listed.get("data") or ():
            if isinstance(batch, dict) and (batch.get("metadata") or {}).get("taskc_key") == key[:64]:
                return field_of(batch, "id", "a listed batch")
        return None

    def _status(self, obj: dict[str, Any], what: str) -> BatchStatus:
        batch_id = field_of(obj, "id", what)
        status = field_of(obj, "status", f"batch {batch_id}")
        if status in RUNNING:
            state = "running"
        elif status in ENDED:
            state = "ended"
        elif status == "failed":
            state = "failed"
        else:
            raise BatchError(f"batch {batch_id}: malformed batch object: unknown status {status!r}")
        detail = None
        errors = (obj.get("errors") or {}).get("data") if isinstance(obj.get("errors"), dict) else None
        if errors:
            detail = "; ".join(
                (f"line {e.get('line')}: " if e.get("line") is not None else "") + f"{e.get('code') or 'error'}: {e.get('message') or ''}"
                for e in errors[:5] if isinstance(e, dict))
        return BatchStatus(batch_id, state, status, counts_of(obj.get("request_counts")), detail, obj)

    async def batch_results(self, client: JsonClient, status: BatchStatus,
                            on_item: Callable[[BatchItem], None]) -> list[str]:
        """Stream the output and error files; problems with lines that name no request."""
        problems: list[str] = []
        for name in ("output_file_id", "error_file_id"):
            file_id = status.raw.get(name)
            if not file_id:
                continue
            if not isinstance(file_id, str):
                problems.append(f"malformed batch object: {name} is {file_id!r}")
                continue

            def on_line(number: int, line: bytes, file_id: str = file_id) -> None:
                item = read_output_line(line)
                if isinstance(item, str):
                    problems.append(f"file {file_id} line {number}: malformed output line: {item}")
                else:
                    on_item(item)

            resp = await client.get_lines(join_url(self.base_url, f"/files/{file_id}/content"), self._headers, on_line)  # type: ignore[attr-defined]
            if not resp.ok:
                raise download_failed(resp, f"downloading file {file_id}")
        return problems


def read_output_line(line: bytes) -> BatchItem | str:
    """One line of an output or error file as a `BatchItem`, or what is wrong with it (a
    readable `custom_id` with a broken rest is a `malformed` item, so it is retried)."""
    try:
        obj = loads(line)
    except ValueError as exc:
        return f"not JSON ({exc}): {line[:80]!r}"
    if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
        return f"no custom_id: {line[:80]!r}"
    cid = obj["custom_id"]
    error, response = obj.get("error"), obj.get("response")
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        outcome = _ITEM_CODES.get(code, "errored")
        return BatchItem(cid, outcome, error=f"{code or 'error'}: {error.get('message') or ''}".strip())
    if not isinstance(response, dict) or not isinstance(response.get("status_code"), int):
        return BatchItem(cid, "malformed", error="output line has neither a response nor an error")
    code, body = response["status_code"], response.get("body")
    if 200 <= code < 300:
        return BatchItem(cid, "succeeded", body=body)
    err = body.get("error") if isinstance(body, dict) else None
    kind = f" {err.get('type') or err.get('code') or ''}".rstrip() if isinstance(err, dict) else ""
    message = err.get("message") if isinstance(err, dict) else str(body)[:200]
    return BatchItem(cid, "errored", error=f"HTTP {code}{kind}: {message}")
