"""JsonClient's streaming call and the openai backend's stream parser: one client for eval and bench."""

import asyncio

from taskc.backends.openai_chat import ChatStream, read_completion
from taskc.common.encoding import dumps
from taskc.runner.http import JsonClient
from tests.fakes.latency_server import LatencyServer


def _body(stream: bool) -> bytes:
    body = {"model": "fake", "messages": [{"role": "user", "content": "stream me"}], "max_tokens": 8}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return dumps(body)


def test_post_stream_feeds_every_event_and_the_parser_gives_the_plain_answer():
    async def go(url):
        client = JsonClient(concurrency=4, timeout_s=10, max_attempts=1)
        try:
            events: list[dict] = []
            stream = ChatStream()
            firsts = []

            def on_event(chunk):
                events.append(chunk)
                if stream.feed(chunk):
                    firsts.append(len(events))

            streamed = await client.post_stream(url, _body(True), {"x-request-id": "t-1"}, on_event)
            plain = await client.post_json(url, _body(False), {"x-request-id": "t-2"})
            return streamed, events, stream, firsts, plain
        finally:
            await client.close()

    with LatencyServer(workers=1, delays_ms=[5.0], echo=True) as server:
        streamed, events, stream, firsts, plain = asyncio.run(go(server.base_url + "/chat/completions"))
    assert streamed.ok and streamed.status == 200 and streamed.body is None
    assert len(events) >= 3 and firsts and firsts[0] >= 1  # role chunk, text chunks, usage chunk
    raw, usage, extra = stream.answer()
    plain_raw, plain_usage, plain_extra = read_completion(plain.body)
    assert raw == plain_raw == "stream me"
    assert extra["finish_reason"] == plain_extra["finish_reason"] == "stop"
    assert usage.output_tokens == plain_usage.output_tokens > 0


def test_post_stream_reports_http_errors_and_dead_endpoints_without_raising():
    async def go(url):
        client = JsonClient(concurrency=2, timeout_s=5, max_attempts=1)
        try:
            return await client.post_stream(url, _body(True), None, lambda chunk: None)
        finally:
            await client.close()

    with LatencyServer(workers=1, delays_ms=[1.0], echo=True, error_every=1) as server:
        failed = asyncio.run(go(server.base_url + "/chat/completions"))
    assert not failed.ok and failed.status == 500 and failed.error.startswith("HTTP 500")
    gone = asyncio.run(go("http://127.0.0.1:9/v1/chat/completions"))
    assert not gone.ok and gone.status == 0 and gone.error.startswith("connection error:")


def test_chat_stream_joins_tool_call_parts_and_keeps_stream_errors():
    stream = ChatStream()
    assert stream.feed({"choices": [{"delta": {"role": "assistant"}}]}) is False
    assert stream.feed({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "git_", "arguments": '{"li'}}]}}]})
    assert stream.feed({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "log", "arguments": 'mit": 3}'}}]},
                                     "finish_reason": "tool_calls"}]})
    stream.feed({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})
    raw, usage, extra = stream.answer()
    assert raw == '{"name":"git_log","parameters":{"limit":3}}'
    assert (usage.input_tokens, usage.output_tokens, extra["finish_reason"]) == (9, 4, "tool_calls")
    broken = ChatStream()
    broken.feed({"error": {"message": "overloaded"}})
    assert broken.error == "stream error: overloaded"
