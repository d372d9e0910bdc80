"""The sender: one coroutine per request that sends it through the runner's `JsonClient` (plain
or streamed) and fills in the sample's times and answer, parsed by the openai backend."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from taskc.bench.loadgen import Sample
from taskc.bench.target import Wire


def make_sender(wire: Wire, client, tag: str, clock: Callable[[], float] = time.monotonic) -> Callable[[Sample], Awaitable[None]]:
    """The coroutine that sends one sample's request through `client` (a `JsonClient`) and fills
    in its times and raw answer (the backend's postprocessing is applied after the run,
    in `taskc.bench.measure.score`)."""
    from taskc.backends.openai_chat import ChatStream, read_completion

    url, auth, payloads = wire.url, wire.headers, wire.payloads

    async def send_plain(sample: Sample) -> None:
        headers = {**auth, "x-request-id": f"{tag}-{sample.seq}"}
        sample.sent = clock()
        resp = await client.post_json(url, payloads[sample.row], headers)
        sample.done = clock()
        sample.status = resp.status
        if not resp.ok:
            sample.error = resp.error
            return
        try:
            raw, usage, extra = read_completion(resp.body)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            sample.error = f"malformed response: {type(exc).__name__}: {exc}"
            return
        sample.raw, sample.usage = raw, usage
        sample.extra["finish_reason"] = extra.get("finish_reason")

    async def send_stream(sample: Sample) -> None:
        headers = {**auth, "x-request-id": f"{tag}-{sample.seq}"}
        stream = ChatStream()

        def on_event(chunk) -> None:
            if stream.feed(chunk) and sample.first_token is None:
                sample.first_token = clock()

        sample.sent = clock()
        resp = await client.post_stream(url, payloads[sample.row], headers, on_event)
        sample.status = resp.status
        if not resp.ok:  # an HTTP error answered; a broken connection or stream never completed
            if resp.status >= 300:
                sample.done = clock()
            sample.error = resp.error
            return
        sample.done = clock()
        if stream.error:
            sample.error = stream.error
            return
        raw, usage, extra = stream.answer()
        sample.raw, sample.usage = raw, usage
        if extra.get("finish_reason"):
            sample.extra["finish_reason"] = extra["finish_reason"]

    return send_stream if wire.stream else send_plain


async def warm_up(client, url: str) -> None:
    """One GET of the server's model list (any answer will do) so a fresh process has its HTTP
    code paths and a connection ready before the first scheduled request."""
    await client.get(url.rsplit("/chat/completions", 1)[0] + "/models", timeout_s=10)


def loop_policy(use_uvloop: bool) -> str:
    """Install uvloop's event loop policy when asked and installed; the name of the loop used."""
    if use_uvloop:
        try:
            import uvloop  # type: ignore[import-not-found]

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
        except ImportError:
            pass
    asyncio.set_event_loop_policy(None)
    return "asyncio"

