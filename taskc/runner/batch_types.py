"""The values the batch runner (`taskc.runner.batch`) and the backends' batch methods exchange:
a batch's status, one output line, the errors, and the custom ids that tie a line to a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from taskc.runner.types import Request

#: Bytes per batch kept free under the provider's limit (request envelope, separators).
ENVELOPE_BYTES = 1024


class BatchError(RuntimeError):
    """A batch API call failed or answered something unreadable; the message names the batch."""


class BatchGone(BatchError):
    """The provider does not know the batch id (HTTP 404)."""


@dataclass(frozen=True)
class BatchStatus:
    """A batch as the provider last described it: `state` is `running`, `ended` (answers to
    download) or `failed` (validation failed: no answers, `detail` says why)."""

    id: str
    state: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    detail: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchItem:
    """One output line: `outcome` is succeeded (with the answer `body`), errored, expired,
    canceled or malformed (with `error`)."""

    custom_id: str
    outcome: str
    body: Any = None
    error: str | None = None


def custom_id(request: Request, key: str) -> str:
    """`t<index>-<repeat>-<16 hex of the cache key>`: unique in a run, accepted by both
    providers (`^[a-zA-Z0-9_-]{1,64}$`), and tied to the exact payload."""
    return f"t{request.index}-{request.repeat}-{key[:16]}"


def index_of_custom_id(cid: str) -> tuple[int, int] | None:
    """(index, repeat) from a `custom_id` made by `custom_id`, else None."""
    parts = cid.split("-")
    if len(parts) == 3 and parts[0][:1] == "t" and parts[0][1:].isdigit() and parts[1].isdigit():
        return int(parts[0][1:]), int(parts[1])
    return None


def split_lines(sizes: Sequence[int], max_requests: int, max_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges of consecutive lines, each within `max_requests` lines and
    `max_bytes` bytes (a newline each, `ENVELOPE_BYTES` kept free); a line too big on its own
    is a range of its own."""
    limit = max(1, max_bytes - ENVELOPE_BYTES)
    ranges, start, used = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_requests or used + size + 1 > limit):
            ranges.append((start, i))
            start, used = i, 0
        used += size + 1
    if start < len(sizes):
        ranges.append((start, len(sizes)))
    return ranges
