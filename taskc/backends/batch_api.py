"""What the two provider batch APIs share on the backend side (see taskc.runner.batch for the
methods the runner calls): the recorded identity, reading answers exactly as the synchronous
path does, and checked access to the provider's batch objects."""

from __future__ import annotations

from typing import Any

from taskc.common.endpoints import redact_url
from taskc.runner.batch_types import BatchError, BatchGone
from taskc.runner.http import HttpResponse
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

    def batch_answer(self, request: Request, body: Any, **base: Any) -> Result:
        """The Result of a succeeded batch item: its body read by `read_answer` and
        `postprocess`, as `HttpBackend.generate_one` reads a response (a body it cannot read is a
        "malformed response" error)."""
        try:
            raw, usage, extra = self.read_answer(body)  # type: ignore[attr-defined]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            return Result(raw=None, error=f"malformed response: {type(exc).__name__}: {exc}", **base)
        return Result(raw=self.postprocess(raw, request), usage=usage, extra=extra, **base)  # type: ignore[attr-defined]


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
