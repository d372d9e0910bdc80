"""JsonClient against the fake provider over real HTTP: retries, Retry-After, timeouts, errors."""

import asyncio
import email.utils
import socket
import time

import pytest

from taskc.runner.http import JsonClient, parse_retry_after, provider_message

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def post(url, payload=BODY, headers=None, **options):
    async def go():
        async with JsonClient(**options) as client:
            return await client.post_json(url, payload, headers)
    return asyncio.run(go())


def test_success_returns_body_and_one_attempt(fake):
    resp = post(fake.openai_base_url + "/chat/completions")
    assert resp.ok and resp.status == 200 and resp.attempts == 1
    assert resp.body["choices"][0]["message"]["content"] == "ok"


def test_two_429_with_retry_after_then_success(fake):
    fake.fail_next(2, status=429, retry_after="1")
    start = time.perf_counter()
    resp = post(fake.openai_base_url + "/chat/completions", max_attempts=5)
    elapsed = time.perf_counter() - start
    assert resp.ok and resp.attempts == 3 and fake.count == 3
    assert elapsed >= 2.0 and resp.latency_s >= 2.0  # two waits of Retry-After: 1


def test_retry_after_ms_is_preferred(fake):
    fake.fail_next(1, status=429, retry_after="30", retry_after_ms="50")
    start = time.perf_counter()
    resp = post(fake.openai_base_url + "/chat/completions")
    assert resp.ok and resp.attempts == 2 and time.perf_counter() - start < 5


def test_5xx_exhausted_returns_error_not_exception(fake):
    fake.fail_next(3, status=500)
    resp = post(fake.openai_base_url + "/chat/completions", max_attempts=3, backoff_base_s=0.01)
    assert not resp.ok and resp.body is None and resp.status == 500 and resp.attempts == 3
    assert resp.error.startswith("HTTP 500 server_error: The server had an error while processing your request.")
    assert fake.count == 3


def test_anthropic_error_message_and_no_retry_on_400(fake):
    fake.fail_next(1, status=529)
    fake.fail_next(1, status=400, message="max_tokens: Field required")
    resp = post(fake.anthropic_base_url + "/v1/messages", max_attempts=4, backoff_base_s=0.01)
    assert resp.attempts == 2 and fake.count == 2
    assert resp.error == "HTTP 400 invalid_request_error: max_tokens: Field required (after 2 attempts)"


def test_timeouts_are_retried_then_reported(fake):
    fake.script({"delay": 2.0}, {"delay": 2.0})
    start = time.perf_counter()
    resp = post(fake.openai_base_url + "/chat/completions", timeout_s=0.3, max_attempts=2, backoff_base_s=0.01)
    assert not resp.ok and resp.status == 0 and resp.attempts == 2
    assert resp.error.startswith("timeout after 0.3 s")
    assert time.perf_counter() - start < 1.8


def test_timeout_then_success(fake):
    fake.script({"delay": 1.0})
    resp = post(fake.openai_base_url + "/chat/completions", timeout_s=0.3, max_attempts=3, backoff_base_s=0.01)
    assert resp.ok and resp.attempts == 2


def test_connection_refused_is_an_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        resp = post(f"http://127.0.0.1:{port}/v1/chat/completions", max_attempts=2, backoff_base_s=0.01)
    assert not resp.ok and resp.attempts == 2 and resp.error.startswith("connection error:")


def test_key_is_scrubbed_from_errors(fake):
    fake.fail_next(1, status=401, echo_key=True)
    key = "sk-test-SECRET-0042"
    resp = post(fake.openai_base_url + "/chat/completions", headers={"Authorization": f"Bearer {key}"})
    assert resp.attempts == 1 and resp.status == 401
    assert key not in resp.error and "[REDACTED]" in resp.error
    assert fake.requests[0].headers["authorization"] == "REDACTED"


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5", "retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(7.0)
    assert parse_retry_after({"retry-after": email.utils.formatdate(now - 60, usegmt=True)}, now=now) == 0.0


def test_backoff_is_full_jitter_and_capped():
    client = JsonClient(backoff_base_s=1.0, backoff_max_s=4.0, retry_after_max_s=10.0)
    waits = [client.backoff(5, None) for _ in range(200)]
    assert all(0.0 <= w <= 4.0 for w in waits) and max(waits) > 2.0
    assert client.backoff(1, 3.0) == 3.0 and client.backoff(1, 100.0) == 10.0


def test_provider_message_fallbacks():
    assert provider_message(502, b"<html>Bad Gateway</html>") == "HTTP 502: <html>Bad Gateway</html>"
    assert provider_message(422, b'{"detail": "bad"}') == "HTTP 422: bad"
    assert provider_message(503, b"") == "HTTP 503"


def test_dumps_is_compact_utf8_and_falls_back_for_what_orjson_refuses():
    from taskc.common.encoding import dumps, loads

    assert dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()
    huge = {"n": 2**70, 3: "int key"}  # beyond 64 bits and a non-string key: the stdlib encodes both
    assert loads(dumps(huge)) == {"n": 2**70, "3": "int key"}
