"""Run requests through a provider's batch API (`taskc eval --batch`): half the price, hours of wait.

`run_batch` renders every request once with the backend's own `render` (so each batch line
carries exactly the bytes the synchronous path would POST), serves what the cache has, splits
the rest above the provider's request and byte limits, submits, records every batch in the run
folder's `batches.json` BEFORE polling (see `taskc.runner.batch_state`), polls, downloads,
matches answers by `custom_id` and hands each to the cache and `on_result` as it is read.
Failed and expired items are retried once through the synchronous `backend.generate_one`;
canceled ones, and items of a batch that cannot be submitted or polled, are reported as errors.
Nothing is dropped: every request gets a `Result`.

A rerun after a kill (in the same run folder, or a new one next to it) adopts the recorded
batches that hold its uncached requests and polls them again; it never submits a second batch
for the same requests.

What the runner needs from a backend (the runner never imports backends; `supports_batch`
backends implement these, see taskc/backends/openai_batch.py and anthropic_batch.py):

- `batch_max_requests`, `batch_max_bytes`: the provider's limits per batch;
- `batch_line(request, payload, custom_id) -> bytes`: one entry of the batch input;
- `batch_identity() -> dict`: backend, model, base_url, api_key_env, mode (recorded);
- `await batch_submit(client, lines, key) -> dict` with the new batch's `id`;
- `await batch_find(client, key, n, since) -> str | None`: a batch a killed run created;
- `await batch_poll(client, batch_id) -> BatchStatus`;
- `await batch_results(client, status, on_item) -> list[str]`: calls `on_item(BatchItem)` per
  output line, returns problems with lines that name no request;
- `await batch_cancel(client, batch_id) -> BatchStatus`;
- `batch_answer(request, body, **base) -> Result`: a succeeded item's answer, parsed exactly as
  the synchronous path parses a response body.
These raise `BatchError` (or `BatchGone` for a batch id the provider does not know).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

from taskc.common.encoding import sha256_hex
from taskc.runner.batch_state import LIVE, BatchState, now_iso, sibling_records
from taskc.runner.batch_types import (BatchError, BatchGone, BatchItem, BatchStatus, custom_id,  # noqa: F401 (re-exported)
                                      index_of_custom_id, split_lines)
from taskc.runner.cache import ResultCache, decode_result, request_keys
from taskc.runner.engine import StopFlag, _error_result, _Progress
from taskc.runner.http import JsonClient, redact
from taskc.runner.types import Request, Result

#: First poll interval (seconds) and its ceiling; `TASKC_BATCH_POLL_S` fixes the interval.
POLL_START_S = 10.0
POLL_MAX_S = 300.0
#: Consecutive failed polls of one batch before its requests are reported (it stays recorded).
MAX_POLL_FAILURES = 5
#: How long after an interrupted submission the provider is asked whether it made the batch.
SUBMIT_LOOKUP_S = 25 * 3600.0


def _poll_schedule(poll_interval_s: float | None) -> tuple[float, float]:
    env = os.environ.get("TASKC_BATCH_POLL_S")
    if poll_interval_s is None and env:
        try:
            poll_interval_s = float(env)
        except ValueError:
            poll_interval_s = None
    if poll_interval_s is not None:
        return poll_interval_s, poll_interval_s
    return POLL_START_S, POLL_MAX_S


class _Run:
    """The state of one `run_batch` call."""

    def __init__(self, backend, requests, payloads, keys, cache, on_result, progress, client, state_dir, namespace,
                 stop: StopFlag | None):
        self.backend, self.requests, self.payloads, self.keys = backend, requests, payloads, keys
        self.cache = cache if cache is not None and backend.cacheable else None
        self.on_result, self.client, self.stop = on_result, client, stop
        self.results: list[Result | None] = [None] * len(requests)
        self.cids = [custom_id(r, k) for r, k in zip(requests, keys)]
        self.slot = {cid: i for i, cid in enumerate(self.cids)}
        self.failed: dict[int, str] = {}  # request -> why its batch did not answer it (retried once)
        self.bar = _Progress(len(requests), progress, f"{backend.name}:{backend.model} batch")
        self.quiet = progress is False
        self.state = BatchState(state_dir)
        self.identity = {**backend.batch_identity(), "namespace": namespace}
        self.warnings: list[str] = []

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"batch: {text}", file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        """A problem worth knowing even without a progress display: always on stderr."""
        text = self.secret_free(text)
        self.warnings.append(text)
        print(f"batch: warning: {text}", file=sys.stderr, flush=True)

    def secret_free(self, text: str) -> str:
        return redact(text, self.backend.secrets())

    def deliver(self, i: int, result: Result) -> None:
        if self.results[i] is not None:
            return  # a line seen twice (a re-download, a duplicate) answers once
        if self.cache is not None and not result.cached and result.error is None:
            self.cache.put(self.keys[i], result)
            self.cache.flush()  # a paid answer: committed before anything else happens
        self.results[i] = result
        self.bar.advance()
        if self.on_result is not None:
            self.on_result(result)

    def error(self, i: int, message: str, **extra: Any) -> None:
        r = self.requests[i]
        self.deliver(i, Result(r.index, r.repeat, raw=None, error=self.secret_free(message), extra=extra))

    def open_indices(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if r is None and i not in self.failed]

    def mine(self, record: dict[str, Any]) -> bool:
        return all(record.get(k) == v for k, v in self.identity.items())


async def run_batch(
    backend,
    requests: Sequence[Request],
    *,
    cache: ResultCache | None = None,
    cache_namespace: str = "",
    state_dir=None,
    on_result: Callable[[Result], None] | None = None,
    progress: bool | None = None,
    client: JsonClient | None = None,
    poll_interval_s: float | None = None,
    retry_sync: bool = True,
    sync_concurrency: int = 16,
    stop: StopFlag | None = None,
) -> list[Result]:
    """Answer every request through `backend`'s batch API; results in the order of `requests`.

    Cache keys are those of `taskc.runner.engine.run_requests` (namespace, backend, model,
    payload, repeat), so the two paths share answers. `state_dir` is the run folder that gets
    `batches.json` (None: nothing recorded, no resumption). Polls every `poll_interval_s`
    (default: 10 s growing to 5 min, or `$TASKC_BATCH_POLL_S`); a 429/5xx on a poll is retried
    after its Retry-After by the client. Results from a batch carry `extra["batch"]` (the
    batch id: billed at the batch price); retried ones carry `extra["batch_retry"]`. When
    `stop` is set (Ctrl-C) no more batches are created and polling ends: the batches in flight
    stay recorded for a rerun, and only the results that exist are returned, in request order.
    """
    requests = list(requests)
    payloads = [backend.render(r) for r in requests]
    keys = request_keys(cache_namespace, backend, requests, payloads)
    own_client = client is None
    client = client or JsonClient()
    run = _Run(backend, requests, payloads, keys, cache, on_result, progress, client, state_dir, cache_namespace, stop)
    try:
        if run.cache is not None:
            found = run.cache.get_many(keys)
            for i, r in enumerate(requests):
                if keys[i] in found:
                    run.deliver(i, decode_result(found[keys[i]], r.index, r.repeat))
        todo = run.open_indices()
        if todo:
            tracked = await _adopt(run, set(todo))
            tracked += await _submit(run, [i for i in run.open_indices() if run.cids[i] not in _covered(tracked)])
            await _wait(run, tracked, *_poll_schedule(poll_interval_s))
            if not run.stopped():
                await _retry(run, retry_sync, sync_concurrency)
    finally:
        if run.cache is not None:
            run.cache.flush()
        run.bar.close()
        if own_client:
            await client.close()
    if run.stopped():
        return [r for r in run.results if r is not None]
    return run.results  # type: ignore[return-value]  (every slot is filled by now)


def _covered(records: list[dict[str, Any]]) -> set[str]:
    return {cid for rec in records for cid in rec.get("custom_ids") or ()}


async def _adopt(run: _Run, todo: set[int]) -> list[dict[str, Any]]:
    """The recorded batches (this folder's, then the other runs' of the same task) that hold
    requests still to answer; a batch a killed run was creating is looked up by its key."""
    wanted = {run.cids[i] for i in todo}
    tracked: list[dict[str, Any]] = []
    candidates = [(None, rec) for rec in run.state.records] + list(sibling_records(run.state.folder))
    # a batch this folder found dead is not adopted again from another folder's record
    seen: set[str] = {rec["id"] for rec in run.state.records if rec.get("id") and rec.get("state") not in LIVE}
    for folder, rec in candidates:
        if not run.mine(rec) or rec.get("state") not in LIVE:
            continue
        if rec.get("state") == "collected" and run.cache is not None:
            continue  # its answers are cached; what it did not answer goes into a new batch
        cids = set(rec.get("custom_ids") or ()) & wanted
        if not cids or (rec.get("id") and rec["id"] in seen):
            continue
        if rec.get("state") == "submitting" and not rec.get("id"):
            if _seconds_since(rec.get("submitted_at")) > SUBMIT_LOOKUP_S:
                continue  # older than the completion window: nothing left to collect
            found = None
            try:
                found = await run.backend.batch_find(run.client, rec.get("key", ""), len(rec.get("custom_ids") or ()),
                                                     rec.get("submitted_at", ""))
            except BatchError as exc:
                run.say(f"could not look up an interrupted submission: {exc}")
            if found is None:
                if folder is None:
                    run.state.update(rec, state="abandoned")
                continue
            if folder is None:
                run.state.update(rec, id=found, state="submitted")  # in place: collected later on this record
            else:
                rec = dict(rec, id=found, state="submitted")
        if folder is not None:  # another run's batch: recorded here too, then polled
            rec = run.state.add({**rec, "adopted_from": str(folder), "state": "submitted"})
        seen.add(rec["id"])
        tracked.append(rec)
        wanted -= cids
        run.say(f"resuming {rec['id']} ({len(cids)} requests of this run)")
    return tracked


async def _submit(run: _Run, indices: list[int]) -> list[dict[str, Any]]:
    """Create batches for `indices`, each recorded before its create call and after it."""
    if not indices:
        return []
    backend = run.backend
    lines = [backend.batch_line(run.requests[i], run.payloads[i], run.cids[i]) for i in indices]
    out = []
    for start, end in split_lines([len(line) for line in lines], backend.batch_max_requests, backend.batch_max_bytes):
        if run.stopped():
            break
        chunk, chunk_lines = indices[start:end], lines[start:end]
        cids = [run.cids[i] for i in chunk]
        key = sha256_hex("\n".join(cids))
        record = run.state.add({"id": None, "state": "submitting", **run.identity, "key": key, "custom_ids": cids,
                                "requests": len(cids), "bytes": sum(len(x) + 1 for x in chunk_lines),
                                "submitted_at": now_iso(), "status": None})
        try:
            created = await backend.batch_submit(run.client, chunk_lines, key)
        except BatchError as exc:
            message = run.secret_free(f"batch submission failed ({len(cids)} requests): {exc}")
            run.state.update(record, state="failed", status="not created", error=message)
            run.warn(message)
            for i in chunk:
                run.error(i, message)
            continue
        run.state.update(record, **{k: v for k, v in created.items() if k != "id"}, id=created["id"],
                         state="submitted", status="submitted")
        run.say(f"submitted {created['id']} ({len(cids)} requests) -> {run.state.path or 'memory'}")
        out.append(record)
    return out


async def _wait(run: _Run, tracked: list[dict[str, Any]], interval: float, ceiling: float) -> None:
    """Poll every tracked batch until each has ended, collecting each as it ends."""
    pending = list(tracked)
    failures: dict[str, int] = {}
    last_status: dict[str, str] = {}
    first = True
    while pending:
        if not first:
            deadline = time.monotonic() + interval
            while not run.stopped() and time.monotonic() < deadline:  # Ctrl-C is seen within 0.2 s
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            interval = min(ceiling, interval * 1.5)
        first = False
        if run.stopped():
            where = f" (recorded in {run.state.path})" if run.state.path else ""
            run.say(f"stopped: {len(pending)} batches still in flight{where}; rerun to collect them")
            return
        for rec in list(pending):
            batch_id = rec["id"]
            try:
                status = await run.backend.batch_poll(run.client, batch_id)
            except BatchGone as exc:
                pending.remove(rec)
                _own_update(run, rec, state="gone", status="unknown to the provider")
                _give_up(run, rec, f"batch {batch_id}: the provider does not know this batch ({exc}); "
                                   "its requests are reported as failed (a rerun submits them again)")
                continue
            except BatchError as exc:
                failures[batch_id] = failures.get(batch_id, 0) + 1
                run.say(f"{batch_id}: poll failed ({failures[batch_id]}/{MAX_POLL_FAILURES}): {exc}")
                if failures[batch_id] >= MAX_POLL_FAILURES:
                    pending.remove(rec)
                    where = f" in {run.state.path}" if run.state.path else ""
                    _give_up(run, rec, f"batch {batch_id}: cannot poll it: {exc}; it stays recorded{where}: "
                                       "rerun (or taskc eval --resume RUN_DIR) to collect its answers")
                continue
            failures.pop(batch_id, None)
            if last_status.get(batch_id) != status.status:
                last_status[batch_id] = status.status
                counts = ", ".join(f"{k} {v}" for k, v in status.counts.items())
                run.say(f"{batch_id}: {status.status}" + (f" ({counts})" if counts else ""))
            if status.state == "running":
                if rec.get("status") != status.status:
                    _own_update(run, rec, status=status.status)
                continue
            pending.remove(rec)
            await _collect(run, rec, status)


def _own_update(run: _Run, rec: dict[str, Any], **changes: Any) -> None:
    if any(r is rec for r in run.state.records):
        run.state.update(rec, **changes)


def _give_up(run: _Run, rec: dict[str, Any], message: str) -> None:
    message = run.secret_free(message)
    run.warn(message)
    for cid in rec.get("custom_ids") or ():
        i = run.slot.get(cid)
        if i is not None and run.results[i] is None:
            run.error(i, message, batch_id=rec["id"])


async def _collect(run: _Run, rec: dict[str, Any], status: BatchStatus) -> None:
    """Download an ended batch and deliver every answer it holds for this run."""
    batch_id = rec["id"]
    members = set(rec.get("custom_ids") or ())
    expected = [cid for cid in members if cid in run.slot]
    seen: set[str] = set()
    started_at = rec.get("submitted_at")
    turnaround = _seconds_since(started_at)
    if status.state == "failed":
        _own_update(run, rec, state="failed", status=status.status, error=status.detail)
        message = f"batch {batch_id} failed: {status.detail or status.status}"
        run.warn(message)
        for cid in expected:
            run.failed[run.slot[cid]] = message
        return

    def on_item(item: BatchItem) -> None:
        i = run.slot.get(item.custom_id)
        if i is None or item.custom_id not in members:
            return  # another run's request in an adopted batch
        seen.add(item.custom_id)
        if run.results[i] is not None:
            return
        r = run.requests[i]
        if item.outcome == "succeeded":
            result = run.backend.batch_answer(r, item.body, index=r.index, repeat=r.repeat, attempts=1,
                                              latency_s=turnaround)
            if result.error is None:
                run.deliver(i, replace(result, extra={**result.extra, "batch": batch_id}))
                return
            run.failed[i] = f"batch {batch_id}: {result.error}"
        elif item.outcome == "canceled":
            run.error(i, f"batch {batch_id}: canceled", batch_id=batch_id)
        else:
            run.failed[i] = f"batch {batch_id}: {item.outcome}" + (f" ({item.error})" if item.error else "")

    missing = "no output line for this request"
    try:
        problems = await run.backend.batch_results(run.client, status, on_item)
    except BatchGone as exc:  # the provider no longer has the results: answer what is left synchronously
        _own_update(run, rec, state="gone", status="results gone")
        missing = f"its results are gone ({exc})"
        problems = [missing]
    except BatchError as exc:  # the answers exist: keep the batch for a rerun rather than pay twice
        where = f" in {run.state.path}" if run.state.path else ""
        _give_up(run, rec, f"batch {batch_id}: downloading its results failed: {exc}; it stays recorded{where}: "
                           "rerun (or taskc eval --resume RUN_DIR) to collect its answers")
        return
    for problem in problems:
        message = run.secret_free(f"batch {batch_id}: {problem}")
        run.warn(message)
    for cid in expected:
        i = run.slot[cid]
        if cid not in seen and run.results[i] is None and i not in run.failed:
            run.failed[i] = f"batch {batch_id}: {missing}"
    if rec.get("state") != "gone":
        _own_update(run, rec, state="collected", status=status.status, counts=status.counts, collected_at=now_iso(),
                    problems=[run.secret_free(p) for p in problems[:20]])
    run.say(f"{batch_id}: collected ({len(seen)} lines for this run)")


def _seconds_since(iso: str | None) -> float:
    from datetime import datetime, timezone

    try:
        return max(0.0, (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


async def _retry(run: _Run, retry_sync: bool, concurrency: int) -> None:
    """Send each failed or expired item once through the synchronous API (or report it)."""
    failed = {i: why for i, why in run.failed.items() if run.results[i] is None}
    run.failed.clear()
    if not failed:
        return
    if not retry_sync:
        for i, why in failed.items():
            run.error(i, why)
        return
    run.say(f"{len(failed)} requests the batch did not answer: sending each once through the synchronous API")
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(i: int, why: str) -> None:
        r = run.requests[i]
        async with gate:
            started = time.perf_counter()
            try:
                result = await run.backend.generate_one(r, run.client, run.payloads[i])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                result = _error_result(r, run.backend, exc, started)
        extra = {**result.extra, "batch_retry": why}
        if result.error is not None:
            result = replace(result, error=run.secret_free(f"{why}; synchronous retry: {result.error}"))
        run.deliver(i, replace(result, extra=extra, attempts=result.attempts + 1))

    await asyncio.gather(*(one(i, why) for i, why in failed.items()))
