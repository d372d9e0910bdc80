"""What the two provider batch APIs share on the backend side (see taskc.runner.batch for the
methods the runner calls): the recorded identity, reading answers exactly as the synchronous
path does, and checked access to the provider's batch objects."""

from __future__ import annotations

from typing import Any

from taskc.common.endpoints import redact_url
from taskc.runner.batch_types import BatchError, BatchGone, BatchStatus
from taskc.runner.http import HttpResponse, JsonClient
from taskc.runner.types import Request, Result


class BatchApi:
    """Mixin for an `HttpBackend` whose provider has a batch API (`supports_batch`)."""

    supports_batch = True
    batch_max_requests = 0
    batch_max_bytes = 0

    def batch_identity(self) -> dict[str, Any]:
        """What `batches.json` records to find the provider again (no secret, only the key's
        variable name)."""
        return {"backend": self.name, "model": self.model, "base_url": redact_url(self.base_url),  # type: ignore[attr-defined]
                "api_key_env": getattr(self, "api_key_env", None), "mode": getattr(self, "mode", None)}

    #: The body of a cancel request (the providers differ: Anthropic takes none, OpenAI `{}`).
    cancel_body: Any = b""

    def _batch_url(self, suffix: str) -> str:
        """The provider's batches endpoint with `suffix` (`""`, `"/ID"`, `"/ID/cancel"`)."""
        raise NotImplementedError

    def _status(self, obj: dict[str, Any], what: str) -> BatchStatus:
        """A batch object read into a `BatchStatus` (provider-specific)."""
        raise NotImplementedError

    def batch_answer(self, request: Request, body: Any, **base: Any) -> Result:
        """The Result of a succeeded batch item, read as `HttpBackend.generate_one` reads a
        response body (`HttpBackend.result_from_body`)."""
        return self.result_from_body(request, body, **base)  # type: ignore[attr-defined]

    async def batch_poll(self, client: JsonClient, batch_id: str) -> BatchStatus:
        """The batch's current status."""
        resp = await client.get_json(self._batch_url(f"/{batch_id}"), self._headers)  # type: ignore[attr-defined]
        return self._status(checked(resp, f"batch {batch_id}"), f"batch {batch_id}")

    async def batch_cancel(self, client: JsonClient, batch_id: str) -> BatchStatus:
        """Ask the provider to cancel the batch; its status after the call."""
        resp = await client.post_json(self._batch_url(f"/{batch_id}/cancel"), self.cancel_body, self._headers)  # type: ignore[attr-defined]
        return self._status(checked(resp, f"cancelling batch {batch_id}"), f"batch {batch_id}")


def with_query(url: str, query: str) -> str:
    """`url` with `query` appended to its query string (or starting one)."""
    return url + ("&" if "?" in url else "?") + query


def checked(resp: HttpResponse, what: str) -> Any:
    """The body of a successful response, else `BatchGone` (404) or `BatchError` naming `what`."""
    if resp.status == 404:
        raise BatchGone(f"{what}: {resp.error}")
    if not resp.ok:
        raise BatchError(f"{what}: {resp.error}")
    if not isinstance(resp.body, dict):
        raise BatchError(f"{what}: malformed answer (not a JSON object): {str(resp.body)[:120]}")
    return resp.body


def download_failed(resp: HttpResponse, what: str) -> BatchError:
    """The error for a failed download: `BatchGone` when the provider no longer has it (404)."""
    return (BatchGone if resp.status == 404 else BatchError)(f"{what}: {resp.error}")


def field_of(obj: dict[str, Any], name: str, what: str, kind: type = str) -> Any:
    """`obj[name]`, which must be a non-empty `kind`, else a "malformed" `BatchError`."""
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is str and not value):
        raise BatchError(f"{what}: malformed batch object: no valid '{name}' in {_short(obj)}")
    return value


def _short(obj: Any) -> str:
    import json

    text = json.dumps(obj, ensure_ascii=False)[:160]
    return text


def counts_of(value: Any) -> dict[str, int]:
    """A `request_counts` object with its integer fields only."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}
